"""The embedded metadata store: one SQLite file in WAL mode.

Every acknowledged write is committed with ``synchronous=FULL`` first, so it survives a crash or
a power cut. One connection serves every thread; a lock serialises its use, which is also what
SQLite would do with its single writer. Writes open ``BEGIN IMMEDIATE`` transactions so that a
second process sharing the file (a CLI tool, a second server) waits on ``busy_timeout`` instead of
failing half-way. ``sqlite3`` errors never leave this module: they become ``StoreUnavailable``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from squall.errors import ResourceConflict, StoreUnavailable
from squall.models import LATEST, Alias, AsyncEvent, FunctionConfig, LogEvent, UsageRecord
from squall.stores import codec
from squall.stores.base import LogBatch, LogGroupSummary, LogStreamSummary, MetadataStore
from squall.stores.sqlite_file import insert_rows

#: How long a statement waits for another process's write lock before giving up.
BUSY_TIMEOUT_MS = 10_000

#: The schema, one entry per version; entry ``i`` moves a database from version ``i`` to ``i + 1``.
#: Never edit a released entry: append a new one. ``PRAGMA user_version`` records where a file is.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE functions (
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            config TEXT NOT NULL,
            PRIMARY KEY (name, version)
        ) WITHOUT ROWID""",
        # visible_at = max(not_before, lease expiry): the one column that claim() scans.
        """CREATE TABLE async_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id TEXT NOT NULL,
            function_name TEXT NOT NULL,
            qualifier TEXT NOT NULL,
            payload BLOB NOT NULL,
            enqueued_at REAL NOT NULL,
            attempts INTEGER NOT NULL,
            not_before REAL NOT NULL,
            visible_at REAL NOT NULL
        )""",
        "CREATE INDEX async_events_due ON async_events (visible_at, id)",
        """CREATE TABLE usage (
            id INTEGER PRIMARY KEY,
            function_name TEXT NOT NULL,
            version TEXT NOT NULL,
            request_id TEXT NOT NULL,
            start REAL NOT NULL,
            duration_ms REAL NOT NULL,
            billed_ms INTEGER NOT NULL,
            memory_mb INTEGER NOT NULL,
            gb_seconds REAL NOT NULL,
            max_memory_mb INTEGER NOT NULL,
            cold INTEGER NOT NULL,
            init_ms REAL,
            outcome TEXT NOT NULL,
            trigger TEXT NOT NULL,
            architecture TEXT NOT NULL
        )""",
        "CREATE INDEX usage_start ON usage (start)",
        "CREATE INDEX usage_function ON usage (function_name, start)",
        # AUTOINCREMENT: ids are cursors for tailing, so they must never be reused.
        """CREATE TABLE log_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            log_group TEXT NOT NULL,
            stream TEXT NOT NULL,
            timestamp INTEGER NOT NULL,
            message TEXT NOT NULL
        )""",
        "CREATE INDEX log_events_group ON log_events (log_group, id)",
        "CREATE INDEX log_events_stream ON log_events (log_group, stream, id)",
    ),
    (
        """CREATE TABLE aliases (
            function_name TEXT NOT NULL,
            name TEXT NOT NULL,
            config TEXT NOT NULL,
            PRIMARY KEY (function_name, name)
        ) WITHOUT ROWID""",
        """CREATE TABLE reserved_concurrency (
            function_name TEXT PRIMARY KEY,
            reserved INTEGER NOT NULL
        ) WITHOUT ROWID""",
    ),
)

#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)


