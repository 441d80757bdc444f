"""Event source mappings and their checkpoints, stored durably: one set of SQL over a small seam.

A checkpoint is the next sequence counter to deliver from one shard; it only moves forward after
a batch was handled (or deliberately discarded), so delivery is at least once and never loses a record.
Beside it, in the same transaction, each shard keeps its open tumbling window (start and state) and
the IteratorAge of its last batch.

The rows live in a ``squall.stores.sql.SqlDatabase``: a SQLite file (the embedded tier) or, in the
scale-out tier, PostgreSQL shared by every server (``mappings_postgres.py``), so that a mapping
created through one server is run by all of them and a shard's checkpoint outlives the server that
wrote it. The SQL is written once, with ``?`` placeholders, like the stream service's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from squall.stores.sql import SqlDatabase, SqliteDatabase

# ``window`` is quoted everywhere: PostgreSQL reserves the word (SQLite takes it either way).
_SAVE_CHECKPOINT = (
    "INSERT INTO checkpoints VALUES (?, ?, ?) ON CONFLICT (uuid, shard_id) DO UPDATE SET position = excluded.position"
)
_SAVE_PROGRESS = (
    "INSERT INTO shard_progress VALUES (?, ?, ?, ?) ON CONFLICT (uuid, shard_id) DO UPDATE SET"
    " iterator_age_ms = COALESCE(excluded.iterator_age_ms, shard_progress.iterator_age_ms),"
    ' "window" = excluded."window"'
)


class EventSourceMapping(msgspec.Struct, kw_only=True):
    """One mapping, with Lambda's defaults for stream sources."""

    uuid: str
    function_arn: str
    event_source_arn: str
    batch_size: int = 100
    maximum_batching_window_s: int = 0
    starting_position: str = "LATEST"
    starting_position_timestamp: float | None = None
    enabled: bool = True
    state: str = "Creating"
    state_transition_reason: str = "User action"
    maximum_retry_attempts: int = -1
    maximum_record_age_s: int = -1
    bisect_on_error: bool = False
    parallelization_factor: int = 1
    tumbling_window_s: int = 0
    #: ScalingConfig.MaximumConcurrency of a queue mapping (None: up to Lambda's 1,000).
    maximum_concurrency: int | None = None
    function_response_types: list[str] = msgspec.field(default_factory=list)
    on_failure: str | None = None
    filter_patterns: list[str] = msgspec.field(default_factory=list)
    last_modified: float = 0.0
    last_processing_result: str = "No records processed"


#: Invokes a mapping's function with a batch: (mapping, body, ``shape``) -> (function error or None,
#: response payload, executed version). ``shape`` says how the sandbox builds the event from the
#: body (see ``squall.runtime.bootstrap.batch_events``); None when the body is the event itself.
Invoke = Callable[[EventSourceMapping, bytes, dict[str, Any] | None], Awaitable[tuple[str | None, bytes, str]]]


def schema(blob: str, int64: str) -> list[str]:
    """The mapping tables with a dialect's names for binary and 64-bit integer columns. Never change a
    statement a release has shipped: files and schemas in the field were made with it."""
    return [
        f"CREATE TABLE IF NOT EXISTS mappings (uuid TEXT PRIMARY KEY, body {blob} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS checkpoints (uuid TEXT NOT NULL, shard_id TEXT NOT NULL,"
        f" position {int64} NOT NULL, PRIMARY KEY (uuid, shard_id))",
        "CREATE TABLE IF NOT EXISTS shard_progress (uuid TEXT NOT NULL, shard_id TEXT NOT NULL,"
        f' iterator_age_ms {int64}, "window" TEXT, PRIMARY KEY (uuid, shard_id))',
    ]


class MappingStore:
    """Mappings and per-shard checkpoints in a ``SqlDatabase`` (a path: a SQLite file)."""

    def __init__(self, database: Path | SqlDatabase) -> None:
        self.db = (
            SqliteDatabase(database, schema("BLOB", "INTEGER"), "Mapping store")
            if isinstance(database, Path)
            else database
        )

    def put(self, mapping: EventSourceMapping) -> None:
        mapping.last_modified = time.time()
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO mappings VALUES (?, ?) ON CONFLICT (uuid) DO UPDATE SET body = excluded.body",
                (mapping.uuid, msgspec.json.encode(mapping)),
            )

    def get(self, uuid: str) -> EventSourceMapping | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT body FROM mappings WHERE uuid = ?", (uuid,)).fetchone()
        return _decode(row[0]) if row else None

    def all(self) -> list[EventSourceMapping]:
        with self.db.read() as conn:
            rows = conn.execute("SELECT body FROM mappings ORDER BY uuid").fetchall()
        return [_decode(r[0]) for r in rows]

    def record_result(self, uuid: str, result: str) -> None:
        """Set a mapping's LastProcessingResult (if it still exists), leaving the rest as stored."""
        with self.db.write() as conn:
            row = conn.execute("SELECT body FROM mappings WHERE uuid = ?" + self.db.for_update, (uuid,)).fetchone()
            if row is None:
                return
            mapping = _decode(row[0])
            if mapping.last_processing_result != result:
                mapping.last_processing_result = result
                conn.execute("UPDATE mappings SET body = ? WHERE uuid = ?", (msgspec.json.encode(mapping), uuid))

    def delete(self, uuid: str) -> None:
        with self.db.write() as conn:
            for table in ("mappings", "checkpoints", "shard_progress"):
                conn.execute(f"DELETE FROM {table} WHERE uuid = ?", (uuid,))

    def checkpoint(self, uuid: str, shard_id: str) -> int | None:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT position FROM checkpoints WHERE uuid = ? AND shard_id = ?", (uuid, shard_id)
            ).fetchone()
        return int(row[0]) if row else None

    def save_checkpoint(
        self, uuid: str, shard_id: str, position: int, window: str | None = None, iterator_age_ms: int | None = None
    ) -> None:
        """Move a shard's checkpoint, with its open window (JSON, or None) and last IteratorAge, atomically.

        Committed without waiting for the disk (SQLite): a killed process loses none of it, and a power
        cut can at worst bring back the last batches, which at-least-once delivery allows; this spares
        every batch an fsync (about a fifth of a small batch's server time)."""
        with self.db.write(durable=False) as conn:
            conn.execute(_SAVE_CHECKPOINT, (uuid, shard_id, position))
            conn.execute(_SAVE_PROGRESS, (uuid, shard_id, iterator_age_ms, window))

    def progress(self, uuid: str, shard_id: str) -> tuple[int | None, str | None, int | None]:
        """A shard's checkpoint, open window (JSON) and last IteratorAge in ms; None where there is none."""
        with self.db.read() as conn:
            row = conn.execute(
                'SELECT c.position, p."window", p.iterator_age_ms FROM checkpoints c LEFT JOIN shard_progress p'
                " ON p.uuid = c.uuid AND p.shard_id = c.shard_id WHERE c.uuid = ? AND c.shard_id = ?",
                (uuid, shard_id),
            ).fetchone()
        if row is None:
            return None, None, None
        position, window, age = row
        return int(position), window, None if age is None else int(age)

    def close(self) -> None:
        self.db.close()


def _decode(body: bytes) -> EventSourceMapping:
    return msgspec.json.decode(body, type=EventSourceMapping)
