"""``schedules.db``: rules, their targets and tags, Scheduler schedules, their fire state and the outbox.

One SQLite file holds both services' definitions and the firing state, so that claiming a tick
(advancing a schedule's ``last_tick``) and recording the invocations it owes (``outbox`` rows) is a
single transaction: a tick is either claimed with its invocations or not at all.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from squall.errors import StoreUnavailable
from squall.stores.sqlite_file import open_durable, write_transaction

T = TypeVar("T")

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rules (bus TEXT NOT NULL, name TEXT NOT NULL, arn TEXT NOT NULL,"
    " expression TEXT, pattern TEXT, state TEXT NOT NULL, description TEXT, role_arn TEXT,"
    " anchor REAL NOT NULL, last_tick REAL NOT NULL, PRIMARY KEY (bus, name))",
    "CREATE TABLE IF NOT EXISTS targets (bus TEXT NOT NULL, rule TEXT NOT NULL, id TEXT NOT NULL,"
    " body TEXT NOT NULL, PRIMARY KEY (bus, rule, id))",
    "CREATE TABLE IF NOT EXISTS tags (arn TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (arn, key))",
    "CREATE TABLE IF NOT EXISTS schedules (grp TEXT NOT NULL, name TEXT NOT NULL, arn TEXT NOT NULL,"
    " body TEXT NOT NULL, anchor REAL NOT NULL, last_tick REAL NOT NULL, created REAL NOT NULL,"
    " modified REAL NOT NULL, PRIMARY KEY (grp, name))",
    "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, function_arn TEXT NOT NULL,"
    " payload BLOB NOT NULL)",
]


class ScheduleDb:
    """The connection to ``schedules.db``; every change runs in one short IMMEDIATE transaction."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._conn = open_durable(path, SCHEMA, "schedule store")

    def tx(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in a write transaction; StoreUnavailable if SQLite fails."""
        with write_transaction(self._conn, self._lock, "Schedule store") as conn:
            return work(conn)

    def read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query."""
        with self._lock:
            try:
                return list(self._conn.execute(sql, args))
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"Schedule store failure: {exc}") from exc

    def clock_origin(self) -> float:
        """A wall-clock instant fixed when the file was created (the origin of a scaled test clock)."""

        def get(conn: sqlite3.Connection) -> float:
            row = conn.execute("SELECT value FROM meta WHERE key = 'clock_origin'").fetchone()
            if row is not None:
                return float(row[0])
            origin = time.time()
            conn.execute("INSERT INTO meta VALUES ('clock_origin', ?)", (repr(origin),))
            return origin

        return self.tx(get)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
