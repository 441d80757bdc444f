"""``SqliteLeaseStore``: the embedded tier's leases, in their own SQLite file beside the others.

Every server process on one data dir shares this file, so a lease held by one of them keeps the
others' pollers off that shard. Expiry uses wall-clock time, which all of them share.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squall.errors import StoreUnavailable
from squall.stores.base import LeaseStore
from squall.stores.sqlite_file import open_durable, write_transaction


class SqliteLeaseStore(LeaseStore):
    """Leases as rows (name, owner, expiry); every change is one short IMMEDIATE transaction."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._conn = open_durable(
            path,
            ["CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL)"],
            "lease store",
        )

    def _tx(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        with write_transaction(self._conn, self._lock, "Lease store") as conn:
            return work(conn)

    def acquire(self, owner: str, lease: str, ttl_s: float) -> bool:
        def take(conn: sqlite3.Connection) -> bool:
            now = time.time()
            row = conn.execute("SELECT owner, expires FROM leases WHERE name = ?", (lease,)).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return False
            conn.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (lease, owner, now + ttl_s))
            return True

        return bool(self._tx(take))

    def extend(self, owner: str, ttl_s: float) -> set[str]:
        def renew(conn: sqlite3.Connection) -> set[str]:
            conn.execute("UPDATE leases SET expires = ? WHERE owner = ?", (time.time() + ttl_s, owner))
            return {r[0] for r in conn.execute("SELECT name FROM leases WHERE owner = ?", (owner,))}

        held: set[str] = self._tx(renew)
        return held

    def release(self, owner: str, lease: str | None = None) -> None:
        if lease is None:
            self._tx(lambda conn: conn.execute("DELETE FROM leases WHERE owner = ?", (owner,)))
        else:
            self._tx(lambda conn: conn.execute("DELETE FROM leases WHERE owner = ? AND name = ?", (owner, lease)))

    def reap_abandoned(self, alive: Callable[[str], bool]) -> int:
        def reap(conn: sqlite3.Connection) -> int:
            owners = {r[0] for r in conn.execute("SELECT DISTINCT owner FROM leases")}
            dead = [o for o in owners if not alive(o)]
            freed = 0
            for owner in dead:
                freed += conn.execute("DELETE FROM leases WHERE owner = ?", (owner,)).rowcount
            return freed

        freed: int = self._tx(reap)
        return freed

    def holders(self) -> dict[str, str]:
        with self._lock:
            try:
                rows = self._conn.execute("SELECT name, owner FROM leases WHERE expires > ?", (time.time(),))
                return {r[0]: r[1] for r in rows}
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"Lease store failure: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()
