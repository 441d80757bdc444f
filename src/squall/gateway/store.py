"""Durable storage of HTTP APIs and their routes, integrations, stages and authorizers.

Each resource is kept as its API Gateway v2 wire document (camelCase members) in ``gateway.db`` (the
scale-out tier: the shared configuration database), with an in-memory mirror the gateway reads on
every request without touching the database.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from squall.stores.config import SqlBacked
from squall.stores.sql import SqlDatabase

#: The kinds of resource an API owns; an API itself is kind ``api`` with ``api_id == ""``.
KINDS = ("api", "route", "integration", "stage", "authorizer")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS items (
        kind TEXT NOT NULL,
        api_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (kind, api_id, item_id)
    )""",
)

Document = dict[str, Any]
#: What a write notifies the other servers of.
TOPIC = "gateway"


class GatewayStore(SqlBacked):
    """Resources by (kind, api id, item id), written through to the database. A change made through
    another server sharing the database reaches the mirror by notification: it is read again."""

    def __init__(self, source: Path | SqlDatabase) -> None:
        super().__init__(source, _SCHEMA, "Gateway store")
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], dict[str, Document]] = {}
        self.on_change(TOPIC, self.reload)  # before the first read, so that no change falls between
        self.reload()

    def reload(self) -> None:
        """Read the mirror again from the database."""
        with self._lock:
            with self.db.read() as conn:
                rows = conn.execute(
                    "SELECT kind, api_id, item_id, body FROM items ORDER BY seq, kind, api_id, item_id"
                ).fetchall()
            items: dict[tuple[str, str], dict[str, Document]] = {}
            for kind, api_id, item_id, body in rows:
                items.setdefault((kind, api_id), {})[item_id] = json.loads(body)
            self._items = items

    def get(self, kind: str, api_id: str, item_id: str) -> Document | None:
        """A copy of one resource, or None."""
        item = self._items.get((kind, api_id), {}).get(item_id)
        return None if item is None else json.loads(json.dumps(item))

    def items(self, kind: str, api_id: str) -> list[Document]:
        """Every resource of ``kind`` in the API, oldest first (copies)."""
        return [json.loads(json.dumps(item)) for item in self._items.get((kind, api_id), {}).values()]

    def view(self, kind: str, api_id: str) -> dict[str, Document]:
        """The live mapping of ``kind`` in the API, for the gateway's read-only use."""
        return self._items.get((kind, api_id), {})

    def api_ids(self) -> list[str]:
        """Every API's id, oldest first."""
        return [item_id for item_id in self._items.get(("api", ""), {})]

    def put(self, kind: str, api_id: str, item_id: str, body: Document) -> None:
        """Create or replace one resource (a new one is numbered after every other)."""
        with self._lock:
            with self.db.write() as conn:
                conn.execute(
                    "INSERT INTO items (kind, api_id, item_id, seq, body)"
                    " VALUES (?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM items), ?)"
                    " ON CONFLICT (kind, api_id, item_id) DO UPDATE SET body = excluded.body",
                    (kind, api_id, item_id, json.dumps(body)),
                )
                self.db.notify(conn, TOPIC)
            self._items.setdefault((kind, api_id), {})[item_id] = body

    def delete(self, kind: str, api_id: str, item_id: str) -> bool:
        """Remove one resource (and, for an API, everything it owns); False if it did not exist."""
        with self._lock:
            if item_id not in self._items.get((kind, api_id), {}):
                return False
            with self.db.write() as conn:
                conn.execute("DELETE FROM items WHERE kind = ? AND api_id = ? AND item_id = ?", (kind, api_id, item_id))
                if kind == "api":
                    conn.execute("DELETE FROM items WHERE api_id = ?", (item_id,))
                self.db.notify(conn, TOPIC)
            self._items.get((kind, api_id), {}).pop(item_id, None)
            if kind == "api":
                for owned in KINDS[1:]:
                    self._items.pop((owned, item_id), None)
            return True
