"""Table change streams: the records a write emits, and the log that keeps them (in the table store).

A change record is written by the same transaction as the item it describes, so a crash can
neither lose one nor invent one. Records are numbered by one counter for the whole store (never
reused, even after trimming: SQLite's AUTOINCREMENT, PostgreSQL's BIGSERIAL); a stream's sequence
numbers are that counter spelled as a decimal string of fixed width, so they increase as strings and
as numbers. Writers lock a stream's row before appending to it (``append``), so a stream's records
commit in the order of their numbers and a reader never finds one committed behind its position. Each stream has one
shard, open while the stream is enabled and closed when it is disabled or its table deleted.
Records and disabled streams are trimmed after 24 hours.
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import msgspec

from squall.services.tables.types import Item, item_size
from squall.stores.sql import Connection, SqlDatabase

#: Sequence numbers are ``SEQUENCE_BASE + counter``: 21 digits, the shortest botocore's model allows.
SEQUENCE_BASE = 10**20
RETENTION_S = 24 * 3600
EVENT_VERSION = "1.1"
VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
SERVICE_PRINCIPAL = "dynamodb.amazonaws.com"


class TableStream(msgspec.Struct, frozen=True):
    """One stream of a table: its single shard and the counters that bound it."""

    arn: str
    table: str
    label: str
    view: str
    key_schema: list[dict[str, str]]
    shard_id: str
    start_seq: int
    end_seq: int | None
    trimmed_seq: int
    created: float
    disabled: float | None


class ChangeRow(msgspec.Struct, frozen=True):
    """One stored change record: its counter, when it was made, its keys (JSON) and its record (JSON)."""

    seq: int
    created: float
    keys: str
    record: str


def sequence(counter: int) -> str:
    return str(SEQUENCE_BASE + counter)


def counter_of(sequence_number: str) -> int | None:
    """The counter behind a sequence number, or None when it is not one of ours."""
    if not sequence_number.isdigit() or int(sequence_number) <= SEQUENCE_BASE:
        return None
    return int(sequence_number) - SEQUENCE_BASE


def stream_arn(table_arn: str, label: str) -> str:
    return f"{table_arn}/stream/{label}"


def new_shard_id(now: float) -> str:
    """A shard id shaped like DynamoDB Streams' (``shardId-<20 digits>-<8 hex>``)."""
    return f"shardId-{int(now * 1000):020d}-{secrets.token_hex(4)}"


def event_name(old: Item | None, new: Item | None) -> str | None:
    """INSERT, MODIFY or REMOVE for a write from ``old`` to ``new``; None when nothing changed."""
    if old is None and new is None:
        return None
    if old is None:
        return "INSERT"
    if new is None:
        return "REMOVE"
    return None if _same(old, new) else "MODIFY"


def _same(old: Item, new: Item) -> bool:
    # Sets are unordered: an item whose only difference is the order of a set's members is unchanged.
    return bool(_canonical(old) == _canonical(new))


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: sorted(v) if k in ("SS", "NS", "BS") else _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def change_record(
    name: str, keys: Item, old: Item | None, new: Item | None, view: str, region: str, created: float, service: bool
) -> dict[str, Any]:
    """A Streams API record (without its SequenceNumber, which the log assigns) for one change.

    ``service`` marks a deletion made by DynamoDB itself (TTL), with the service principal as identity.
    """
    body: dict[str, Any] = {"ApproximateCreationDateTime": int(created), "Keys": keys}
    if view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and new is not None:
        body["NewImage"] = new
    if view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and old is not None:
        body["OldImage"] = old
    body["SizeBytes"] = max(1, sum(item_size(body[k]) for k in ("Keys", "NewImage", "OldImage") if k in body))
    body["StreamViewType"] = view
    record: dict[str, Any] = {
        "eventID": uuid.uuid4().hex,
        "eventName": name,
        "eventVersion": EVENT_VERSION,
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": body,
    }
    if service:
        record["userIdentity"] = {"PrincipalId": SERVICE_PRINCIPAL, "Type": "Service"}
    return record


def numbered(row: ChangeRow) -> dict[str, Any]:
    """The Streams API record of a stored row, with its SequenceNumber."""
    record: dict[str, Any] = json.loads(row.record)
    record["dynamodb"]["SequenceNumber"] = sequence(row.seq)
    return record


def lambda_record(record: dict[str, Any], arn: str) -> dict[str, Any]:
    """A Streams API record as a function receives it: the source ARN added, the identity in lower camel case."""
    event = dict(record)
    identity = event.pop("userIdentity", None)
    if identity is not None:
        event["userIdentity"] = {"type": identity["Type"], "principalId": identity["PrincipalId"]}
    event["eventSourceARN"] = arn
    return event


def dynamodb_event(records: list[dict[str, Any]], arn: str) -> dict[str, Any]:
    """The ``{"Records": [...]}`` event of one batch of a table stream."""
    return {"Records": [lambda_record(r, arn) for r in records]}


