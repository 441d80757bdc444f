"""The table service: tables, items and secondary indexes on SQLite.

Items are stored in wire form (JSON) under their key bytes: the hash key's and the range key's
:func:`~squall.services.tables.types.encode_key` bytes, which sort as DynamoDB orders keys, so a
Query is an index range scan in SQLite. Every secondary index keeps its own entries (index key bytes
plus the table key), written in the same transaction as the item. Scans walk items in the order of
a 32-bit hash of the partition key, which is also how Segment/TotalSegments divide a table.
Every write is one ``BEGIN IMMEDIATE`` transaction committed with ``synchronous=FULL``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from squall.errors import StoreUnavailable
from squall.services.tables import changes, schema
from squall.services.tables.errors import (
    ConditionalCheckFailed,
    TableInUse,
    TableNotFound,
    TransactionCanceled,
    Validation,
)
from squall.services.tables.evaluator import apply_update, matches, project
from squall.services.tables.expressions import Condition, Update
from squall.services.tables.expressions import Path as DocPath
from squall.services.tables.schema import IndexDef, TableDef
from squall.services.tables.types import MAX_ITEM_BYTES, Item, Value, encode_key, item_size
from squall.stores.sqlite_file import open_durable, write_transaction

MAX_PAGE_BYTES = 1024 * 1024
#: Items whose expiry time is more than five years in the past are not deleted (AWS's rule).
TTL_HORIZON_S = 5 * 365 * 24 * 3600
HASH_SPACE = 1 << 32
NOT_FOUND = "Requested resource not found"

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS tables (name TEXT PRIMARY KEY, definition BLOB NOT NULL)",
    """CREATE TABLE IF NOT EXISTS items (
        tbl TEXT NOT NULL, pk BLOB NOT NULL, sk BLOB NOT NULL, h INTEGER NOT NULL, size INTEGER NOT NULL,
        item TEXT NOT NULL, expires REAL, PRIMARY KEY (tbl, pk, sk)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS items_scan ON items (tbl, h, pk, sk)",
    "CREATE INDEX IF NOT EXISTS items_expiry ON items (expires) WHERE expires IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS index_items (
        tbl TEXT NOT NULL, idx TEXT NOT NULL, ipk BLOB NOT NULL, isk BLOB NOT NULL, pk BLOB NOT NULL,
        sk BLOB NOT NULL, h INTEGER NOT NULL, size INTEGER NOT NULL,
        PRIMARY KEY (tbl, idx, ipk, isk, pk, sk)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS index_items_item ON index_items (tbl, pk, sk)",
    "CREATE INDEX IF NOT EXISTS index_items_scan ON index_items (tbl, idx, h, ipk, isk, pk, sk)",
    *changes.SCHEMA,
]

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class WriteOp:
    """One item write: ``kind`` is put, update, delete or check (a transaction's ConditionCheck)."""

    table: str
    kind: str
    key: Item = field(default_factory=dict)
    item: Item | None = None
    update: Update | None = None
    condition: Condition | None = None
    return_on_failure: str = "NONE"


@dataclass
class WriteResult:
    old: Item | None
    new: Item | None


@dataclass
class RangeCondition:
    """The range-key part of a key condition: ``op`` is a comparator, BETWEEN or begins_with."""

    op: str
    values: list[Value]


@dataclass
class ReadSpec:
    """A Query (``hash_value`` set) or Scan over a table or one of its indexes."""

    table: str
    index: str | None = None
    hash_value: Value | None = None
    range_condition: RangeCondition | None = None
    forward: bool = True
    limit: int | None = None
    start_key: Item | None = None
    filter: Condition | None = None
    segment: int | None = None
    total_segments: int | None = None


@dataclass
class ReadResult:
    items: list[Item]
    scanned: int
    last_key: Item | None


def expiry_of(item: Item, attribute: str | None) -> float | None:
    """When ``item`` expires: its TTL attribute as epoch seconds, if that is a number."""
    value = item.get(attribute) if attribute is not None else None
    if value is None or "N" not in value:
        return None
    return float(Decimal(value["N"]))


