"""Durable storage of IAM roles: one SQLite file in the data dir, or the scale-out tier's shared
configuration database.

A role is one row: its attributes, inline policies and attached policy ARNs as JSON. Role names
are unique regardless of case, as in IAM. Driver errors become ``StoreUnavailable`` in the seam.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from squall.stores.config import SqlBacked
from squall.stores.sql import SqlDatabase

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


class RoleStore(SqlBacked):
    """Roles in their own SQLite file, or the shared configuration database; safe to share between
    threads and between servers. A name is matched regardless of (ASCII) case, in both."""

    def __init__(self, source: Path | SqlDatabase) -> None:
        super().__init__(
            source,
            ["CREATE TABLE IF NOT EXISTS roles (name TEXT PRIMARY KEY COLLATE NOCASE, role TEXT NOT NULL)"],
            "Role store",
        )

    def get(self, name: str) -> StoredRole | None:
        with self.db.read() as conn:
            row = conn.execute(f"SELECT role FROM roles WHERE {_NAMED}", (name,)).fetchone()
        return None if row is None else _decode(row[0])

    def insert(self, role: StoredRole) -> bool:
        """Add a new role; False if one with that name (in any case) exists."""
        with self.db.write() as conn:
            cursor = conn.execute(
                "INSERT INTO roles (name, role) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (role.name, _encode(role).decode()),
            )
            return cursor.rowcount > 0

    def update(self, name: str, change: Callable[[StoredRole], T]) -> tuple[StoredRole, T] | None:
        """Apply ``change`` to the stored role in one transaction; None if there is no such role.
        An exception from ``change`` leaves the role as it was."""
        with self.db.write() as conn:
            row = conn.execute(f"SELECT role FROM roles WHERE {_NAMED}" + self.db.for_update, (name,)).fetchone()
            if row is None:
                return None
            role = _decode(row[0])
            result = change(role)
            conn.execute(f"UPDATE roles SET role = ? WHERE {_NAMED}", (_encode(role).decode(), name))
        return role, result

    def delete(self, name: str, check: Callable[[StoredRole], Any]) -> bool:
        """Delete a role after ``check`` (which may raise) approved it; False if absent."""
        with self.db.write() as conn:
            row = conn.execute(f"SELECT role FROM roles WHERE {_NAMED}" + self.db.for_update, (name,)).fetchone()
            if row is None:
                return False
            check(_decode(row[0]))
            conn.execute(f"DELETE FROM roles WHERE {_NAMED}", (name,))
        return True

    def list(self) -> list[StoredRole]:
        """Every role, ordered by name (case-insensitively)."""
        with self.db.read() as conn:
            rows = conn.execute("SELECT role FROM roles ORDER BY lower(name)").fetchall()
        return [_decode(row[0]) for row in rows]


#: A role by name in any case: NOCASE in SQLite's table, lower() in PostgreSQL's (whose unique index
#: is on ``lower(name)``); both fold ASCII letters (the only letters IAM allows in a name).
_NAMED = "lower(name) = lower(?)"
