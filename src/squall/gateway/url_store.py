"""Durable storage of function URL configs (``function_urls.db``, or the scale-out tier's shared
configuration database), mirrored in memory.

A config belongs to a function, unqualified or through one alias, and is found either by that
(function, qualifier) pair (the Lambda API) or by its URL id (the gateway, on every request, from
the mirror). A change made through another server sharing the database reaches the mirror by
notification: the mirror is read again.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from squall.stores.config import SqlBacked
from squall.stores.sql import SqlDatabase

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS function_urls (
        url_id TEXT PRIMARY KEY,
        function TEXT NOT NULL,
        qualifier TEXT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (function, qualifier)
    )""",
)
#: What a write notifies the other servers of.
TOPIC = "function_urls"


@dataclass
class FunctionUrl:
    """One function URL config; ``qualifier`` is an alias name, or None for the unqualified function."""

    url_id: str
    function: str
    qualifier: str | None
    function_arn: str
    auth_type: str
    invoke_mode: str
    created: str
    modified: str
    cors: dict[str, Any] | None = field(default=None)


class FunctionUrlStore(SqlBacked):
    """Function URL configs by URL id and by (function, qualifier), written through to the database."""

    def __init__(self, source: Path | SqlDatabase) -> None:
        super().__init__(source, _SCHEMA, "Function URL store")
        self._lock = threading.Lock()
        self._by_id: dict[str, FunctionUrl] = {}
        self.on_change(TOPIC, self.reload)  # before the first read, so that no change falls between
        self.reload()

    def reload(self) -> None:
        """Read the mirror again from the database (oldest config first)."""
        with self._lock:
            with self.db.read() as conn:
                rows = conn.execute("SELECT body FROM function_urls").fetchall()
            urls = sorted((FunctionUrl(**json.loads(body)) for (body,) in rows), key=lambda u: (u.created, u.url_id))
            self._by_id = {url.url_id: url for url in urls}

    def by_id(self, url_id: str) -> FunctionUrl | None:
        """The config a request's URL id names, or None."""
        return self._by_id.get(url_id)

    def get(self, function: str, qualifier: str | None) -> FunctionUrl | None:
        return next(
            (u for u in list(self._by_id.values()) if u.function == function and u.qualifier == qualifier),
            None,
        )

    def of_function(self, function: str) -> list[FunctionUrl]:
        """Every config of a function (unqualified and through aliases), oldest first."""
        # A copy first: writes happen on worker threads (one C-level copy holds the GIL throughout).
        return [u for u in list(self._by_id.values()) if u.function == function]

    def put(self, url: FunctionUrl) -> None:
        """Create or replace one config."""
        self._write(
            url,
            " ON CONFLICT (url_id) DO UPDATE SET function = excluded.function,"
            " qualifier = excluded.qualifier, body = excluded.body",
        )

    def create(self, url: FunctionUrl) -> bool:
        """Add a new config; False (nothing written) if its function and qualifier already have one,
        which another server may have created since this one's mirror was read."""
        return self._write(url, " ON CONFLICT DO NOTHING")

    def _write(self, url: FunctionUrl, on_conflict: str) -> bool:
        with self._lock:
            with self.db.write() as conn:
                cursor = conn.execute(
                    "INSERT INTO function_urls (url_id, function, qualifier, body) VALUES (?, ?, ?, ?)" + on_conflict,
                    (url.url_id, url.function, url.qualifier or "", json.dumps(asdict(url))),
                )
                if cursor.rowcount != 1:
                    return False
                self.db.notify(conn, TOPIC)
            self._by_id = {**self._by_id, url.url_id: url}
            return True

    def delete(self, url_id: str) -> None:
        with self._lock:
            with self.db.write() as conn:
                conn.execute("DELETE FROM function_urls WHERE url_id = ?", (url_id,))
                self.db.notify(conn, TOPIC)
            self._by_id = {k: v for k, v in self._by_id.items() if k != url_id}

    def forget_function(self, function: str) -> None:
        """Drop every config of a deleted function: a new function of that name gets new URLs."""
        for url in self.of_function(function):
            self.delete(url.url_id)
