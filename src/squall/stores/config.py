"""The small configuration stores over the ``squall.stores.sql`` seam, and the helpers they share.

Each configuration store (layers, resource policies, event invoke configs, provisioned concurrency
configs, function URLs, HTTP APIs, IAM roles, rules and schedules) takes either a path, where it
opens a SQLite file of its own (the embedded tier; the files and their tables are those of earlier
releases), or a :class:`~squall.stores.sql.SqlDatabase` that all of them share (the scale-out tier:
one PostgreSQL schema, ``stores/config_postgres.py``, which its owner closes). The SQL is written
once and runs on both.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import msgspec

from squall.stores.sql import Connection, SqlDatabase, SqliteDatabase

T = TypeVar("T", bound=msgspec.Struct)
Statements = list[dict[str, Any]]

#: How many times an edit is recomputed when another writer changed the row meanwhile.
EDIT_ATTEMPTS = 20


class SqlBacked:
    """A store on its own SQLite file (a path, closed with the store) or on a shared database (not)."""

    def __init__(self, source: Path | SqlDatabase, sqlite_schema: Sequence[str], what: str) -> None:
        self._owns = isinstance(source, Path)
        self.db: SqlDatabase = SqliteDatabase(source, sqlite_schema, what) if isinstance(source, Path) else source

    def on_change(self, topic: str, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when another server changed ``topic`` (what this store notifies with
        ``self.db.notify``), or may have while notifications were lost."""
        self.db.watch(lambda message: callback() if message == topic else None, resync=callback)

    def close(self) -> None:
        if self._owns:
            self.db.close()


class QualifiedConfigs(SqlBacked, Generic[T]):
    """One msgspec document per (function name, qualifier), in a table
    ``(function_name, qualifier, config)``: event invoke configs and provisioned concurrency configs."""

    def __init__(self, source: Path | SqlDatabase, table: str, kind: type[T], what: str) -> None:
        super().__init__(
            source,
            [
                f"CREATE TABLE IF NOT EXISTS {table} (function_name TEXT NOT NULL,"
                " qualifier TEXT NOT NULL, config TEXT NOT NULL, PRIMARY KEY (function_name, qualifier))",
            ],
            what,
        )
        self._table = table
        self._encode = msgspec.json.Encoder().encode
        self._decode = msgspec.json.Decoder(kind).decode

    def put(self, config: T) -> None:
        key = (getattr(config, "function_name"), getattr(config, "qualifier"))  # noqa: B009
        with self.db.write() as conn:
            conn.execute(
                f"INSERT INTO {self._table} (function_name, qualifier, config) VALUES (?, ?, ?)"
                " ON CONFLICT (function_name, qualifier) DO UPDATE SET config = excluded.config",
                (*key, self._encode(config).decode()),
            )

    def get(self, function_name: str, qualifier: str) -> T | None:
        with self.db.read() as conn:
            row = conn.execute(
                f"SELECT config FROM {self._table} WHERE function_name = ? AND qualifier = ?",
                (function_name, qualifier),
            ).fetchone()
        return self._decode(row[0]) if row else None

    def list(self, function_name: str | None = None) -> list[T]:
        """One function's configs (every function's with ``None``), by function name then qualifier."""
        with self.db.read() as conn:
            if function_name is None:
                rows = conn.execute(f"SELECT config FROM {self._table} ORDER BY function_name, qualifier").fetchall()
            else:
                rows = conn.execute(
                    f"SELECT config FROM {self._table} WHERE function_name = ? ORDER BY qualifier", (function_name,)
                ).fetchall()
        return [self._decode(row[0]) for row in rows]

    def delete(self, function_name: str, qualifier: str | None = None) -> bool:
        """One config, or with ``qualifier=None`` all of a function's; True if any was there."""
        with self.db.write() as conn:
            if qualifier is None:
                cursor = conn.execute(f"DELETE FROM {self._table} WHERE function_name = ?", (function_name,))
            else:
                cursor = conn.execute(
                    f"DELETE FROM {self._table} WHERE function_name = ? AND qualifier = ?", (function_name, qualifier)
                )
            return cursor.rowcount > 0


class PolicyTable:
    """Policy statements and a revision id per two-part key, in a table ``(<key columns>, statements,
    revision_id)`` of a store's database: functions' resource policies and layer versions' policies.

    An edit is optimistic: it is computed from the policy as read, and written only if the revision
    is still the one read (inserted only if there still is none); otherwise it is computed again from
    the new policy. So two servers adding statements at once both keep theirs.
    """

    def __init__(self, db: SqlDatabase, table: str, keys: tuple[str, str]) -> None:
        self.db = db
        self._table = table
        self._where = f"{keys[0]} = ? AND {keys[1]} = ?"
        self._columns = f"{keys[0]}, {keys[1]}"

    def get(self, key: tuple[Any, Any]) -> tuple[Statements, str] | None:
        """The statements and revision id; None if there is no policy."""
        with self.db.read() as conn:
            return self._read(conn, key)

    def edit(self, key: tuple[Any, Any], change: Callable[[Statements, str | None], Statements]) -> str:
        """Replace the statements by ``change(statements, revision id or None)``; no statements left:
        the policy is gone. Returns the new revision id; whatever ``change`` raises leaves the policy."""
        for _ in range(EDIT_ATTEMPTS):
            with self.db.write() as conn:
                current = self._read(conn, key)
                statements, revision = current if current is not None else ([], None)
                edited = change(statements, revision)
                new = str(uuid.uuid4())
                if revision is None:
                    if not edited:
                        return new
                    cursor = conn.execute(
                        f"INSERT INTO {self._table} ({self._columns}, statements, revision_id) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT DO NOTHING",
                        (*key, msgspec.json.encode(edited).decode(), new),
                    )
                elif edited:
                    cursor = conn.execute(
                        f"UPDATE {self._table} SET statements = ?, revision_id = ? WHERE {self._where}"
                        " AND revision_id = ?",
                        (msgspec.json.encode(edited).decode(), new, *key, revision),
                    )
                else:
                    cursor = conn.execute(
                        f"DELETE FROM {self._table} WHERE {self._where} AND revision_id = ?", (*key, revision)
                    )
                if cursor.rowcount == 1:
                    return new
        raise RuntimeError(f"the policy {key} kept changing during {EDIT_ATTEMPTS} attempts to edit it")

    def forget(self, key: tuple[Any, Any | None]) -> None:
        """Drop one policy, or (second part None) every policy under the first part of the key."""
        with self.db.write() as conn:
            if key[1] is None:
                conn.execute(f"DELETE FROM {self._table} WHERE {self._where.split(' AND ')[0]}", (key[0],))
            else:
                conn.execute(f"DELETE FROM {self._table} WHERE {self._where}", key)

    def _read(self, conn: Connection, key: tuple[Any, Any]) -> tuple[Statements, str] | None:
        row = conn.execute(f"SELECT statements, revision_id FROM {self._table} WHERE {self._where}", key).fetchone()
        return None if row is None else (msgspec.json.decode(row[0]), str(row[1]))