def hash_of(pk: bytes) -> int:
    return int.from_bytes(hashlib.md5(pk, usedforsecurity=False).digest()[:4], "big")


class TableService:
    """Tables of one account and region, stored in ``path``."""

    def __init__(self, path: Path, account_id: str, region: str, expiry_interval: float = 1.0) -> None:
        self.account_id = account_id
        self.region = region
        self._lock = threading.Lock()
        self._conn = open_durable(path, _SCHEMA, "table store")
        self._tables: dict[str, TableDef] = {}
        for name, definition in self._conn.execute("SELECT name, definition FROM tables"):
            self._tables[name] = msgspec.json.decode(definition, type=TableDef)
        self._listeners: list[Callable[[str], None]] = []
        #: Streams written to by the open transaction; their listeners are told after it commits.
        self._touched: set[str] = set()
        self._stopping = threading.Event()
        self._reaper = threading.Thread(
            target=self._expire_loop, args=(expiry_interval,), name="table-ttl", daemon=True
        )
        self._reaper.start()

    def close(self) -> None:
        self._stopping.set()
        self._reaper.join()
        with self._lock:
            self._conn.close()

    # --- time to live ---------------------------------------------------------------------------------------
    def _expire_loop(self, interval: float) -> None:
        while not self._stopping.wait(interval):
            try:
                self.expire(time.time())
                self.trim(time.time())
            except StoreUnavailable:
                log.exception("Expiring items failed; retrying")

    def expire(self, now: float) -> int:
        """Delete items whose TTL attribute is in the past (but, as on AWS, not more than five years in the
        past), with their index entries and, on a streamed table, a REMOVE by the service; returns how many went."""
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT tbl, pk, sk, item FROM items WHERE expires IS NOT NULL AND expires <= ? AND expires > ? "
                "LIMIT 1000",
                (now, now - TTL_HORIZON_S),
            ).fetchall()
            for name, pk, sk, text in rows:
                conn.execute("DELETE FROM index_items WHERE tbl = ? AND pk = ? AND sk = ?", (name, pk, sk))
                conn.execute("DELETE FROM items WHERE tbl = ? AND pk = ? AND sk = ?", (name, pk, sk))
                table = self._tables.get(name)
                if table is not None:
                    old = json.loads(text)
                    self._emit(conn, table, {n: old[n] for n in table.key_names()}, old, None, service=True)
        return len(rows)

    def trim(self, now: float) -> int:
        """Drop change records past the streams' 24-hour retention."""
        with self._tx() as conn:
            return changes.trim(conn, now)

    # --- change streams ---------------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(stream ARN)`` after every commit that wrote change records (from the writing thread)."""
        self._listeners.append(listener)

    def inspect(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read (of the change log, say) on the store's connection."""
        return self._read(work)

    def stream_arn(self, table: TableDef) -> str | None:
        """The ARN of the table's enabled stream."""
        if not table.stream_enabled or table.stream_label is None:
            return None
        return changes.stream_arn(self.arn(table.name), table.stream_label)

    def _emit(
        self, conn: sqlite3.Connection, table: TableDef, keys: Item, old: Item | None, new: Item | None, service: bool
    ) -> None:
        arn = self.stream_arn(table)
        name = changes.event_name(old, new)
        if arn is None or name is None:
            return
        assert table.stream_view_type is not None
        now = time.time()
        record = changes.change_record(name, keys, old, new, table.stream_view_type, self.region, now, service)
        changes.append(conn, arn, now, keys, record)
        self._touched.add(arn)

    def _open_stream(self, conn: sqlite3.Connection, table: TableDef) -> None:
        arn = self.stream_arn(table)
        if arn is not None and table.stream_label is not None and table.stream_view_type is not None:
            key_schema = schema.key_schema(table.hash, table.range)
            changes.open_stream(
                conn, arn, table.name, table.stream_label, table.stream_view_type, key_schema, time.time()
            )

    def describe_ttl(self, name: str) -> dict[str, Any]:
        table = self.table(name)
        if table.ttl_attribute is None:
            return {"TimeToLiveStatus": "DISABLED"}
        return {"TimeToLiveStatus": "ENABLED", "AttributeName": table.ttl_attribute}

    def update_ttl(self, name: str, enabled: bool, attribute: str) -> None:
        table = self.table(name)
        current = table.ttl_attribute
        if enabled and current is not None:
            raise Validation("TimeToLive is already enabled")
        if not enabled and current is None:
            raise Validation("TimeToLive is already disabled")
        if not enabled and current != attribute:
            # unverified: wording from another emulator, not from AWS's documentation
            raise Validation(
                f"TimeToLive is active on a different AttributeName: current value of AttributeName is {current}"
            )
        new = msgspec.structs.replace(table, ttl_attribute=attribute if enabled else None)
        with self._tx() as conn:
            if enabled:
                rows = conn.execute("SELECT pk, sk, item FROM items WHERE tbl = ?", (name,)).fetchall()
                for pk, sk, text in rows:
                    conn.execute(
                        "UPDATE items SET expires = ? WHERE tbl = ? AND pk = ? AND sk = ?",
                        (expiry_of(json.loads(text), attribute), name, pk, sk),
                    )
            else:
                conn.execute("UPDATE items SET expires = NULL WHERE tbl = ?", (name,))
            conn.execute("UPDATE tables SET definition = ? WHERE name = ?", (msgspec.json.encode(new), name))
            self._tables[name] = new

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._touched = set()
            with write_transaction(self._conn, None, "Table store") as conn:
                yield conn
            touched, self._touched = self._touched, set()
        for arn in touched:
            for listener in self._listeners:
                listener(arn)

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                return work(self._conn)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"Table store failure: {exc}") from exc

    # --- tables -----------------------------------------------------------------------------------------
    def table(self, name: str) -> TableDef:
        table = self._tables.get(name)
        if table is None:
            raise TableNotFound(NOT_FOUND)
        return table

    def tables(self) -> list[str]:
        return sorted(self._tables)

    def arn(self, name: str) -> str:
        return schema.table_arn(self.region, self.account_id, name)

    def _describe(self, table: TableDef, status: str = "ACTIVE") -> dict[str, Any]:
        counts = self._read(lambda conn: self._counts(conn, table.name))
        return schema.describe(table, self.region, self.account_id, counts, status)

    @staticmethod
    def _counts(conn: sqlite3.Connection, name: str) -> dict[str, tuple[int, int]]:
        count, size = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items WHERE tbl = ?", (name,)
        ).fetchone()
        counts = {"": (int(count), int(size))}
        for index, index_count, index_size in conn.execute(
            "SELECT idx, COUNT(*), COALESCE(SUM(size), 0) FROM index_items WHERE tbl = ? GROUP BY idx", (name,)
        ):
            counts[index] = (int(index_count), int(index_size))
        return counts

    def create_table(self, params: dict[str, Any]) -> dict[str, Any]:
        table = schema.table_from_request(params, str(uuid.uuid4()), time.time())
        with self._tx() as conn:
            if table.name in self._tables:
                raise TableInUse(f"Table already exists: {table.name}")
            conn.execute("INSERT INTO tables VALUES (?, ?)", (table.name, msgspec.json.encode(table)))
            self._open_stream(conn, table)
            self._tables[table.name] = table
        return schema.describe(table, self.region, self.account_id, {}, "ACTIVE")

    def describe_table(self, name: str) -> dict[str, Any]:
        table = self._tables.get(name)
        if table is None:
            raise TableNotFound(f"Requested resource not found: Table: {name} not found")
        return self._describe(table)

    def list_tables(self, start: str | None, limit: int) -> tuple[list[str], str | None]:
        names = sorted(n for n in self._tables if start is None or n > start)
        page = names[:limit]
        return page, (page[-1] if len(names) > limit else None)

    def delete_table(self, name: str) -> dict[str, Any]:
        table = self.table(name)
        description = self._describe(table, "DELETING")
        with self._tx() as conn:
            conn.execute("DELETE FROM items WHERE tbl = ?", (name,))
            conn.execute("DELETE FROM index_items WHERE tbl = ?", (name,))
            conn.execute("DELETE FROM tables WHERE name = ?", (name,))
            changes.close_streams(conn, name, time.time())
            self._tables.pop(name, None)
        return description

    def update_table(self, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params["TableName"])
        table = self.table(name)
        billing = params.get("BillingMode") or table.billing_mode
        read_cu, write_cu = table.read_cu, table.write_cu
        if params.get("ProvisionedThroughput"):
            throughput = params["ProvisionedThroughput"]
            read_cu, write_cu = int(throughput["ReadCapacityUnits"]), int(throughput["WriteCapacityUnits"])
        if billing == "PAY_PER_REQUEST":
            read_cu, write_cu = 0, 0
        types = {d["AttributeName"]: d["AttributeType"] for d in table.attribute_definitions}
        types.update(schema.attribute_types(params))
        indexes = list(table.indexes)
        created: list[IndexDef] = []
        for change in params.get("GlobalSecondaryIndexUpdates") or []:
            if "Create" in change:
                index = schema.index_def(change["Create"], "GSI", types, billing, table.hash)
                if table.index(index.name) is not None:
                    # unverified: wording from memory of AWS's message
                    raise Validation(f"One or more parameter values were invalid: Index already exists: {index.name}")
                indexes.append(index)
                created.append(index)
            elif "Delete" in change:
                index_name = change["Delete"].get("IndexName")
                if table.index(index_name) is None:
                    # unverified: wording from memory of AWS's message
                    raise TableNotFound(f"Requested resource not found: Index: {index_name} not found")
                indexes = [i for i in indexes if i.name != index_name]
            elif "Update" in change:
                index_name = change["Update"].get("IndexName")
                old = table.index(index_name)
                if old is None:
                    raise TableNotFound(f"Requested resource not found: Index: {index_name} not found")
                throughput = change["Update"].get("ProvisionedThroughput") or {}
                updated = msgspec.structs.replace(
                    old,
                    read_cu=int(throughput.get("ReadCapacityUnits", old.read_cu)),
                    write_cu=int(throughput.get("WriteCapacityUnits", old.write_cu)),
                )
                indexes = [updated if i.name == index_name else i for i in indexes]
        enabled, view, label = table.stream_enabled, table.stream_view_type, table.stream_label
        if "StreamSpecification" in params:
            want, want_view = schema.stream_settings(params["StreamSpecification"])
            # Both texts as reported from live AWS probes in public notes, not from AWS's documentation.
            if want and table.stream_enabled:
                raise Validation(f"Table already has an enabled stream: TableName: {name}")
            if not want and not table.stream_enabled:
                raise Validation(f"Table has no stream to disable: TableName: {name}")
            enabled, view = want, want_view
            if want:
                label = schema.stream_label(time.time())
                while label == table.stream_label:  # a new stream needs a new label (a millisecond timestamp)
                    time.sleep(0.001)
                    label = schema.stream_label(time.time())
        used = set(table.key_names())
        for index in indexes:
            used.update(index.key_names())
        definitions = [{"AttributeName": n, "AttributeType": t} for n, t in types.items() if n in used]
        new = msgspec.structs.replace(
            table,
            billing_mode=billing,
            read_cu=read_cu,
            write_cu=write_cu,
            indexes=indexes,
            attribute_definitions=definitions,
            stream_enabled=enabled,
            stream_view_type=view,
            stream_label=label,
        )
        with self._tx() as conn:
            if self._tables.get(name) is not table:
                raise TableInUse(f"Attempt to change a resource which is still in use: Table: {name}")
            kept = {i.name for i in indexes}
            for index in table.indexes:
                if index.name not in kept:
                    conn.execute("DELETE FROM index_items WHERE tbl = ? AND idx = ?", (name, index.name))
            for index in created:
                self._backfill(conn, new, index)
            if "StreamSpecification" in params:
                changes.close_streams(conn, name, time.time())
                self._open_stream(conn, new)
            conn.execute("UPDATE tables SET definition = ? WHERE name = ?", (msgspec.json.encode(new), name))
            self._tables[name] = new
        return self._describe(new, "ACTIVE")

    def _backfill(self, conn: sqlite3.Connection, table: TableDef, index: IndexDef) -> None:
        rows = conn.execute("SELECT pk, sk, size, item FROM items WHERE tbl = ?", (table.name,)).fetchall()
        for pk, sk, size, text in rows:
            item = json.loads(text)
            if schema.index_key_problem(index, item) is None:
                self._index_entry(conn, table, index, item, pk, sk, size)

    # --- keys ---------------------------------------------------------------------------------------------
    @staticmethod
    def _key_bytes(table: TableDef, key: Item) -> tuple[bytes, bytes]:
        pk = encode_key(key[table.hash.name])
        sk = encode_key(key[table.range.name]) if table.range is not None else b""
        return pk, sk

    @staticmethod
    def _load(conn: sqlite3.Connection, table: TableDef, pk: bytes, sk: bytes) -> Item | None:
        row = conn.execute(
            "SELECT item FROM items WHERE tbl = ? AND pk = ? AND sk = ?", (table.name, pk, sk)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    # --- single items -------------------------------------------------------------------------------------
    def get_item(self, table_name: str, key: Item) -> Item | None:
        table = self.table(table_name)
        schema.check_key(table, key)
        pk, sk = self._key_bytes(table, key)
        return self._read(lambda conn: self._load(conn, table, pk, sk))

    def get_items(self, requests: list[tuple[str, Item]]) -> list[Item | None]:
        """Several items read in one snapshot (BatchGetItem, TransactGetItems)."""
        prepared = []
        for table_name, key in requests:
            table = self.table(table_name)
            schema.check_key(table, key)
            prepared.append((table, *self._key_bytes(table, key)))
        return self._read(lambda conn: [self._load(conn, t, pk, sk) for t, pk, sk in prepared])

    def write(self, op: WriteOp) -> WriteResult:
        table = self.table(op.table)
        with self._tx() as conn:
            return self._apply(conn, table, op)

    def write_many(self, ops: list[WriteOp]) -> None:
        """BatchWriteItem's puts and deletes, in one transaction (none is ever left unprocessed)."""
        tables = [self.table(op.table) for op in ops]
        for table, op in zip(tables, ops, strict=True):
            self.prepare(table, op)
        with self._tx() as conn:
            for table, op in zip(tables, ops, strict=True):
                self._apply(conn, table, op)

    def transact(self, ops: list[WriteOp]) -> None:
        """TransactWriteItems: every op or none; TransactionCanceledException with a reason per op."""
        tables = [self.table(op.table) for op in ops]
        targets = set()
        for table, op in zip(tables, ops, strict=True):
            self.prepare(table, op)
            target = (table.name, *self._key_bytes(table, op.key))
            if target in targets:
                raise Validation("Transaction request cannot include multiple operations on one item")
            targets.add(target)
        with self._tx() as conn:
            reasons: list[dict[str, Any]] = []
            failed = False
            for table, op in zip(tables, ops, strict=True):
                try:
                    self._apply(conn, table, op)
                    reasons.append({"Code": "None"})
                except ConditionalCheckFailed as exc:
                    failed = True
                    reason: dict[str, Any] = {"Code": "ConditionalCheckFailed", "Message": exc.message}
                    if exc.item is not None:
                        reason["Item"] = exc.item
                    reasons.append(reason)
                except Validation as exc:
                    failed = True
                    reasons.append({"Code": "ValidationError", "Message": exc.message})
            if failed:
                raise TransactionCanceled(reasons)

    def prepare(self, table: TableDef, op: WriteOp) -> None:
        """Check an op's key (or a put's key attributes) against ``table`` and fill in ``op.key``."""
        if op.kind == "put":
            assert op.item is not None
            schema.check_item_keys(table, op.item)
            op.key = schema.item_key(table, op.item)
        else:
            schema.check_key(table, op.key)

    def _apply(self, conn: sqlite3.Connection, table: TableDef, op: WriteOp) -> WriteResult:
        # The definition as of this transaction: indexes or TTL may have changed since the caller looked.
        current = self._tables.get(table.name)
        if current is None:
            raise TableNotFound(NOT_FOUND)
        table = current
        self.prepare(table, op)
        pk, sk = self._key_bytes(table, op.key)
        old = self._load(conn, table, pk, sk)
        if op.condition is not None and not matches(op.condition, old or {}):
            raise ConditionalCheckFailed(old if op.return_on_failure == "ALL_OLD" else None)
        if op.kind == "check":
            return WriteResult(old, old)
        new: Item | None
        if op.kind == "delete":
            new = None
        elif op.kind == "put":
            new = op.item
        else:
            base = old if old is not None else dict(op.key)
            new = apply_update(base, op.update, table.key_names()) if op.update is not None else base
        size = 0
        if new is not None:
            size = item_size(new)
            if size > MAX_ITEM_BYTES:
                raise Validation(
                    "Item size has exceeded the maximum allowed size"
                    if op.kind == "put"
                    else "Item size to update has exceeded the maximum allowed size"
                )
            for index in table.indexes:
                problem = schema.index_key_problem(index, new)
                if problem is not None:
                    raise Validation(problem)
        conn.execute("DELETE FROM index_items WHERE tbl = ? AND pk = ? AND sk = ?", (table.name, pk, sk))
        if new is None:
            conn.execute("DELETE FROM items WHERE tbl = ? AND pk = ? AND sk = ?", (table.name, pk, sk))
        else:
            conn.execute(
                "INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    table.name,
                    pk,
                    sk,
                    hash_of(pk),
                    size,
                    json.dumps(new, separators=(",", ":")),
                    expiry_of(new, table.ttl_attribute),
                ),
            )
            for index in table.indexes:
                self._index_entry(conn, table, index, new, pk, sk, size)
        self._emit(conn, table, {n: op.key[n] for n in table.key_names()}, old, new, service=False)
        return WriteResult(old, new)

    @staticmethod
    def _index_entry(
        conn: sqlite3.Connection, table: TableDef, index: IndexDef, item: Item, pk: bytes, sk: bytes, size: int
    ) -> None:
        if any(name not in item for name in index.key_names()):
            return
        ipk = encode_key(item[index.hash.name])
        isk = encode_key(item[index.range.name]) if index.range is not None else b""
        conn.execute(
            "INSERT OR REPLACE INTO index_items VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (table.name, index.name, ipk, isk, pk, sk, hash_of(ipk), size),
        )

    # --- queries and scans --------------------------------------------------------------------------------
    def read(self, spec: ReadSpec) -> ReadResult:
        """A page of a Query or Scan: items (index projection and filter applied), scanned count, last key."""
        table = self.table(spec.table)
        index = None
        if spec.index is not None:
            index = table.index(spec.index)
            if index is None:
                raise Validation(f"The table does not have the specified index: {spec.index}")
        sql, args = self._read_sql(table, index, spec)
        return self._read(lambda conn: self._page(conn.execute(sql, args), table, index, spec))

    def _read_sql(self, table: TableDef, index: IndexDef | None, spec: ReadSpec) -> tuple[str, list[Any]]:
        if index is None:
            source = "SELECT t.item, t.size FROM items t WHERE t.tbl = ?"
            hash_col, sort_cols = "t.pk", ["t.sk"]
            args: list[Any] = [table.name]
        else:
            source = (
                "SELECT t.item, t.size FROM index_items i JOIN items t ON t.tbl = i.tbl AND t.pk = i.pk "
                "AND t.sk = i.sk WHERE i.tbl = ? AND i.idx = ?"
            )
            hash_col, sort_cols = "i.ipk", ["i.isk", "i.pk", "i.sk"]
            args = [table.name, index.name]
        clauses: list[str] = []
        start = self._start_columns(table, index, spec.start_key) if spec.start_key is not None else None
        if spec.hash_value is not None:
            clauses.append(f"{hash_col} = ?")
            args.append(encode_key(spec.hash_value))
            if spec.range_condition is not None:
                clause, values = _range_sql(sort_cols[0], spec.range_condition)
                clauses.append(clause)
                args.extend(values)
            order_cols = sort_cols
            if start is not None:
                # The hash (and, on a table, the partition key) is fixed by the query.
                start = start[2:]
        else:
            h_col = "i.h" if index is not None else "t.h"
            order_cols = [h_col, hash_col, *sort_cols]
            if spec.total_segments:
                assert spec.segment is not None
                clauses.append(f"{h_col} >= ? AND {h_col} < ?")
                args += [
                    spec.segment * HASH_SPACE // spec.total_segments,
                    (spec.segment + 1) * HASH_SPACE // spec.total_segments,
                ]
        direction = "ASC" if spec.forward else "DESC"
        if start is not None:
            comparison = ">" if spec.forward else "<"
            clauses.append(f"({', '.join(order_cols)}) {comparison} ({', '.join('?' * len(order_cols))})")
            args.extend(start)
        where = "".join(f" AND {c}" for c in clauses)
        order = ", ".join(f"{c} {direction}" for c in order_cols)
        return f"{source}{where} ORDER BY {order}", args

    def _start_columns(self, table: TableDef, index: IndexDef | None, start: Item) -> list[Any]:
        """The sort columns (hash first) of ExclusiveStartKey, in the order the read walks."""
        names = set(table.key_names()) | (set(index.key_names()) if index else set())
        problem = "The provided starting key is invalid: The provided key element does not match the schema"
        if set(start) != names:
            raise Validation(problem)
        try:
            schema.check_key(table, {n: start[n] for n in table.key_names()})
        except Validation:
            raise Validation(problem) from None
        pk, sk = self._key_bytes(table, start)
        if index is None:
            return [hash_of(pk), pk, sk]
        if schema.index_key_problem(index, start) is not None:
            raise Validation(problem)
        ipk = encode_key(start[index.hash.name])
        isk = encode_key(start[index.range.name]) if index.range is not None else b""
        return [hash_of(ipk), ipk, isk, pk, sk]

    def _page(self, rows: sqlite3.Cursor, table: TableDef, index: IndexDef | None, spec: ReadSpec) -> ReadResult:
        items: list[Item] = []
        scanned = 0
        read_bytes = 0
        last: Item | None = None
        key_names = list(table.key_names()) + [
            n for n in (index.key_names() if index else ()) if n not in table.key_names()
        ]
        for text, size in rows:
            item: Item = json.loads(text)
            scanned += 1
            read_bytes += size
            if index is not None:
                item = _index_projection(index, table, item)
            if spec.filter is None or matches(spec.filter, item):
                items.append(item)
            if (spec.limit is not None and scanned >= spec.limit) or read_bytes >= MAX_PAGE_BYTES:
                last = {n: item[n] for n in key_names}
                break
        return ReadResult(items, scanned, last)


def _range_sql(column: str, condition: RangeCondition) -> tuple[str, list[Any]]:
    values = [encode_key(v) for v in condition.values]
    if condition.op == "BETWEEN":
        return f"{column} BETWEEN ? AND ?", values
    if condition.op == "begins_with":
        prefix = values[0]
        return f"{column} >= ? AND substr({column}, 1, ?) = ?", [prefix, len(prefix), prefix]
    return f"{column} {condition.op} ?", values


def _index_projection(index: IndexDef, table: TableDef, item: Item) -> Item:
    kind = index.projection.get("ProjectionType", "ALL")
    if kind == "ALL":
        return item
    keep = set(table.key_names()) | set(index.key_names())
    if kind == "INCLUDE":
        keep |= set(index.projection.get("NonKeyAttributes") or [])
    return project(item, [DocPath((name,)) for name in keep])
