"""``schedules.db``: rules, their targets and tags, Scheduler schedules, their fire state and the outbox.

One SQLite file (the scale-out tier: the shared configuration database) holds both services'
definitions and the firing state, so that claiming a tick
(advancing a schedule's ``last_tick``) and recording the invocations it owes (``outbox`` rows) is a
single transaction: a tick is either claimed with its invocations or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from squall.stores.config import SqlBacked
from squall.stores.sql import Connection, SqlDatabase

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


class ScheduleDb(SqlBacked):
    """The schedule store's database; every change runs in one short write transaction."""

    def __init__(self, source: Path | SqlDatabase) -> None:
        super().__init__(source, SCHEMA, "Schedule store")

    def tx(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a write transaction; StoreUnavailable if the database fails."""
        with self.db.write() as conn:
            return work(conn)

    def read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """Rows of one query."""
        with self.db.read() as conn:
            return list(conn.execute(sql, args).fetchall())

    def clock_origin(self) -> float:
        """A wall-clock instant fixed when the store was created (the origin of a scaled test clock)."""

        def get(conn: Connection) -> float:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('clock_origin', ?) ON CONFLICT (key) DO NOTHING",
                (repr(time.time()),),
            )
            return float(conn.execute("SELECT value FROM meta WHERE key = 'clock_origin'").fetchone()[0])

        return self.tx(get)
