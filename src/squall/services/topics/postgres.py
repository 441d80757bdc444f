"""The topic service's store on PostgreSQL, for the scale-out tier: several servers, one set of topics.

The tables live in a schema of their own (versioned like the metadata store's). A publish and its
deliveries are committed together, durably (``synchronous_commit`` on, PostgreSQL's default), before
it is acknowledged. Every server's deliverer claims due deliveries with ``FOR UPDATE SKIP LOCKED``, so
each is sent by one server at a time; a publish raises a ``NOTIFY`` that the other servers listen to,
so their idle deliverers wake at once. ``psycopg`` errors become ``StoreUnavailable`` here.
"""

from __future__ import annotations

from squall.services.topics.store import TopicStore, claim_columns, schema
from squall.stores.sql import POSTGRES_TYPES, PostgresSqlDatabase

#: The schema, one entry per version: never edit a released entry, append one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        *schema(POSTGRES_TYPES),
        *(f"ALTER TABLE deliveries ADD COLUMN {name} {kind}" for name, kind in claim_columns(POSTGRES_TYPES)),
    ),
)
#: One channel per database; a payload names the schema and the publishing server.
CHANNEL = "squall_topics"


class PostgresTopicStore(PostgresSqlDatabase, TopicStore):
    """Topics in the PostgreSQL schema ``schema``; safe to share between threads and between servers."""

    claim_lock = " FOR UPDATE OF d SKIP LOCKED"

    def __init__(self, dsn: str, schema: str, max_size: int = 4) -> None:
        super().__init__(dsn, schema, MIGRATIONS, "Topic store", CHANNEL, max_size=max_size)
