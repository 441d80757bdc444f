"""Where the stream service keeps its rows: the stream tables, on the shared SQL seam.

The service writes its SQL once, with ``?`` placeholders, against ``squall.stores.sql``'s
:class:`Connection`. A :class:`StreamStore` is a :class:`SqlDatabase` with the stream tables in a
dialect's column types (:func:`schema`) and a bulk path for records. SQLite is the embedded tier's store
(this module); PostgreSQL, shared by several servers, is in ``postgres.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from squall.stores.sql import SQLITE_TYPES, ColumnTypes, Connection, SqlDatabase, SqliteDatabase
from squall.stores.sqlite_file import insert_rows

#: A row of ``records``: stream, shard id, sequence counter, partition key, data, arrival time.
RecordRow = tuple[str, str, int, str, bytes, float]
RECORD_COLUMNS = ("stream", "shard_id", "seq", "partition_key", "data", "arrival")


def schema(types: ColumnTypes) -> list[str]:
    """The stream tables in a dialect. Never change a statement a release has shipped: SQLite files
    and PostgreSQL schemas in the field were made with them (add a PostgreSQL migration instead)."""
    t = types
    return [
        f"""CREATE TABLE IF NOT EXISTS streams (
        name {t.name} PRIMARY KEY, mode TEXT NOT NULL, status TEXT NOT NULL, retention_hours INTEGER NOT NULL,
        created {t.real} NOT NULL, counter {t.int64} NOT NULL, tags TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS shards (
        stream {t.name} NOT NULL, shard_id {t.name} NOT NULL, start_key TEXT NOT NULL, end_key TEXT NOT NULL,
        start_seq {t.int64} NOT NULL, end_seq {t.int64}, parent TEXT, adjacent_parent TEXT,
        PRIMARY KEY (stream, shard_id))""",
        f"""CREATE TABLE IF NOT EXISTS records (
        stream {t.name} NOT NULL, shard_id {t.name} NOT NULL, seq {t.int64} NOT NULL, partition_key TEXT NOT NULL,
        data {t.blob} NOT NULL, arrival {t.real} NOT NULL, PRIMARY KEY (stream, shard_id, seq))""",
        # Secrets every server of a store shares (the iterator signing key), so that an iterator one
        # server hands out is good on the others.
        f"CREATE TABLE IF NOT EXISTS stream_secrets (name {t.name} PRIMARY KEY, value {t.blob} NOT NULL)",
    ]


class StreamStore(SqlDatabase):
    """The database under a ``StreamService``. Its ``notify`` messages are stream names."""

    def insert_records(self, conn: Connection, rows: Sequence[RecordRow]) -> None:
        """Append ``rows`` to ``records`` (a database's bulk path where it has one)."""
        conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)


class SqliteStreamStore(SqliteDatabase, StreamStore):
    """The embedded tier's store: one SQLite file (see ``SqliteDatabase``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, schema(SQLITE_TYPES), "Stream store")

    def insert_records(self, conn: Connection, rows: Sequence[RecordRow]) -> None:
        insert_rows(conn, "INSERT INTO records VALUES", rows)
