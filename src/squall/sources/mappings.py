"""Event source mappings and their checkpoints, stored durably (SQLite, the embedded tier).

A checkpoint is the next sequence counter to deliver from one shard; it only moves forward after
a batch was handled (or deliberately discarded), so delivery is at least once and never loses a record.
Beside it, in the same transaction, each shard keeps its open tumbling window (start and state) and
the IteratorAge of its last batch.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from squall.errors import StoreUnavailable
from squall.stores.sqlite_file import open_durable, write_transaction

_SAVE_CHECKPOINT = "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)"
_SAVE_PROGRESS = (
    "INSERT INTO shard_progress VALUES (?, ?, ?, ?) ON CONFLICT (uuid, shard_id) DO UPDATE SET"
    " iterator_age_ms = COALESCE(excluded.iterator_age_ms, iterator_age_ms), window = excluded.window"
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


class MappingStore:
    """Mappings and per-shard checkpoints in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._conn = open_durable(
            path,
            [
                "CREATE TABLE IF NOT EXISTS mappings (uuid TEXT PRIMARY KEY, body BLOB NOT NULL)",
                "CREATE TABLE IF NOT EXISTS checkpoints (uuid TEXT NOT NULL, shard_id TEXT NOT NULL,"
                " position INTEGER NOT NULL, PRIMARY KEY (uuid, shard_id))",
                "CREATE TABLE IF NOT EXISTS shard_progress (uuid TEXT NOT NULL, shard_id TEXT NOT NULL,"
                " iterator_age_ms INTEGER, window TEXT, PRIMARY KEY (uuid, shard_id))",
            ],
            "mapping store",
        )

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"Mapping store failure: {exc}") from exc

    def put(self, mapping: EventSourceMapping) -> None:
        mapping.last_modified = time.time()
        self._run("INSERT OR REPLACE INTO mappings VALUES (?, ?)", (mapping.uuid, msgspec.json.encode(mapping)))

    def get(self, uuid: str) -> EventSourceMapping | None:
        rows = self._run("SELECT body FROM mappings WHERE uuid = ?", (uuid,))
        return msgspec.json.decode(rows[0][0], type=EventSourceMapping) if rows else None

    def all(self) -> list[EventSourceMapping]:
        rows = self._run("SELECT body FROM mappings ORDER BY uuid")
        return [msgspec.json.decode(r[0], type=EventSourceMapping) for r in rows]

    def record_result(self, uuid: str, result: str) -> None:
        """Set a mapping's LastProcessingResult (if it still exists), leaving the rest as stored."""
        mapping = self.get(uuid)
        if mapping is not None and mapping.last_processing_result != result:
            mapping.last_processing_result = result
            self._run("UPDATE mappings SET body = ? WHERE uuid = ?", (msgspec.json.encode(mapping), uuid))

    def delete(self, uuid: str) -> None:
        with write_transaction(self._conn, self._lock, "Mapping store") as conn:
            for table in ("mappings", "checkpoints", "shard_progress"):
                conn.execute(f"DELETE FROM {table} WHERE uuid = ?", (uuid,))

    def checkpoint(self, uuid: str, shard_id: str) -> int | None:
        rows = self._run("SELECT position FROM checkpoints WHERE uuid = ? AND shard_id = ?", (uuid, shard_id))
        return int(rows[0][0]) if rows else None

    def save_checkpoint(
        self, uuid: str, shard_id: str, position: int, window: str | None = None, iterator_age_ms: int | None = None
    ) -> None:
        """Move a shard's checkpoint, with its open window (JSON, or None) and last IteratorAge, atomically."""
        with write_transaction(self._conn, self._lock, "Mapping store") as conn:
            conn.execute(_SAVE_CHECKPOINT, (uuid, shard_id, position))
            conn.execute(_SAVE_PROGRESS, (uuid, shard_id, iterator_age_ms, window))

    def progress(self, uuid: str, shard_id: str) -> tuple[int | None, str | None, int | None]:
        """A shard's checkpoint, open window (JSON) and last IteratorAge in ms; None where there is none."""
        rows = self._run(
            "SELECT c.position, p.window, p.iterator_age_ms FROM checkpoints c LEFT JOIN shard_progress p"
            " ON p.uuid = c.uuid AND p.shard_id = c.shard_id WHERE c.uuid = ? AND c.shard_id = ?",
            (uuid, shard_id),
        )
        if not rows:
            return None, None, None
        position, window, age = rows[0]
        return int(position), window, None if age is None else int(age)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
