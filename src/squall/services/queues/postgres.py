"""The queue service's store on PostgreSQL, for the scale-out tier: several servers, one set of queues.

The tables live in a schema of their own (versioned like the metadata store's). Receives take their
messages with ``FOR UPDATE SKIP LOCKED``: two servers receiving from one queue at once each take
messages the other is not taking, and a message is hidden (its ``visible_at`` moved) by the commit
that hands it out, so no message is received twice while invisible. A FIFO queue's receives and
sends also lock the queue's row, so its groups are handed out in order by one server at a time.
Sends and visibility changes raise a ``NOTIFY`` the other servers listen to, so their long polls
and idle pollers wake at once. ``psycopg`` errors become ``StoreUnavailable`` here.
"""

from __future__ import annotations

from squall.services.queues.store import QueueStore, schema
from squall.stores.sql import POSTGRES_TYPES, PostgresSqlDatabase

#: The schema, one entry per version: never edit a released entry, append one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (tuple(schema(POSTGRES_TYPES)),)
#: One channel per database; a payload names the schema, the notifying server and the queue.
CHANNEL = "squall_queues"


class PostgresQueueStore(PostgresSqlDatabase, QueueStore):
    """Queues in the PostgreSQL schema ``schema``; safe to share between threads and between servers."""

    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, dsn: str, schema: str, max_size: int = 8) -> None:
        super().__init__(dsn, schema, MIGRATIONS, "Queue store", CHANNEL, max_size=max_size)
