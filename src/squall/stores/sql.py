"""The seam under the data services' own tables: SQL written once, on SQLite or PostgreSQL.

A service writes its SQL once, with ``?`` placeholders and no ``%``, against :class:`Connection`. A
:class:`SqlDatabase` says how that SQL meets a database: how a write transaction is taken and
committed durably, how reads are taken without waiting for writes, how a write locks the rows it is
about to change (``for_update``), and how the servers sharing one store tell each other that something
changed (``notify``/``watch``). :class:`SqliteDatabase` is the embedded tier's (one file, one server);
:class:`PostgresSqlDatabase` is the scale-out tier's, shared by every server of a deployment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from squall.errors import StoreUnavailable
from squall.stores.sqlite_file import open_durable, write_transaction

log = logging.getLogger(__name__)

_LISTEN_TIMEOUT_S = 0.5
#: What a watcher hears when notifications may have been missed (no store notifies an empty message).
RESYNC = ""


class Cursor(Protocol):
    """What a service uses of a query's result (``sqlite3.Cursor`` and psycopg's cursors have it)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A connection inside one transaction, taking SQL with ``?`` placeholders."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


class SqlDatabase(ABC):
    """A database a service keeps its tables in."""

    #: Appended to a ``SELECT`` of rows that the same write transaction changes, so that writers on
    #: other connections (other servers) wait for it instead of interleaving with it.
    for_update: str = ""
    #: Appended to a ``SELECT`` of a row that must not change or go away until the transaction ends,
    #: while other writers may hold the same (a bucket while objects are written into it).
    for_share: str = ""

    @abstractmethod
    def write(self, durable: bool = True) -> contextlib.AbstractContextManager[Connection]:
        """One write transaction, committed when the block ends and rolled back if it raises; driver
        errors become ``StoreUnavailable("<what> failure: ...")``. ``durable=False`` lets a database
        skip waiting for the disk where losing the commit in a power cut would only repeat work."""

    @abstractmethod
    def read(self) -> contextlib.AbstractContextManager[Connection]:
        """Reads that never wait for a write in progress and see only committed rows."""

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        """The rows of one read statement (a read of its own: one statement sees one snapshot)."""
        with self.read() as conn:
            return list(conn.execute(sql, parameters).fetchall())

    @abstractmethod
    def notify(self, conn: Connection, message: str) -> None:
        """Inside a write transaction: tell the other servers of this store ``message`` once it commits."""

    @abstractmethod
    def watch(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(message)`` for every message another server of this store notifies (every
        watcher hears every message: stores sharing one database tell theirs apart by its text), and
        ``callback(RESYNC)`` whenever messages may have been missed (the listening connection was
        (re)opened): whatever the watcher keeps of the store is then to be read again."""

    @abstractmethod
    def close(self) -> None: ...


def shared_secret(db: SqlDatabase, table: str, name: str) -> bytes:
    """A random secret made once per store and kept in ``table`` (``name``, ``value``), so that every
    server using the store signs with the same one."""
    with db.write() as conn:
        conn.execute(f"INSERT INTO {table} VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (name, os.urandom(32)))
        (value,) = conn.execute(f"SELECT value FROM {table} WHERE name = ?", (name,)).fetchone()
    return bytes(value)


class SqliteDatabase(SqlDatabase):
    """The embedded tier's: one file, WAL, ``synchronous=FULL``, one writer at a time (its lock), so a
    write needs no row locks. Reads go through a connection of their own: in WAL mode a read never
    waits for a write's commit (fsync), and a write never waits for a read."""

    def __init__(self, path: Path, schema: Sequence[str], what: str) -> None:
        self.what = what
        self.path = path
        self._lock = threading.Lock()
        self._conn = open_durable(path, schema, what.lower())
        self._reader_lock = threading.Lock()
        try:
            self._reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreUnavailable(f"Cannot open the {what.lower()} {path}: {exc}") from exc

    def write(self, durable: bool = True) -> contextlib.AbstractContextManager[Connection]:
        return write_transaction(self._conn, self._lock, self.what, durable)

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
                raise StoreUnavailable(f"{self.what} failure: {exc}") from exc

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        # Without BEGIN and COMMIT: a statement outside a transaction is one of its own.
        with self._reader_lock:
            try:
                return self._reader.execute(sql, parameters).fetchall()
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"{self.what} failure: {exc}") from exc

    # One server owns an embedded store: there is nobody else to tell or hear from.
    def notify(self, conn: Connection, message: str) -> None:
        return None

    def watch(self, callback: Callable[[str], None]) -> None:
        return None

    def close(self) -> None:
        with self._lock, self._reader_lock:
            self._reader.close()
            self._conn.close()


