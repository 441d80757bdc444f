"""Durable storage of HTTP APIs and their routes, integrations, stages and authorizers.

Each resource is kept as its API Gateway v2 wire document (camelCase members) in ``gateway.db``,
with an in-memory mirror the gateway reads on every request without touching SQLite.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from squall.stores.sqlite_file import open_durable, write_transaction

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


class GatewayStore:
    """Resources by (kind, api id, item id), written through to SQLite."""

    def __init__(self, path: Path) -> None:
        self._conn = open_durable(path, _SCHEMA, "gateway store")
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], dict[str, Document]] = {}
        self._seq = 0
        rows = self._conn.execute("SELECT kind, api_id, item_id, seq, body FROM items ORDER BY seq").fetchall()
        for kind, api_id, item_id, seq, body in rows:
            self._items.setdefault((kind, api_id), {})[item_id] = json.loads(body)
            self._seq = max(self._seq, seq)

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
        """Create or replace one resource."""
        with self._lock:
            current = self._conn.execute(
                "SELECT seq FROM items WHERE kind = ? AND api_id = ? AND item_id = ?", (kind, api_id, item_id)
            ).fetchone()
            if current is None:
                self._seq += 1
            seq = self._seq if current is None else current[0]
            self._conn.execute(
                "INSERT OR REPLACE INTO items (kind, api_id, item_id, seq, body) VALUES (?, ?, ?, ?, ?)",
                (kind, api_id, item_id, seq, json.dumps(body)),
            )
            self._items.setdefault((kind, api_id), {})[item_id] = body

    def delete(self, kind: str, api_id: str, item_id: str) -> bool:
        """Remove one resource (and, for an API, everything it owns); False if it did not exist."""
        with self._lock:
            if item_id not in self._items.get((kind, api_id), {}):
                return False
            with write_transaction(self._conn, None, "Gateway store") as conn:
                conn.execute("DELETE FROM items WHERE kind = ? AND api_id = ? AND item_id = ?", (kind, api_id, item_id))
                if kind == "api":
                    conn.execute("DELETE FROM items WHERE api_id = ?", (item_id,))
            del self._items[(kind, api_id)][item_id]
            if kind == "api":
                for owned in KINDS[1:]:
                    self._items.pop((owned, item_id), None)
            return True

    def close(self) -> None:
        self._conn.close()
