"""The table service's store on PostgreSQL, for the scale-out tier: several servers, one set of tables.

The tables live in a schema of their own (versioned like the metadata store's). Servers write at the
same time, so a write holds, until it commits, transaction-scoped advisory locks: its tables' shared
(a definition change takes one exclusively, so it waits for the writes in flight and they for it) and
then each item it reads and writes, exclusive, including items that do not exist yet, which no row
lock could cover. A conditional write, an ADD or a transaction therefore reads and writes its items
with no other server's write in between. Change records are numbered by a ``BIGSERIAL``; the service
locks a stream's row before appending to it, so a stream's records commit in the order of their
numbers. Writes raise a ``NOTIFY`` that the other servers listen to. ``psycopg`` errors become
``StoreUnavailable`` here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from squall.services.tables.store import ItemKey, TableStore, schema
from squall.stores.sql import POSTGRES_TYPES, Connection, PostgresSqlDatabase

#: The schema, one entry per version: never edit a released entry, append one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (tuple(schema(POSTGRES_TYPES)),)
#: One channel per database; a payload names the schema, the writing server and what changed.
CHANNEL = "squall_tables"


class PostgresTableStore(PostgresSqlDatabase, TableStore):
    """Tables in the PostgreSQL schema ``schema``; safe to share between threads and between servers."""

    def __init__(self, dsn: str, schema: str, max_size: int = 8) -> None:
        super().__init__(dsn, schema, MIGRATIONS, "Table store", CHANNEL, max_size=max_size)

    def hold(self, conn: Connection, tables: Sequence[str], items: Sequence[ItemKey] = (), share: bool = True) -> None:
        table_lock = "pg_advisory_xact_lock_shared(?)" if share else "pg_advisory_xact_lock(?)"
        calls = [table_lock] * len(tables) + ["pg_advisory_xact_lock(?)"] * len(items)
        if calls:
            # One round trip; PostgreSQL evaluates a target list from left to right.
            keys = [self._key(b"t", name.encode()) for name in tables]
            keys += [self._key(b"i", name.encode(), pk, sk) for name, pk, sk in items]
            conn.execute("SELECT " + ", ".join(calls), keys)

    def _key(self, kind: bytes, *parts: bytes) -> int:
        """A 64-bit advisory lock key; the schema is part of it, since advisory locks are database-wide."""
        digest = hashlib.blake2b(digest_size=8)
        for part in (self.schema.encode(), kind, *parts):
            digest.update(len(part).to_bytes(4, "big"))
            digest.update(part)
        return int.from_bytes(digest.digest(), "big", signed=True)

    def last_change(self, conn: Connection) -> int:
        (last,) = conn.execute(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM change_records_seq_seq"
        ).fetchone()
        return int(last)
