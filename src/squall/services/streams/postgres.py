"""The stream service's store on PostgreSQL, for the scale-out tier: several servers, one set of streams.

The tables live in a schema of their own (versioned like the metadata store's). Writers on any
server lock the ``streams`` rows they change (``SELECT ... FOR UPDATE``), so the counter behind
sequence numbers is taken by one transaction at a time across servers: numbers stay unique and
increasing per stream, and a record becomes visible only after every record numbered before it. A
put is acknowledged after its commit, which PostgreSQL makes durable (``synchronous_commit`` on, its
default). Puts raise a ``NOTIFY`` that the other servers listen to, so their idle pollers wake at
once. ``psycopg`` errors become ``StoreUnavailable`` here.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from squall.errors import StoreUnavailable
from squall.services.streams.store import (
    RECORD_COLUMNS,
    ColumnTypes,
    Connection,
    Cursor,
    RecordRow,
    StreamStore,
    schema,
)
from squall.stores.postgres import PostgresDatabase

log = logging.getLogger(__name__)

POSTGRES_TYPES = ColumnTypes(name='TEXT COLLATE "C"', int64="BIGINT", real="DOUBLE PRECISION", blob="BYTEA")
#: The schema, one entry per version: never edit a released entry, append one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (tuple(schema(POSTGRES_TYPES)),)
#: One channel per database; a payload names the schema, the putting server and the stream.
CHANNEL = "squall_streams"
_LISTEN_TIMEOUT_S = 0.5


@functools.lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _Connection:
    """A psycopg connection that takes the service's ``?`` placeholders."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        # Binary results: record data arrives as it is stored, not spelled in hex.
        cursor: Cursor = self.conn.execute(_pyformat(sql), parameters, binary=True)
        return cursor

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        cursor = self.conn.cursor()
        cursor.executemany(_pyformat(sql), parameters)
        result: Cursor = cursor
        return result


class PostgresStreamStore(StreamStore):
    """Streams in the PostgreSQL schema ``schema``; safe to share between threads and between servers."""

    for_update = " FOR UPDATE"

    def __init__(self, dsn: str, schema: str, max_size: int = 8) -> None:
        import psycopg

        self._error = psycopg.Error
        self._dsn = dsn
        self.db = PostgresDatabase(dsn, schema, max_size=max_size, migrations=MIGRATIONS)
        self._instance = os.urandom(8).hex()  # tells this store's own notifications from others'
        self._closed = threading.Event()
        self._listener: threading.Thread | None = None

    def write(self) -> contextlib.AbstractContextManager[Connection]:
        return self._connection(transaction=True)

    def read(self) -> contextlib.AbstractContextManager[Connection]:
        # No transaction: each statement reads its own READ COMMITTED snapshot, which never waits for
        # a writer and sees only committed rows; and a read costs no BEGIN/COMMIT round trips.
        return self._connection(transaction=False)

    @contextlib.contextmanager
    def _connection(self, transaction: bool) -> Iterator[Connection]:
        if self._closed.is_set():
            raise StoreUnavailable(f"The stream store ({self.db.schema}) is closed")
        try:
            with self.db.pool.connection() as conn:
                if transaction:
                    with conn.transaction():
                        yield _Connection(conn)
                else:
                    yield _Connection(conn)
        except self._error as exc:
            raise StoreUnavailable(f"Stream store failure: {exc}") from exc

    def insert_records(self, conn: Connection, rows: Sequence[RecordRow]) -> None:
        # Binary COPY: two to four times as many records per second as a pipelined INSERT per row.
        if not isinstance(conn, _Connection):
            raise TypeError("insert_records takes a connection of this store's own write()")
        with (
            conn.conn.cursor() as cursor,
            cursor.copy(f"COPY records ({', '.join(RECORD_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["text", "text", "int8", "text", "bytea", "float8"])
            for row in rows:
                copy.write_row(row)

    def notify(self, conn: Connection, streams: Iterable[str]) -> None:
        for stream in streams:
            # Delivered when (and only if) the transaction commits.
            conn.execute("SELECT pg_notify(?, ?)", (CHANNEL, f"{self.db.schema}\n{self._instance}\n{stream}"))

    def watch(self, callback: Callable[[str], None]) -> None:
        if self._listener is not None:
            raise RuntimeError("the stream store already has a watcher")
        self._listener = threading.Thread(
            target=self._listen, args=(callback,), name=f"stream-notify-{self.db.schema}", daemon=True
        )
        self._listener.start()

    def _listen(self, callback: Callable[[str], None]) -> None:
        """LISTEN on a connection of its own; reconnect after a failure. A notification missed
        while disconnected only delays a poller until its idle backstop."""
        import psycopg

        while not self._closed.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._closed.is_set():
                        for note in conn.notifies(timeout=_LISTEN_TIMEOUT_S):
                            schema, instance, stream = note.payload.split("\n", 2)
                            if schema == self.db.schema and instance != self._instance:
                                try:
                                    callback(stream)
                                except Exception:
                                    log.exception("a stream listener failed")
            except psycopg.Error as exc:
                log.warning("stream notifications from PostgreSQL lost (%s); reconnecting", exc)
                self._closed.wait(1.0)

    def close(self) -> None:
        self._closed.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
        self.db.close()