class SqliteMetadataStore(MetadataStore):
    """``MetadataStore`` on one SQLite file; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            _create_private(self.path)
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"Cannot open metadata store {self.path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreUnavailable(f"Metadata store {self.path} cannot use WAL (journal mode {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            _migrate(conn, self.path)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreUnavailable(f"Cannot open metadata store {self.path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    # --- plumbing --------------------------------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The connection, for statements that only read (each is its own consistent snapshot)."""
        with self._lock:
            conn = self._open_conn()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"Metadata store read failed: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed on success, rolled back on any exception."""
        with self._lock:
            conn = self._open_conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"Metadata store write failed: {exc}") from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):  # the original error is the one worth reporting
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreUnavailable(f"Metadata store write failed: {exc}") from exc
                raise

    def _open_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable(f"Metadata store {self.path} is closed")
        return self._conn

    # --- functions -------------------------------------------------------------------------------
    def create_function(self, config: FunctionConfig) -> None:
        with self._write() as conn:
            taken = conn.execute("SELECT 1 FROM functions WHERE name = ? LIMIT 1", (config.name,))
            if taken.fetchone() is not None:
                raise ResourceConflict(f"Function already exist: {config.name}")
            conn.execute(
                "INSERT INTO functions (name, version, config) VALUES (?, ?, ?)",
                (config.name, config.version, codec.encode(config).decode()),
            )

    def put_function(self, config: FunctionConfig) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO functions (name, version, config) VALUES (?, ?, ?)",
                (config.name, config.version, codec.encode(config).decode()),
            )

    def get_function(self, name: str, version: str) -> FunctionConfig | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT config FROM functions WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
        return None if row is None else codec.config(row[0])

    def list_functions(self, marker: str | None, limit: int) -> tuple[list[FunctionConfig], str | None]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name, config FROM functions WHERE version = ? AND name >= ? ORDER BY name LIMIT ?",
                (LATEST, marker or "", limit + 1),
            ).fetchall()
        # The marker is the name of the first function of the next page.
        next_marker = rows[limit][0] if len(rows) > limit else None
        return [codec.config(config) for _, config in rows[:limit]], next_marker

    def delete_function(self, name: str, version: str | None = None) -> bool:
        with self._write() as conn:
            if version is None:
                cur = conn.execute("DELETE FROM functions WHERE name = ?", (name,))
                conn.execute("DELETE FROM aliases WHERE function_name = ?", (name,))
                conn.execute("DELETE FROM reserved_concurrency WHERE function_name = ?", (name,))
            else:
                cur = conn.execute("DELETE FROM functions WHERE name = ? AND version = ?", (name, version))
            return cur.rowcount > 0

    def function_count(self) -> int:
        with self._read() as conn:
            row = conn.execute("SELECT COUNT(*) FROM functions WHERE version = ?", (LATEST,)).fetchone()
        return int(row[0])

    def list_versions(self, name: str) -> list[FunctionConfig]:
        with self._read() as conn:
            rows = conn.execute("SELECT version, config FROM functions WHERE name = ?", (name,)).fetchall()
        rows.sort(key=lambda row: (row[0] != LATEST, int(row[0]) if row[0] != LATEST else 0))
        return [codec.config(config) for _, config in rows]

    # --- aliases and reserved concurrency --------------------------------------------------------
    def insert_alias(self, alias: Alias) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO aliases (function_name, name, config) VALUES (?, ?, ?)",
                (alias.function_name, alias.name, codec.encode(alias).decode()),
            )
            return cur.rowcount > 0

    def put_alias(self, alias: Alias) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO aliases (function_name, name, config) VALUES (?, ?, ?)",
                (alias.function_name, alias.name, codec.encode(alias).decode()),
            )

    def get_alias(self, function_name: str, name: str) -> Alias | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT config FROM aliases WHERE function_name = ? AND name = ?", (function_name, name)
            ).fetchone()
        return None if row is None else codec.alias(row[0])

    def list_aliases(self, function_name: str) -> list[Alias]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT config FROM aliases WHERE function_name = ? ORDER BY name", (function_name,)
            ).fetchall()
        return [codec.alias(row[0]) for row in rows]

    def delete_alias(self, function_name: str, name: str) -> bool:
        with self._write() as conn:
            cur = conn.execute("DELETE FROM aliases WHERE function_name = ? AND name = ?", (function_name, name))
            return cur.rowcount > 0

    def set_reserved_concurrency(self, function_name: str, reserved: int | None) -> None:
        with self._write() as conn:
            if reserved is None:
                conn.execute("DELETE FROM reserved_concurrency WHERE function_name = ?", (function_name,))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO reserved_concurrency (function_name, reserved) VALUES (?, ?)",
                    (function_name, reserved),
                )

    def reserved_concurrency(self) -> dict[str, int]:
        with self._read() as conn:
            rows = conn.execute("SELECT function_name, reserved FROM reserved_concurrency").fetchall()
        return {str(name): int(reserved) for name, reserved in rows}

    # --- async invocation queue ------------------------------------------------------------------
    def enqueue(self, event: AsyncEvent) -> int:
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO async_events (request_id, function_name, qualifier, payload, enqueued_at,"
                " attempts, not_before, visible_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.request_id,
                    event.function_name,
                    event.qualifier,
                    event.payload,
                    event.enqueued_at,
                    event.attempts,
                    event.not_before,
                    event.not_before,
                ),
            )
            event_id = cur.lastrowid
        if event_id is None:  # pragma: no cover - sqlite3 always sets it after an INSERT
            raise StoreUnavailable("Metadata store did not return the new event's id")
        return event_id

    def claim(self, now: float, limit: int, lease_s: float) -> list[AsyncEvent]:
        if limit < 1:
            return []
        with self._write() as conn:
            rows = conn.execute(
                f"SELECT {codec.EVENT_COLUMNS} FROM async_events WHERE visible_at <= ? ORDER BY visible_at, id LIMIT ?",
                (now, limit),
            ).fetchall()
            if rows:
                conn.executemany(
                    "UPDATE async_events SET visible_at = ? WHERE id = ?",
                    [(now + lease_s, row[0]) for row in rows],
                )
        return [codec.event(row) for row in rows]

    def complete(self, event_id: int) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM async_events WHERE id = ?", (event_id,))

    def reschedule(self, event_id: int, not_before: float, attempts: int) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE async_events SET not_before = ?, visible_at = ?, attempts = ? WHERE id = ?",
                (not_before, not_before, attempts, event_id),
            )

    def release_claims(self) -> int:
        with self._write() as conn:
            cursor = conn.execute("UPDATE async_events SET visible_at = not_before WHERE visible_at > not_before")
            return int(cursor.rowcount)

    def queued(self) -> int:
        """Every event not yet completed, whether due, scheduled for later or leased right now."""
        with self._read() as conn:
            row = conn.execute("SELECT COUNT(*) FROM async_events").fetchone()
        return int(row[0])

    # --- metering --------------------------------------------------------------------------------
    def record(self, usage: Sequence[UsageRecord], logs: Sequence[LogBatch]) -> None:
        rows = [codec.usage_row(r) for r in usage]
        lines = [(group, stream, e.timestamp, e.message) for group, stream, events in logs for e in events]
        if not rows and not lines:
            return
        with self._write() as conn:
            insert_rows(conn, f"INSERT INTO usage ({codec.USAGE_COLUMNS}) VALUES", rows)
            insert_rows(conn, "INSERT INTO log_events (log_group, stream, timestamp, message) VALUES", lines)

    def usage(
        self, since: float = 0.0, until: float | None = None, function_name: str | None = None
    ) -> list[UsageRecord]:
        """Records with ``since <= start < until`` (``until`` None: no upper bound), oldest first."""
        sql, params = codec.usage_query(since, until, function_name)
        with self._read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [codec.usage(row) for row in rows]

    # --- logs ------------------------------------------------------------------------------------
    def log_events(
        self, group: str, after_id: int = 0, limit: int = 1000, stream: str | None = None
    ) -> list[tuple[int, str, LogEvent]]:
        return self.log_event_range(group, [stream] if stream is not None else None, after_id=after_id, limit=limit)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                conn.close()
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"Closing metadata store {self.path} failed: {exc}") from exc

    # --- log groups and streams (CloudWatch Logs' read side) ---------------------------------------
    def log_groups(self, prefix: str = "") -> list[LogGroupSummary]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT log_group, MIN(timestamp), SUM(LENGTH(CAST(message AS BLOB))) FROM log_events"
                " WHERE substr(log_group, 1, ?) = ? GROUP BY log_group ORDER BY log_group",
                (len(prefix), prefix),
            ).fetchall()
        return [LogGroupSummary(row[0], int(row[1]), int(row[2])) for row in rows]

    def log_streams(self, group: str) -> list[LogStreamSummary]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT stream, MIN(timestamp), MAX(timestamp), SUM(LENGTH(CAST(message AS BLOB)))"
                " FROM log_events WHERE log_group = ? GROUP BY stream ORDER BY stream",
                (group,),
            ).fetchall()
        return [LogStreamSummary(row[0], int(row[1]), int(row[2]), int(row[3])) for row in rows]

    def log_event_range(
        self,
        group: str,
        streams: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        after_id: int = 0,
        before_id: int | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[tuple[int, str, LogEvent]]:
        query = codec.log_range_query(group, streams, start_ms, end_ms, after_id, before_id, limit, newest_first)
        if query is None:
            return []
        with self._read() as conn:
            rows = conn.execute(*query).fetchall()
        return [codec.log_line(row) for row in rows]

    def delete_log_group(self, group: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM log_events WHERE log_group = ?", (group,))
            return cursor.rowcount > 0


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only (SQLite gives its -wal/-shm the same mode).

    Only when it is missing: another fd opened and closed on a file this process already holds open in
    SQLite would drop the process's POSIX locks on it (see ``sqlite_file.open_durable``)."""
    if not path.exists():
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to ``SCHEMA_VERSION`` in one transaction: a file is never half-migrated."""
    conn.execute("BEGIN IMMEDIATE")  # also waits out another process migrating the same file
    try:
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if current > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"Metadata store {path} has schema version {current}, newer than this Squall "
                f"understands ({SCHEMA_VERSION}); upgrade Squall"
            )
        for version in range(current, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
