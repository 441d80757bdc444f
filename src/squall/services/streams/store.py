"""Where the stream service keeps its rows: one set of SQL, and the small seam it runs on.

The service writes its SQL once, with ``?`` placeholders, against :class:`Connection`. A
:class:`StreamStore` says how that SQL meets a database: its column types (:func:`schema`), how a
write transaction is taken and committed durably, how reads are taken without waiting for writes,
and how a write locks the stream rows it is about to change (``for_update``). SQLite is the
embedded tier's store (this module); PostgreSQL, shared by several servers, is in ``postgres.py``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from squall.errors import StoreUnavailable
from squall.stores.sqlite_file import open_durable, write_transaction


class Cursor(Protocol):
    """What the service uses of a query's result (``sqlite3.Cursor`` and psycopg's cursors have it)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A connection inside one transaction, taking SQL with ``?`` placeholders."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


@dataclass(frozen=True)
class ColumnTypes:
    """A dialect's names for the column types the stream tables use."""

    name: str  # stream names and shard ids: compared and sorted byte by byte
    int64: str
    real: str
    blob: str


#: A row of ``records``: stream, shard id, sequence counter, partition key, data, arrival time.
RecordRow = tuple[str, str, int, str, bytes, float]
RECORD_COLUMNS = ("stream", "shard_id", "seq", "partition_key", "data", "arrival")

SQLITE_TYPES = ColumnTypes(name="TEXT", int64="INTEGER", real="REAL", blob="BLOB")


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


class StreamStore(ABC):
    """The database under a ``StreamService``."""

    #: Appended to a ``SELECT`` of the ``streams`` rows a write transaction is about to change, so that
    #: writers on other connections (other servers) wait for it: their counters never interleave.
    for_update: str = ""

    @abstractmethod
    def write(self) -> contextlib.AbstractContextManager[Connection]:
        """One write transaction, committed durably when the block ends; rolled back if it raises.
        Driver errors become ``StoreUnavailable("Stream store failure: ...")``."""

    @abstractmethod
    def read(self) -> contextlib.AbstractContextManager[Connection]:
        """A read transaction that never waits for a write in progress (and sees only committed rows)."""

    def insert_records(self, conn: Connection, rows: Sequence[RecordRow]) -> None:
        """Append ``rows`` to ``records`` (a database's bulk path where it has one)."""
        conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)

    @abstractmethod
    def notify(self, conn: Connection, streams: Iterable[str]) -> None:
        """Inside a put's transaction: tell the other servers of this store that ``streams`` got records."""

    @abstractmethod
    def watch(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(stream)`` whenever another server of this store commits records to it."""

    @abstractmethod
    def close(self) -> None: ...


class SqliteStreamStore(StreamStore):
    """The embedded tier's store: one file, WAL, ``synchronous=FULL``; one writer at a time (its lock),
    so a write needs no row locks. Reads go through a connection of their own: in WAL mode a read
    never waits for a put's commit (fsync), and a put never waits for a read."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._conn = open_durable(path, schema(SQLITE_TYPES), "stream store")
        self._reader_lock = threading.Lock()
        try:
            self._reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreUnavailable(f"Cannot open the stream store {path}: {exc}") from exc

    def write(self) -> contextlib.AbstractContextManager[Connection]:
        return write_transaction(self._conn, self._lock, "Stream store")

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self._reader_lock:
            try:
                self._reader.execute("BEGIN")  # one snapshot for the block's queries
                try:
                    yield self._reader
                finally:
                    self._reader.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"Stream store failure: {exc}") from exc

    # One server owns an embedded store: there is nobody else to tell or hear from.
    def notify(self, conn: Connection, streams: Iterable[str]) -> None:
        return None

    def watch(self, callback: Callable[[str], None]) -> None:
        return None

    def close(self) -> None:
        with self._lock, self._reader_lock:
            self._reader.close()
            self._conn.close()
