"""Event source mappings on PostgreSQL, for the scale-out tier: every server sees every mapping.

The tables are the SQLite store's (``mappings.schema``), in a schema of their own versioned like the
metadata store's, on a ``PostgresDatabase`` pool. Checkpoints are shared, so a shard whose server died
is carried on by another from where it stopped; a checkpoint and its shard's progress are still
written in one transaction, which PostgreSQL makes durable at commit (``synchronous_commit`` on, its
default). ``psycopg`` errors become ``StoreUnavailable`` here.
"""

from __future__ import annotations

from squall.sources.mappings import schema
from squall.stores.sql import PostgresSqlDatabase

#: The schema, one entry per version: never edit a released entry, append one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (tuple(schema("BYTEA", "BIGINT")),)


def postgres_mapping_database(dsn: str, schema: str, max_size: int = 4) -> PostgresSqlDatabase:
    """Mappings in the PostgreSQL schema ``schema``; safe to share between threads and between servers."""
    return PostgresSqlDatabase(dsn, schema, MIGRATIONS, "Mapping store", max_size=max_size)
