"""Provisioned concurrency configs: how many pre-initialised environments a version or alias asks for.

They live in their own SQLite file (like event invoke configs), keyed by function name and
qualifier (a version number or an alias name), so they survive a restart; the environments
themselves are re-created from them when the server starts.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from squall.errors import StoreUnavailable
from squall.stores.sqlite_file import open_durable


def timestamp(now: float | None = None) -> str:
    """The LastModified format of these configs: ``2019-12-31T20:28:49+0000`` (no fraction)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(time.time() if now is None else now))


class ProvisionedConfig(msgspec.Struct, kw_only=True):
    """One version's (or alias's) requested provisioned concurrency."""

    function_name: str
    qualifier: str
    requested: int
    last_modified: str


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ProvisionedConfig).decode


class ProvisionedStore:
    """Provisioned concurrency configs in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._conn = open_durable(
            path,
            [
                "CREATE TABLE IF NOT EXISTS provisioned_configs (function_name TEXT NOT NULL,"
                " qualifier TEXT NOT NULL, config TEXT NOT NULL, PRIMARY KEY (function_name, qualifier))",
            ],
            "provisioned concurrency store",
        )

    def _run(self, sql: str, args: tuple[Any, ...]) -> tuple[list[Any], int]:
        """The rows and the row count of one statement."""
        try:
            with self._lock:
                cursor = self._conn.execute(sql, args)
                return cursor.fetchall(), cursor.rowcount
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"Provisioned concurrency store unavailable: {exc}") from exc

    def put(self, config: ProvisionedConfig) -> None:
        self._run(
            "INSERT OR REPLACE INTO provisioned_configs VALUES (?, ?, ?)",
            (config.function_name, config.qualifier, _encode(config).decode()),
        )

    def get(self, function_name: str, qualifier: str) -> ProvisionedConfig | None:
        rows = self._run(
            "SELECT config FROM provisioned_configs WHERE function_name = ? AND qualifier = ?",
            (function_name, qualifier),
        )[0]
        return _decode(rows[0][0]) if rows else None

    def list(self, function_name: str | None = None) -> list[ProvisionedConfig]:
        """One function's configs (every function's with ``None``), by function name then qualifier."""
        if function_name is None:
            rows, _ = self._run("SELECT config FROM provisioned_configs ORDER BY function_name, qualifier", ())
        else:
            rows, _ = self._run(
                "SELECT config FROM provisioned_configs WHERE function_name = ? ORDER BY qualifier",
                (function_name,),
            )
        return [_decode(row[0]) for row in rows]

    def delete(self, function_name: str, qualifier: str | None = None) -> bool:
        """One config, or with ``qualifier=None`` all of a function's; True if any was there."""
        if qualifier is None:
            _, count = self._run("DELETE FROM provisioned_configs WHERE function_name = ?", (function_name,))
        else:
            _, count = self._run(
                "DELETE FROM provisioned_configs WHERE function_name = ? AND qualifier = ?",
                (function_name, qualifier),
            )
        return count > 0

    def close(self) -> None:
        self._conn.close()
