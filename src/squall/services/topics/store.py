"""Where the topic service keeps its rows: topics, subscriptions, messages and pending deliveries.

The service writes its SQL once, with ``?`` placeholders, against ``squall.stores.sql``'s
:class:`Connection`. A :class:`TopicStore` is a :class:`SqlDatabase` with the topic tables in a
dialect's column types (:func:`schema`) and the one clause a claim of deliveries needs beyond that
(:attr:`TopicStore.claim_lock`). SQLite is the embedded tier's store (this module); PostgreSQL, shared
by every server of a deployment, is in ``postgres.py``.

A pending delivery is claimed by the server about to send it (``claimed_by``, ``claimed_until``), so
that on a shared store one server at a time sends it; a claim that lapses (its server died) lets
another take the delivery over.
"""

from __future__ import annotations

from pathlib import Path

from squall.stores.sql import SQLITE_TYPES, ColumnTypes, SqlDatabase, SqliteDatabase


def schema(types: ColumnTypes) -> list[str]:
    """The topic tables in a dialect, as first released. Never change a statement a release has shipped:
    SQLite files and PostgreSQL schemas in the field were made with them (add columns the way
    :func:`claim_columns` are added, or a PostgreSQL migration)."""
    t = types
    return [
        f"""CREATE TABLE IF NOT EXISTS topics (
        arn {t.name} PRIMARY KEY, name TEXT NOT NULL UNIQUE, fifo INTEGER NOT NULL, attributes TEXT NOT NULL,
        tags TEXT NOT NULL, created {t.real} NOT NULL, counter INTEGER NOT NULL DEFAULT 0,
        deleted_subscriptions INTEGER NOT NULL DEFAULT 0)""",
        f"""CREATE TABLE IF NOT EXISTS subscriptions (
        arn {t.name} PRIMARY KEY, topic_arn {t.name} NOT NULL, protocol TEXT NOT NULL, endpoint TEXT NOT NULL,
        attributes TEXT NOT NULL, confirmed INTEGER NOT NULL, token TEXT, created {t.real} NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS subscriptions_topic ON subscriptions (topic_arn)",
        f"""CREATE TABLE IF NOT EXISTS messages (message_id TEXT PRIMARY KEY, body {t.blob} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS deliveries (
        id {t.serial}, subscription_arn {t.name} NOT NULL, message_id TEXT,
        document TEXT, attempts INTEGER NOT NULL DEFAULT 0, due {t.real} NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (due)",
        "CREATE INDEX IF NOT EXISTS deliveries_subscription ON deliveries (subscription_arn, id)",
        # The sms/email stand-in: what would have been sent, kept for `squall outbox`.
        f"""CREATE TABLE IF NOT EXISTS outbox (
        id {t.serial}, subscription_arn TEXT NOT NULL, protocol TEXT NOT NULL,
        endpoint TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT, body TEXT NOT NULL, created {t.real} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS dedup (
        topic_arn {t.name} NOT NULL, key TEXT NOT NULL, message_id TEXT NOT NULL, sequence_number TEXT,
        expires {t.real} NOT NULL, PRIMARY KEY (topic_arn, key))""",
    ]


def claim_columns(types: ColumnTypes) -> list[tuple[str, str]]:
    """Columns added to ``deliveries`` after its first release: who is sending a delivery, and until
    when that claim holds (0: nobody)."""
    return [("claimed_by", "TEXT"), ("claimed_until", f"{types.real} NOT NULL DEFAULT 0")]


class TopicStore(SqlDatabase):
    """The database under a ``TopicService``. Its ``notify`` messages say that deliveries were added."""

    #: Appended to the ``SELECT`` of due deliveries (alias ``d``) that the same transaction claims: on
    #: a shared store, rows another server is claiming right now are passed over instead of waited for.
    claim_lock: str = ""


class SqliteTopicStore(SqliteDatabase, TopicStore):
    """The embedded tier's store: one SQLite file (see ``SqliteDatabase``); one writer at a time, so a
    claim needs no row locks. Files made before claims existed get their columns on opening."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, schema(SQLITE_TYPES), "Topic store")
        try:
            with self.write() as conn:
                present = {row[1] for row in conn.execute("PRAGMA table_info(deliveries)")}
                for name, kind in claim_columns(SQLITE_TYPES):
                    if name not in present:
                        conn.execute(f"ALTER TABLE deliveries ADD COLUMN {name} {kind}")
        except BaseException:
            self.close()
            raise
