"""Durable storage of IAM roles: one SQLite file (WAL, ``synchronous=FULL``) in the data dir.

A role is one row: its attributes, inline policies and attached policy ARNs as JSON. Role names
are unique regardless of case, as in IAM. ``sqlite3`` errors become ``StoreUnavailable`` here.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from squall.errors import StoreUnavailable
from squall.stores.sqlite_file import open_durable

T = TypeVar("T")


class StoredRole(msgspec.Struct, kw_only=True):
    """A role as stored. ``policies`` maps inline policy names to their JSON documents."""

    name: str
    role_id: str
    path: str
    created: str  # ISO 8601, as IAM returns CreateDate
    assume_role_policy: str
    description: str | None = None
    max_session_duration: int = 3600
    tags: list[dict[str, str]] = msgspec.field(default_factory=list)
    policies: dict[str, str] = msgspec.field(default_factory=dict)
    attached: list[str] = msgspec.field(default_factory=list)


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(StoredRole).decode


class SqliteRoleStore:
    """Roles in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = open_durable(
            self.path,
            ["CREATE TABLE IF NOT EXISTS roles (name TEXT PRIMARY KEY COLLATE NOCASE, role TEXT NOT NULL)"],
            "role store",
        )

    @contextmanager
    def _conn_locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise StoreUnavailable(f"Role store {self.path} is closed")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"Role store failed: {exc}") from exc

    def get(self, name: str) -> StoredRole | None:
        with self._conn_locked() as conn:
            row = conn.execute("SELECT role FROM roles WHERE name = ?", (name,)).fetchone()
        return None if row is None else _decode(row[0])

    def insert(self, role: StoredRole) -> bool:
        """Add a new role; False if one with that name (in any case) exists."""
        with self._conn_locked() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO roles (name, role) VALUES (?, ?)", (role.name, _encode(role).decode())
            )
            return cursor.rowcount > 0

    def update(self, name: str, change: Callable[[StoredRole], T]) -> tuple[StoredRole, T] | None:
        """Apply ``change`` to the stored role in one transaction; None if there is no such role.
        An exception from ``change`` leaves the role as it was."""
        with self._conn_locked() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT role FROM roles WHERE name = ?", (name,)).fetchone()
                if row is None:
                    conn.execute("ROLLBACK")
                    return None
                role = _decode(row[0])
                result = change(role)
                conn.execute("UPDATE roles SET role = ? WHERE name = ?", (_encode(role).decode(), name))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return role, result

    def delete(self, name: str, check: Callable[[StoredRole], Any]) -> bool:
        """Delete a role after ``check`` (which may raise) approved it; False if absent."""
        with self._conn_locked() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT role FROM roles WHERE name = ?", (name,)).fetchone()
                if row is not None:
                    check(_decode(row[0]))
                    conn.execute("DELETE FROM roles WHERE name = ?", (name,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return row is not None

    def list(self) -> list[StoredRole]:
        """Every role, ordered by name (case-insensitively)."""
        with self._conn_locked() as conn:
            rows = conn.execute("SELECT role FROM roles ORDER BY name").fetchall()
        return [_decode(row[0]) for row in rows]

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
