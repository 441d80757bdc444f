"""Where the queue service keeps its rows: the queue tables, on the shared SQL seam.

The service writes its SQL once, with ``?`` placeholders, against ``squall.stores.sql``'s
:class:`Connection`. A :class:`QueueStore` is a :class:`SqlDatabase` with the queue tables in a
dialect's column types (:func:`schema`) and the one clause where the dialects really differ
(:attr:`QueueStore.skip_locked`). SQLite is the embedded tier's store (this module); PostgreSQL, shared
by several servers, is in ``postgres.py``.
"""

from __future__ import annotations

from pathlib import Path

from squall.stores.sql import SQLITE_TYPES, ColumnTypes, SqlDatabase, SqliteDatabase


def schema(types: ColumnTypes) -> list[str]:
    """The queue tables in a dialect. Never change a statement a release has shipped: SQLite files and
    PostgreSQL schemas in the field were made with them (add a PostgreSQL migration instead)."""
    t = types
    return [
        f"""CREATE TABLE IF NOT EXISTS queues (
        id {t.serial}, name {t.name} NOT NULL UNIQUE, fifo INTEGER NOT NULL,
        attributes TEXT NOT NULL, tags TEXT NOT NULL, created {t.real} NOT NULL, modified {t.real} NOT NULL,
        purged {t.real}, counter {t.int64} NOT NULL DEFAULT 0)""",
        f"""CREATE TABLE IF NOT EXISTS messages (
        seq {t.serial}, queue_id {t.int64} NOT NULL, message_id TEXT NOT NULL,
        body TEXT NOT NULL, attributes TEXT NOT NULL, system_attributes TEXT NOT NULL, sent {t.real} NOT NULL,
        visible_at {t.real} NOT NULL, receive_count INTEGER NOT NULL DEFAULT 0, first_receive {t.real},
        receipt TEXT, group_id TEXT, dedup_id TEXT, sequence_number TEXT, sender_id TEXT NOT NULL,
        dlq_source TEXT)""",
        # Receives walk a queue's messages in order and skip the invisible ones within the index: an
        # index led by visible_at would make each receive sort every visible message of the queue.
        "CREATE INDEX IF NOT EXISTS messages_order ON messages (queue_id, seq, visible_at)",
        "DROP INDEX IF EXISTS messages_ready",
        "CREATE INDEX IF NOT EXISTS messages_age ON messages (queue_id, sent)",
        f"""CREATE TABLE IF NOT EXISTS dedup (
        queue_id {t.int64} NOT NULL, key TEXT NOT NULL, message_id TEXT NOT NULL, sequence_number TEXT,
        expires {t.real} NOT NULL, PRIMARY KEY (queue_id, key))""",
    ]


class QueueStore(SqlDatabase):
    """The database under a ``QueueService``. Its ``notify`` messages are queue names."""

    #: Appended to a ``SELECT`` of messages that a receive (or an expiry) is about to take: on a store
    #: several servers write at once, rows another transaction is taking are passed over rather than
    #: waited for, and the rows returned stay locked until the transaction ends. One writer at a time
    #: (SQLite) needs neither.
    skip_locked: str = ""


class SqliteQueueStore(SqliteDatabase, QueueStore):
    """The embedded tier's store: one SQLite file (see ``SqliteDatabase``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, schema(SQLITE_TYPES), "Queue store")