# --- the log ---------------------------------------------------------------------------------------------
_COLUMNS = "arn, tbl, label, view, key_schema, shard_id, start_seq, end_seq, trimmed_seq, created, disabled"


def _stream(row: tuple[Any, ...]) -> TableStream:
    arn, table, label, view, key_schema, shard_id, start_seq, end_seq, trimmed, created, disabled = row
    return TableStream(
        arn, table, label, view, json.loads(key_schema), shard_id, start_seq, end_seq, trimmed, created, disabled
    )


def last_of(conn: Connection, stream: TableStream) -> int:
    """The last counter of ``stream`` so far: a LATEST reader starts after it. Committed in the order
    of their numbers, a stream's records cannot appear below it later."""
    if stream.end_seq is not None:
        return stream.end_seq
    (last,) = conn.execute("SELECT MAX(seq) FROM change_records WHERE arn = ?", (stream.arn,)).fetchone()
    return max(int(last or 0), stream.trimmed_seq, stream.start_seq - 1)


def open_stream(
    conn: Connection,
    arn: str,
    table: str,
    label: str,
    view: str,
    key_schema: list[dict[str, str]],
    now: float,
    first: int,
) -> None:
    """A new stream whose records will be numbered ``first`` or later."""
    conn.execute(
        f"INSERT INTO table_streams ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0, ?, NULL)",
        (arn, table, label, view, json.dumps(key_schema), new_shard_id(now), first, now),
    )


def close_streams(conn: Connection, table: str, now: float) -> None:
    """Disable the open stream of ``table`` (if any): its shard ends at its last record."""
    for (arn,) in conn.execute("SELECT arn FROM table_streams WHERE tbl = ? AND disabled IS NULL", (table,)).fetchall():
        (last,) = conn.execute("SELECT MAX(seq) FROM change_records WHERE arn = ?", (arn,)).fetchone()
        conn.execute(
            "UPDATE table_streams SET disabled = ?, end_seq = COALESCE(?, start_seq - 1) WHERE arn = ?",
            (now, last, arn),
        )


class Change(msgspec.Struct, frozen=True):
    """A change record waiting for its transaction's end to be appended: stream, time, keys, record."""

    arn: str
    created: float
    keys: Item
    record: dict[str, Any]


def append(db: SqlDatabase, conn: Connection, pending: list[Change]) -> None:
    """Append ``pending`` (in order), numbered as they go in. Each stream's row is locked first, in ARN
    order: a stream's appends take their numbers one transaction at a time, until it commits."""
    if not pending:
        return
    if db.for_update:  # (a database that writes one transaction at a time has no row locks to take)
        for arn in sorted({change.arn for change in pending}):
            conn.execute("SELECT arn FROM table_streams WHERE arn = ?" + db.for_update, (arn,))
    conn.executemany(
        "INSERT INTO change_records (arn, created, keys, record) VALUES (?, ?, ?, ?)",
        [
            (c.arn, c.created, json.dumps(c.keys, sort_keys=True), json.dumps(c.record, separators=(",", ":")))
            for c in pending
        ],
    )


def trim(conn: Connection, now: float) -> int:
    """Drop records older than the retention period, and streams disabled longer than it; returns records dropped."""
    horizon = now - RETENTION_S
    rows = conn.execute(
        "SELECT arn, MAX(seq) FROM change_records WHERE created < ? GROUP BY arn ORDER BY arn", (horizon,)
    ).fetchall()
    for arn, last in rows:  # in ARN order, as writers lock them
        conn.execute("UPDATE table_streams SET trimmed_seq = ? WHERE arn = ? AND trimmed_seq < ?", (last, arn, last))
    dropped = conn.execute("DELETE FROM change_records WHERE created < ?", (horizon,)).rowcount
    for (arn,) in conn.execute("SELECT arn FROM table_streams WHERE disabled < ? ORDER BY arn", (horizon,)).fetchall():
        conn.execute("DELETE FROM change_records WHERE arn = ?", (arn,))
        conn.execute("DELETE FROM table_streams WHERE arn = ?", (arn,))
    return int(dropped)


def streams(conn: Connection, table: str | None = None) -> list[TableStream]:
    """Every stream (of ``table``), oldest first."""
    if table is None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM table_streams ORDER BY created, arn").fetchall()
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM table_streams WHERE tbl = ? ORDER BY created, arn", (table,)
        ).fetchall()
    return [_stream(r) for r in rows]


def stream(conn: Connection, arn: str) -> TableStream | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM table_streams WHERE arn = ?", (arn,)).fetchone()
    return None if row is None else _stream(row)


def read(conn: Connection, arn: str, from_counter: int, limit: int) -> list[ChangeRow]:
    rows = conn.execute(
        "SELECT seq, created, keys, record FROM change_records WHERE arn = ? AND seq >= ? ORDER BY seq LIMIT ?",
        (arn, from_counter, limit),
    ).fetchall()
    return [ChangeRow(*r) for r in rows]