class PostgresSqlDatabase(SqlDatabase):
    """A schema of its own in PostgreSQL, versioned by ``migrations``; safe to share between threads
    and between servers. Commits are durable (``synchronous_commit`` on, PostgreSQL's default);
    ``durable=False`` is not needed there. Notifications go over ``channel`` (by default the schema's
    name) with LISTEN/NOTIFY."""

    for_update = " FOR UPDATE"
    for_share = " FOR SHARE"

    def __init__(
        self,
        dsn: str,
        schema: str,
        migrations: Sequence[Sequence[str]],
        what: str,
        channel: str | None = None,
        max_size: int = 8,
    ) -> None:
        import psycopg

        from squall.stores.postgres import PostgresDatabase

        self.what = what
        self._error = psycopg.Error
        self._channel = channel or schema
        self.db = PostgresDatabase(dsn, schema, max_size=max_size, migrations=migrations)
        self._instance = os.urandom(8).hex()  # tells this store's own notifications from others'
        self._closed = threading.Event()
        self._listener: threading.Thread | None = None
        self._callbacks: list[Callable[[str], None]] = []

    @property
    def schema(self) -> str:
        return self.db.schema

    def write(self, durable: bool = True) -> contextlib.AbstractContextManager[Connection]:
        return self._connection(transaction=True)

    def read(self) -> contextlib.AbstractContextManager[Connection]:
        # No transaction: each statement reads its own READ COMMITTED snapshot, which never waits for
        # a writer and sees only committed rows; and a read costs no BEGIN/COMMIT round trips.
        return self._connection(transaction=False)

    @contextlib.contextmanager
    def _connection(self, transaction: bool) -> Iterator[Connection]:
        if self._closed.is_set():
            raise StoreUnavailable(f"The {self.what.lower()} ({self.db.schema}) is closed")
        with self.db.qmark(self.what, transaction=transaction, binary=True) as conn:
            yield conn

    def notify(self, conn: Connection, message: str) -> None:
        # Delivered when (and only if) the transaction commits.
        conn.execute("SELECT pg_notify(?, ?)", (self._channel, f"{self.db.schema}\n{self._instance}\n{message}"))

    def watch(self, callback: Callable[[str], None]) -> None:
        self._callbacks.append(callback)
        if self._listener is None:
            self._listener = threading.Thread(target=self._listen, name=f"notify-{self.db.schema}", daemon=True)
            self._listener.start()

    def _listen(self) -> None:
        """LISTEN on a connection of its own; reconnect after a failure. A notification missed while
        disconnected only delays whoever waits for it until their own backstop."""
        import psycopg

        while not self._closed.is_set():
            try:
                with psycopg.connect(self.db.dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {self._channel}")
                    self._deliver(RESYNC)
                    while not self._closed.is_set():
                        for note in conn.notifies(timeout=_LISTEN_TIMEOUT_S):
                            schema, instance, message = note.payload.split("\n", 2)
                            if schema == self.db.schema and instance != self._instance:
                                self._deliver(message)
            except psycopg.Error as exc:
                log.warning("%s notifications from PostgreSQL lost (%s); reconnecting", self.what, exc)
                self._closed.wait(1.0)

    def _deliver(self, message: str) -> None:
        for callback in list(self._callbacks):
            try:
                callback(message)
            except Exception:
                log.exception("a %s listener failed", self.what.lower())

    def close(self) -> None:
        self._closed.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
        self.db.close()
