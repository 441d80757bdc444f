"""Where the table service keeps its rows: tables, items, index entries and change records, on the shared SQL seam.

The service writes its SQL once, with ``?`` placeholders, against ``squall.stores.sql``'s
:class:`Connection`. A :class:`TableStore` is a :class:`SqlDatabase` with the table tables in a
dialect's column types (:func:`schema`) and two dialect hooks: :meth:`TableStore.hold`, the locks a
write takes where several servers write at once (none in SQLite, whose writes are one at a time), and
:meth:`TableStore.last_change`, the last change-record number handed out. SQLite is the embedded
tier's store (this module); PostgreSQL, shared by several servers, is in ``postgres.py``.

Keys are stored as the bytes of :func:`~squall.services.tables.types.encode_key` and compared byte by
byte (SQLite BLOB, PostgreSQL BYTEA); names that are listed in order sort byte by byte too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from squall.stores.sql import SQLITE_TYPES, ColumnTypes, Connection, SqlDatabase, SqliteDatabase

#: An item's address: its table, partition key bytes and sort key bytes.
ItemKey = tuple[str, bytes, bytes]


def schema(d: ColumnTypes) -> list[str]:
    """The table tables in a dialect. Never change a statement a release has shipped: SQLite files and
    PostgreSQL schemas in the field were made with them (append a statement, or a PostgreSQL migration)."""
    return [
        f"CREATE TABLE IF NOT EXISTS tables (name {d.name} PRIMARY KEY, definition {d.blob} NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS items (
        tbl {d.name} NOT NULL, pk {d.blob} NOT NULL, sk {d.blob} NOT NULL, h {d.int64} NOT NULL,
        size {d.int64} NOT NULL, item TEXT NOT NULL, expires {d.real}, PRIMARY KEY (tbl, pk, sk)){d.clustered}""",
        "CREATE INDEX IF NOT EXISTS items_scan ON items (tbl, h, pk, sk)",
        "CREATE INDEX IF NOT EXISTS items_expiry ON items (expires) WHERE expires IS NOT NULL",
        f"""CREATE TABLE IF NOT EXISTS index_items (
        tbl {d.name} NOT NULL, idx {d.name} NOT NULL, ipk {d.blob} NOT NULL, isk {d.blob} NOT NULL,
        pk {d.blob} NOT NULL, sk {d.blob} NOT NULL, h {d.int64} NOT NULL, size {d.int64} NOT NULL,
        PRIMARY KEY (tbl, idx, ipk, isk, pk, sk)){d.clustered}""",
        "CREATE INDEX IF NOT EXISTS index_items_item ON index_items (tbl, pk, sk)",
        "CREATE INDEX IF NOT EXISTS index_items_scan ON index_items (tbl, idx, h, ipk, isk, pk, sk)",
        f"""CREATE TABLE IF NOT EXISTS table_streams (
        arn {d.name} PRIMARY KEY, tbl {d.name} NOT NULL, label TEXT NOT NULL, view TEXT NOT NULL,
        key_schema TEXT NOT NULL, shard_id TEXT NOT NULL, start_seq {d.int64} NOT NULL, end_seq {d.int64},
        trimmed_seq {d.int64} NOT NULL DEFAULT 0, created {d.real} NOT NULL, disabled {d.real})""",
        f"""CREATE TABLE IF NOT EXISTS change_records (
        seq {d.serial}, arn {d.name} NOT NULL, created {d.real} NOT NULL,
        keys TEXT NOT NULL, record TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS change_records_stream ON change_records (arn, seq)",
        "CREATE INDEX IF NOT EXISTS change_records_age ON change_records (created)",
        # Secrets every server of a store shares (the stream iterator signing key), so that an iterator
        # one server hands out is good on the others.
        f"CREATE TABLE IF NOT EXISTS table_secrets (name {d.name} PRIMARY KEY, value {d.blob} NOT NULL)",
    ]


class TableStore(SqlDatabase):
    """The database under a ``TableService``. Its ``notify`` messages are ``table <name>`` (a table's
    definition changed) and ``stream <arn>`` (change records were committed)."""

    def hold(self, conn: Connection, tables: Sequence[str], items: Sequence[ItemKey] = (), share: bool = True) -> None:
        """Inside a write transaction, until it ends: hold ``tables`` (shared by writers of items,
        ``share=False`` for a change of their definitions) and then ``items``, each in the order given
        (callers sort them, so that two transactions never wait for each other in a circle). A
        database whose writes are one at a time needs neither."""

    def last_change(self, conn: Connection) -> int:
        """The last change-record number handed out (0 before the first)."""
        raise NotImplementedError


class SqliteTableStore(SqliteDatabase, TableStore):
    """The embedded tier's store: one SQLite file (see ``SqliteDatabase``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, schema(SQLITE_TYPES), "Table store")

    def last_change(self, conn: Connection) -> int:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'change_records'").fetchone()
        return int(row[0]) if row is not None else 0
