"""Event source mappings on PostgreSQL, for the scale-out tier: every server sees every mapping.

The tables are the SQLite store's (``mappings.schema``), in a schema of their own versioned like the
metadata store's, on a ``PostgresDatabase`` pool. Checkpoints are shared, so a shard whose server died
is carried on by another from where it stopped; a checkpoint and its shard's progress are still
written in one transaction, which PostgreSQL makes durable at commit (``synchronous_commit`` on, its
default). ``psycopg`` errors become ``StoreUnavailable`` here.
"""

from __future__ import annotations

import contextlib

from squall.services.streams.store import Connection
from squall.sources.mappings import MappingDatabase, schema
from squall.stores.postgres import PostgresDatabase

#: The schema, one entry per version: never edit a released entry, append one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (tuple(schema("BYTEA", "BIGINT")),)


class PostgresMappingDatabase(MappingDatabase):
    """Mappings in the PostgreSQL schema ``schema``; safe to share between threads and between servers."""

    for_update = " FOR UPDATE"

    def __init__(self, dsn: str, schema: str, max_size: int = 4) -> None:
        self.db = PostgresDatabase(dsn, schema, max_size=max_size, migrations=MIGRATIONS)

    def write(self) -> contextlib.AbstractContextManager[Connection]:
        return self.db.qmark("Mapping store")

    def read(self) -> contextlib.AbstractContextManager[Connection]:
        # Autocommit: each statement reads committed rows without a BEGIN/COMMIT round trip.
        return self.db.qmark("Mapping store", transaction=False)

    def close(self) -> None:
        self.db.close()
