"""The table service: tables, items and secondary indexes, on the shared SQL seam.

Items are stored in wire form (JSON) under their key bytes: the hash key's and the range key's
:func:`~squall.services.tables.types.encode_key` bytes, which sort as DynamoDB orders keys, so a
Query is an index range scan (``reads.py``). Every secondary index keeps its own entries (index key
bytes plus the table key), written in the same transaction as the item, and so are the change
records of the table's stream. Every write is one transaction, committed durably.

The rows live in a ``TableStore``: a SQLite file (embedded tier) or PostgreSQL shared by several
servers (scale-out tier); the SQL and the logic here are the same for both. Where servers write at
once, a write holds its tables (shared) and its items (exclusive) until it commits
(``TableStore.hold``) and reads the tables' definitions inside its transaction, so conditions, ADDs
and transactions see no other write in between, and an index or a stream enabled elsewhere is kept
from the first write after. Definitions are cached for reads; another server's change of one drops
it here when its notification arrives.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from squall.errors import StoreUnavailable
from squall.services.tables import changes, reads, schema
from squall.services.tables.errors import (
    ConditionalCheckFailed,
    TableInUse,
    TableNotFound,
    TransactionCanceled,
    Validation,
)
from squall.services.tables.evaluator import apply_update, matches
from squall.services.tables.expressions import Condition, Update
from squall.services.tables.reads import ReadResult, ReadSpec, hash_of, key_bytes
from squall.services.tables.schema import IndexDef, TableDef
from squall.services.tables.store import ItemKey, SqliteTableStore, TableStore
from squall.services.tables.types import MAX_ITEM_BYTES, Item, encode_key, item_size
from squall.stores.sql import Connection, shared_secret

#: Items whose expiry time is more than five years in the past are not deleted (AWS's rule).
TTL_HORIZON_S = 5 * 365 * 24 * 3600
NOT_FOUND = "Requested resource not found"
_GET_ITEM = "SELECT item FROM items WHERE tbl = ? AND pk = ? AND sk = ?"
#: Items an expiry sweep deletes per transaction.
EXPIRY_BATCH = 1000

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


def expiry_of(item: Item, attribute: str | None) -> float | None:
    """When ``item`` expires: its TTL attribute as epoch seconds, if that is a number."""
    value = item.get(attribute) if attribute is not None else None
    if value is None or "N" not in value:
        return None
    return float(Decimal(value["N"]))


@functools.lru_cache(maxsize=256)
def _decode(definition: bytes) -> TableDef:
    return msgspec.json.decode(definition, type=TableDef)


#: A write ready for its transaction: the definition it was checked against, the op, its item's address.
_Prepared = tuple[TableDef, WriteOp, ItemKey]


@dataclass
class _Tx:
    """One write transaction: its connection, the definitions and items it holds, the change records
    it appends when its work is done."""

    conn: Connection
    tables: dict[str, TableDef | None] = field(default_factory=dict)
    held: set[ItemKey] = field(default_factory=set)
    changes: list[changes.Change] = field(default_factory=list)


class TableService:
    """Tables of one account and region, stored in ``store`` (a path: a SQLite file of its own)."""

    def __init__(self, store: Path | TableStore, account_id: str, region: str, expiry_interval: float = 1.0) -> None:
        self.account_id = account_id
        self.region = region
        self.store = SqliteTableStore(store) if isinstance(store, Path) else store
        #: Definitions for reads; dropped when another server changes one (``_heard``).
        self._tables: dict[str, TableDef] = {}
        self._cache_lock = threading.Lock()
        self._generation = 0  # counts drops, so that a read overtaken by one is not cached
        self._listeners: list[Callable[[str], None]] = []
        try:
            self.store.watch(self._heard, resync=self._forget_all)
            with self.store.read() as conn:
                for name, definition in conn.execute("SELECT name, definition FROM tables").fetchall():
                    self._tables[name] = _decode(bytes(definition))
        except BaseException:
            self.store.close()
            raise
        self._stopping = threading.Event()
        self._reaper = threading.Thread(
            target=self._expire_loop, args=(expiry_interval,), name="table-ttl", daemon=True
        )
        self._reaper.start()

    def close(self) -> None:
        self._stopping.set()
        self._reaper.join()
        self.store.close()

    def secret(self, name: str) -> bytes:
        """A random secret kept in the store, the same for every server using it."""
        return shared_secret(self.store, "table_secrets", name)

    def _heard(self, message: str) -> None:
        """Another server's notification: a table's definition changed, or a stream has new records."""
        kind, _, subject = message.partition(" ")
        if kind == "table":
            self._forget(subject)
        elif kind == "stream":
            for listener in self._listeners:
                listener(subject)

    # --- the definitions' cache ---------------------------------------------------------------------------
    def _forget(self, name: str) -> None:
        with self._cache_lock:
            self._generation += 1
            self._tables.pop(name, None)

    def _forget_all(self) -> None:
        """Changes may have been missed (another server's notifications were lost): read every
        definition again."""
        with self._cache_lock:
            self._generation += 1
            self._tables.clear()

    def _fetch(self, name: str) -> TableDef | None:
        """The stored definition, cached unless a change was heard of while it was read."""
        generation = self._generation
        rows = self.store.query("SELECT definition FROM tables WHERE name = ?", (name,))
        table = _decode(bytes(rows[0][0])) if rows else None
        with self._cache_lock:
            if table is not None and generation == self._generation:
                self._tables[name] = table
        return table

    @staticmethod
    def _definition(conn: Connection, name: str) -> TableDef | None:
        row = conn.execute("SELECT definition FROM tables WHERE name = ?", (name,)).fetchone()
        return None if row is None else _decode(bytes(row[0]))

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
        past), with their index entries and, on a streamed table, a REMOVE by the service; returns how many
        went. Each item goes once, whichever servers sweep at the same time."""
        due_sql = "expires IS NOT NULL AND expires <= ? AND expires > ?"
        window = (now, now - TTL_HORIZON_S)
        due = self.store.query(f"SELECT tbl, pk, sk FROM items WHERE {due_sql} LIMIT ?", (*window, EXPIRY_BATCH))
        keys = sorted((str(name), bytes(pk), bytes(sk)) for name, pk, sk in due)
        if not keys:
            return 0
        gone = 0
        with self._tx() as tx:
            self._hold(tx, sorted({name for name, _, _ in keys}), keys)
            for name, pk, sk in keys:
                row = tx.conn.execute(
                    f"SELECT item FROM items WHERE tbl = ? AND pk = ? AND sk = ? AND {due_sql}", (name, pk, sk, *window)
                ).fetchone()
                if row is None:  # written, deleted or expired elsewhere since
                    continue
                tx.conn.execute("DELETE FROM index_items WHERE tbl = ? AND pk = ? AND sk = ?", (name, pk, sk))
                tx.conn.execute("DELETE FROM items WHERE tbl = ? AND pk = ? AND sk = ?", (name, pk, sk))
                table = tx.tables.get(name)
                if table is not None:
                    old = json.loads(row[0])
                    self._emit(tx, table, {n: old[n] for n in table.key_names()}, old, None, service=True)
                gone += 1
        return gone

    def trim(self, now: float) -> int:
        """Drop change records past the streams' 24-hour retention."""
        with self._tx() as tx:
            return changes.trim(tx.conn, now)

    # --- change streams ---------------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(stream ARN)`` after every commit that wrote change records: this service's own
        (from the writing thread) and, on a shared store, other servers' (from a thread of the store's)."""
        self._listeners.append(listener)

    def inspect(self, work: Callable[[Connection], T]) -> T:
        """Run a read (of the change log, say) on a reading connection of the store."""
        with self.store.read() as conn:
            return work(conn)

    def stream_arn(self, table: TableDef) -> str | None:
        """The ARN of the table's enabled stream."""
        if not table.stream_enabled or table.stream_label is None:
            return None
        return changes.stream_arn(self.arn(table.name), table.stream_label)

    def _emit(self, tx: _Tx, table: TableDef, keys: Item, old: Item | None, new: Item | None, service: bool) -> None:
        arn = self.stream_arn(table)
        name = changes.event_name(old, new)
        if arn is None or name is None:
            return
        assert table.stream_view_type is not None
        now = time.time()
        record = changes.change_record(name, keys, old, new, table.stream_view_type, self.region, now, service)
        tx.changes.append(changes.Change(arn, now, keys, record))

    def _open_stream(self, conn: Connection, table: TableDef) -> None:
        arn = self.stream_arn(table)
        if arn is not None and table.stream_label is not None and table.stream_view_type is not None:
            key_schema = schema.key_schema(table.hash, table.range)
            first = self.store.last_change(conn) + 1
            changes.open_stream(
                conn, arn, table.name, table.stream_label, table.stream_view_type, key_schema, time.time(), first
            )

    def describe_ttl(self, name: str) -> dict[str, Any]:
        table = self.table(name)
        if table.ttl_attribute is None:
            return {"TimeToLiveStatus": "DISABLED"}
        return {"TimeToLiveStatus": "ENABLED", "AttributeName": table.ttl_attribute}

    def update_ttl(self, name: str, enabled: bool, attribute: str) -> None:
        with self._changing(name) as (tx, table):
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
            if enabled:
                rows = tx.conn.execute("SELECT pk, sk, item FROM items WHERE tbl = ?", (name,)).fetchall()
                tx.conn.executemany(
                    "UPDATE items SET expires = ? WHERE tbl = ? AND pk = ? AND sk = ?",
                    [(expiry_of(json.loads(text), attribute), name, pk, sk) for pk, sk, text in rows],
                )
            else:
                tx.conn.execute("UPDATE items SET expires = NULL WHERE tbl = ?", (name,))
            self._store_definition(tx, new)

    # --- transactions ---------------------------------------------------------------------------------------
    @contextmanager
    def _tx(self, ops: Sequence[_Prepared] = ()) -> Iterator[_Tx]:
        """One write transaction, holding the tables and items of ``ops``; its change records are
        appended at its end, and the listeners told once it has committed."""
        with self.store.write() as conn:
            tx = _Tx(conn)
            if ops:
                self._hold(tx, sorted({table.name for table, _, _ in ops}), sorted({key for _, _, key in ops}))
            yield tx
            arns = list(dict.fromkeys(change.arn for change in tx.changes))
            if arns:
                changes.append(self.store, conn, tx.changes)
                for arn in arns:
                    self.store.notify(conn, f"stream {arn}")
        for arn in arns:
            for listener in self._listeners:
                listener(arn)

    def _hold(self, tx: _Tx, names: Sequence[str], items: Sequence[ItemKey] = (), share: bool = True) -> None:
        """Hold tables (sorted) and items (sorted) in ``tx``, then read the tables' definitions as of now."""
        self.store.hold(tx.conn, names, items, share)
        tx.held.update(items)
        for name in names:
            tx.tables[name] = self._definition(tx.conn, name)

    @contextmanager
    def _changing(self, name: str) -> Iterator[tuple[_Tx, TableDef]]:
        """A transaction holding table ``name`` alone, to change its definition; TableNotFound without one."""
        with self._tx() as tx:
            self._hold(tx, [name], share=False)
            table = tx.tables[name]
            if table is None:
                raise TableNotFound(NOT_FOUND)
            yield tx, table
        self._forget(name)

    def _store_definition(self, tx: _Tx, table: TableDef) -> None:
        tx.conn.execute("UPDATE tables SET definition = ? WHERE name = ?", (msgspec.json.encode(table), table.name))
        self.store.notify(tx.conn, f"table {table.name}")

    # --- tables -----------------------------------------------------------------------------------------
    def table(self, name: str) -> TableDef:
        table = self._tables.get(name) or self._fetch(name)
        if table is None:
            raise TableNotFound(NOT_FOUND)
        return table

    def tables(self) -> list[str]:
        return [str(row[0]) for row in self.store.query("SELECT name FROM tables ORDER BY name")]

    def arn(self, name: str) -> str:
        return schema.table_arn(self.region, self.account_id, name)

    def _describe(self, conn: Connection, table: TableDef, status: str = "ACTIVE") -> dict[str, Any]:
        return schema.describe(table, self.region, self.account_id, self._counts(conn, table.name), status)

    @staticmethod
    def _counts(conn: Connection, name: str) -> dict[str, tuple[int, int]]:
        count, size = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items WHERE tbl = ?", (name,)
        ).fetchone()
        counts = {"": (int(count), int(size))}
        for index, index_count, index_size in conn.execute(
            "SELECT idx, COUNT(*), COALESCE(SUM(size), 0) FROM index_items WHERE tbl = ? GROUP BY idx", (name,)
        ).fetchall():
            counts[index] = (int(index_count), int(index_size))
        return counts

    def create_table(self, params: dict[str, Any]) -> dict[str, Any]:
        table = schema.table_from_request(params, str(uuid.uuid4()), time.time())
        with self._tx() as tx:
            created = tx.conn.execute(
                "INSERT INTO tables VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (table.name, msgspec.json.encode(table)),
            )
            if created.rowcount != 1:
                raise TableInUse(f"Table already exists: {table.name}")
            self._open_stream(tx.conn, table)
            self.store.notify(tx.conn, f"table {table.name}")
        self._forget(table.name)
        return schema.describe(table, self.region, self.account_id, {}, "ACTIVE")

    def describe_table(self, name: str) -> dict[str, Any]:
        with self.store.read() as conn:
            table = self._definition(conn, name)
            if table is None:
                raise TableNotFound(f"Requested resource not found: Table: {name} not found")
            return self._describe(conn, table)

    def list_tables(self, start: str | None, limit: int) -> tuple[list[str], str | None]:
        rows = self.store.query(
            "SELECT name FROM tables WHERE name > ? ORDER BY name LIMIT ?", (start or "", limit + 1)
        )
        names = [str(row[0]) for row in rows]
        page = names[:limit]
        return page, (page[-1] if len(names) > limit else None)

    def delete_table(self, name: str) -> dict[str, Any]:
        with self._changing(name) as (tx, table):
            description = self._describe(tx.conn, table, "DELETING")
            for statement in (
                "DELETE FROM items WHERE tbl = ?",
                "DELETE FROM index_items WHERE tbl = ?",
                "DELETE FROM tables WHERE name = ?",
            ):
                tx.conn.execute(statement, (name,))
            changes.close_streams(tx.conn, name, time.time())
            self.store.notify(tx.conn, f"table {name}")
        return description

    def update_table(self, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params["TableName"])
        with self._changing(name) as (tx, table):
            new, created = schema.updated_table(table, params)
            kept = {i.name for i in new.indexes}
            for index in table.indexes:
                if index.name not in kept:
                    tx.conn.execute("DELETE FROM index_items WHERE tbl = ? AND idx = ?", (name, index.name))
            for index in created:
                self._backfill(tx.conn, new, index)
            if "StreamSpecification" in params:
                changes.close_streams(tx.conn, name, time.time())
                self._open_stream(tx.conn, new)
            self._store_definition(tx, new)
            return self._describe(tx.conn, new, "ACTIVE")

    def _backfill(self, conn: Connection, table: TableDef, index: IndexDef) -> None:
        rows = conn.execute("SELECT pk, sk, size, item FROM items WHERE tbl = ?", (table.name,)).fetchall()
        for pk, sk, size, text in rows:
            item = json.loads(text)
            if schema.index_key_problem(index, item) is None:
                self._index_entry(conn, table, index, item, bytes(pk), bytes(sk), size)

    # --- single items -------------------------------------------------------------------------------------
    @staticmethod
    def _load(conn: Connection, table: TableDef, pk: bytes, sk: bytes) -> Item | None:
        row = conn.execute(_GET_ITEM, (table.name, pk, sk)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def get_item(self, table_name: str, key: Item) -> Item | None:
        table = self.table(table_name)
        schema.check_key(table, key)
        rows = self.store.query(_GET_ITEM, (table.name, *key_bytes(table, key)))
        return dict(json.loads(rows[0][0])) if rows else None

    def get_items(self, requests: list[tuple[str, Item]]) -> list[Item | None]:
        """Several items read by one statement, so in one snapshot (BatchGetItem, TransactGetItems)."""
        keys: list[ItemKey] = []
        for table_name, key in requests:
            table = self.table(table_name)
            schema.check_key(table, key)
            keys.append((table.name, *key_bytes(table, key)))
        if not keys:
            return []
        rows = self.store.query(
            # ORed key lookups, which SQLite and PostgreSQL both answer from the primary key's index
            # (SQLite would scan the table for an IN list of row values).
            "SELECT tbl, pk, sk, item FROM items WHERE " + " OR ".join(["(tbl = ? AND pk = ? AND sk = ?)"] * len(keys)),
            [part for key in keys for part in key],
        )
        found = {(str(name), bytes(pk), bytes(sk)): text for name, pk, sk, text in rows}
        return [dict(json.loads(found[key])) if key in found else None for key in keys]

    def _prepared(self, op: WriteOp) -> _Prepared:
        """``op`` checked against its table's (cached) definition, with the address of its item."""
        table = self.table(op.table)
        self.prepare(table, op)
        return table, op, (table.name, *key_bytes(table, op.key))

    def write(self, op: WriteOp) -> WriteResult:
        prepared = self._prepared(op)
        with self._tx([prepared]) as tx:
            return self._apply(tx, *prepared)

    def write_many(self, ops: list[WriteOp]) -> None:
        """BatchWriteItem's puts and deletes, in one transaction (none is ever left unprocessed)."""
        prepared = [self._prepared(op) for op in ops]
        with self._tx(prepared) as tx:
            for each in prepared:
                self._apply(tx, *each)

    def transact(self, ops: list[WriteOp]) -> None:
        """TransactWriteItems: every op or none; TransactionCanceledException with a reason per op."""
        prepared = [self._prepared(op) for op in ops]
        if len({key for _, _, key in prepared}) < len(prepared):
            raise Validation("Transaction request cannot include multiple operations on one item")
        with self._tx(prepared) as tx:
            reasons: list[dict[str, Any]] = []
            failed = False
            for each in prepared:
                try:
                    self._apply(tx, *each)
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

    def _apply(self, tx: _Tx, table: TableDef, op: WriteOp, key: ItemKey) -> WriteResult:
        # The definition as of this transaction: indexes or TTL may have changed since the caller looked.
        current = tx.tables.get(table.name)
        if current is None:
            raise TableNotFound(NOT_FOUND)
        if current is not table:  # (decoded once per stored definition: the same object when unchanged)
            table = current
            self.prepare(table, op)
            key = (table.name, *key_bytes(table, op.key))
            if key not in tx.held:  # the table was made anew, with other keys, since
                self._hold(tx, (), [key])
        _, pk, sk = key
        conn = tx.conn
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
        if table.indexes:  # a table without indexes has no entries: they go with the index
            conn.execute("DELETE FROM index_items WHERE tbl = ? AND pk = ? AND sk = ?", (table.name, pk, sk))
        if new is None:
            conn.execute("DELETE FROM items WHERE tbl = ? AND pk = ? AND sk = ?", (table.name, pk, sk))
        else:
            conn.execute(
                "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tbl, pk, sk) DO UPDATE SET"
                " size = excluded.size, item = excluded.item, expires = excluded.expires",
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
        self._emit(tx, table, {n: op.key[n] for n in table.key_names()}, old, new, service=False)
        return WriteResult(old, new)

    @staticmethod
    def _index_entry(
        conn: Connection, table: TableDef, index: IndexDef, item: Item, pk: bytes, sk: bytes, size: int
    ) -> None:
        if any(name not in item for name in index.key_names()):
            return
        ipk = encode_key(item[index.hash.name])
        isk = encode_key(item[index.range.name]) if index.range is not None else b""
        conn.execute(
            "INSERT INTO index_items VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
        return reads.page(self.store.query, table, index, spec)
