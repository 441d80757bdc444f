"""The bucket service on PostgreSQL, for the scale-out tier: every server sees every bucket and body.

Metadata is the SQLite store's tables (``store.schema``) in a schema of its own, versioned like the
metadata store's. Bodies are in the same schema, as chunks (``bytea`` rows of ``CHUNK`` bytes, stored
uncompressed: objects are often compressed already), because the servers of a
deployment may be on different machines and share nothing but PostgreSQL:

- A body is written in a transaction of its own before the object's metadata transaction, which
  adopts it (``bodies.orphan_after`` set to NULL). A body nobody adopts within ``WRITE_GRACE_S`` (its
  server died in between) is swept.
- A body an overwrite or delete stopped pointing at is kept ``READ_GRACE_S`` more, so that a GET
  streaming it on any server finishes; then it is swept. A GET slower than that is cut short (the
  response ends before its Content-Length), never served another object's bytes.
- A GET reads chunk by chunk, a query per chunk, never the whole object at once.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Iterable
from typing import BinaryIO

from squall.errors import StoreUnavailable
from squall.services.buckets.store import schema
from squall.stores.postgres import QmarkConnection
from squall.stores.sql import POSTGRES_TYPES, Connection, PostgresSqlDatabase, SqlDatabase

#: Bytes per chunk row written.
CHUNK = 1024 * 1024
#: How long a body may stay unreferenced while its object's metadata is being committed.
WRITE_GRACE_S = 3600.0
#: How long a replaced or deleted body stays readable for the GETs still streaming it.
READ_GRACE_S = 900.0
#: How often (at most) a server sweeps the bodies whose grace has passed.
SWEEP_INTERVAL_S = 60.0

#: The schema, one entry per version: never edit a released entry, append one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        *schema(POSTGRES_TYPES),
        "CREATE TABLE websites (bucket TEXT PRIMARY KEY, body TEXT NOT NULL)",
        # orphan_after: NULL while an object or part points at the body, else when it may be swept.
        "CREATE TABLE bodies (id TEXT PRIMARY KEY, size BIGINT NOT NULL, orphan_after DOUBLE PRECISION)",
        "CREATE INDEX bodies_orphaned ON bodies (orphan_after) WHERE orphan_after IS NOT NULL",
        "CREATE TABLE chunks (body TEXT NOT NULL, start BIGINT NOT NULL, data BYTEA NOT NULL,"
        " PRIMARY KEY (body, start))",
        "ALTER TABLE chunks ALTER COLUMN data SET STORAGE EXTERNAL",
    ),
)

_SWEEP_SQL = "DELETE FROM bodies WHERE orphan_after < ? RETURNING id"


def postgres_bucket_database(dsn: str, schema_name: str, max_size: int = 8) -> PostgresSqlDatabase:
    """Buckets in the PostgreSQL schema ``schema_name``; safe to share between threads and servers."""
    return PostgresSqlDatabase(dsn, schema_name, MIGRATIONS, "Bucket store", max_size=max_size)


class ChunkBodies:
    """Object and part bodies as chunks in the bucket schema (``store.Bodies``; see the module docstring)."""

    def __init__(self, db: PostgresSqlDatabase) -> None:
        self.db = db
        self._last_sweep = 0.0
        self._sweep_lock = threading.Lock()

    def write(self, data: bytes) -> str:
        name = uuid.uuid4().hex
        with self.db.write() as conn:
            self._new(conn, name, len(data))
            if not isinstance(conn, QmarkConnection):
                raise TypeError("ChunkBodies needs a connection of a PostgreSQL store")
            view = memoryview(data)
            # Binary COPY: the chunks go over as they are, with no parameter escaping or per-row round trip.
            with (
                conn.conn.cursor() as cursor,
                cursor.copy("COPY chunks (body, start, data) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(["text", "int8", "bytea"])
                for start in range(0, len(data), CHUNK):
                    copy.write_row((name, start, view[start : start + CHUNK]))
        return name

    def copy(self, name: str) -> str:
        return self.concatenate([name])

    def concatenate(self, names: Iterable[str]) -> str:
        """The chunks are copied inside PostgreSQL: nothing travels through this server."""
        new = uuid.uuid4().hex
        with self.db.write() as conn:
            offset = 0
            for name in names:
                row = conn.execute("SELECT size FROM bodies WHERE id = ?", (name,)).fetchone()
                if row is None:
                    raise FileNotFoundError(f"body {name} is gone")
                conn.execute(
                    "INSERT INTO chunks (body, start, data) SELECT ?, start + ?, data FROM chunks WHERE body = ?",
                    (new, offset, name),
                )
                offset += int(row[0])
            self._new(conn, new, offset)
        return new

    def open(self, name: str) -> BinaryIO:
        return io.BufferedReader(ChunkReader(self.db, name), CHUNK)

    def adopt(self, conn: Connection, name: str) -> None:
        if conn.execute("UPDATE bodies SET orphan_after = NULL WHERE id = ?", (name,)).rowcount != 1:
            raise StoreUnavailable(f"Bucket store failure: body {name} was swept before its object was committed")

    def remove(self, name: str) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE bodies SET orphan_after = ? WHERE id = ?", (time.time() + READ_GRACE_S, name))
        if time.monotonic() - self._last_sweep > SWEEP_INTERVAL_S:
            self.sweep()

    def discard(self, name: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM chunks WHERE body = ?", (name,))
            conn.execute("DELETE FROM bodies WHERE id = ?", (name,))

    def recover(self, db: SqlDatabase) -> None:
        """Give a grace period to bodies that nothing points at though none was set (a server died between
        the commit that dropped the last reference and its ``remove``), then sweep."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE bodies SET orphan_after = ? WHERE orphan_after IS NULL"
                " AND id NOT IN (SELECT file FROM objects) AND id NOT IN (SELECT file FROM parts)",
                (time.time() + READ_GRACE_S,),
            )
        self.sweep()

    def sweep(self) -> int:
        """Delete the bodies whose grace has passed (on every server; each body goes once); how many."""
        with self._sweep_lock:
            self._last_sweep = time.monotonic()
            with self.db.write() as conn:
                names = [row[0] for row in conn.execute(_SWEEP_SQL, (time.time(),)).fetchall()]
                if names:
                    conn.execute("DELETE FROM chunks WHERE body = ANY(?)", (names,))
        return len(names)

    def _new(self, conn: Connection, name: str, size: int) -> None:
        conn.execute("INSERT INTO bodies VALUES (?, ?, ?)", (name, size, time.time() + WRITE_GRACE_S))


class ChunkReader(io.RawIOBase):
    """A body read chunk by chunk, a query per chunk, holding one chunk at a time; at its end (or once
    swept) reads return nothing."""

    def __init__(self, db: PostgresSqlDatabase, name: str) -> None:
        super().__init__()
        self._db = db
        self._name = name
        self._position = 0
        self._start = 0
        self._chunk = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._position = offset
        elif whence == io.SEEK_CUR:
            self._position += offset
        else:
            with self._db.read() as conn:
                row = conn.execute("SELECT size FROM bodies WHERE id = ?", (self._name,)).fetchone()
            self._position = (int(row[0]) if row else 0) + offset
        return self._position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        offset = self._position - self._start
        if not 0 <= offset < len(self._chunk):
            # Chunks are contiguous: reading on, the next one starts where this one ends (and there is
            # none at the end). A whole chunk is faster to fetch than a slice of it (measured: 2-4 times).
            following = bool(self._chunk) and offset == len(self._chunk)
            with self._db.read() as conn:
                row = conn.execute(
                    "SELECT start, data FROM chunks WHERE body = ? AND start = ?"
                    if following
                    else "SELECT start, data FROM chunks WHERE body = ? AND start <= ? ORDER BY start DESC LIMIT 1",
                    (self._name, self._position),
                ).fetchone()
            self._start, self._chunk = (int(row[0]), bytes(row[1])) if row else (self._position, b"")
            offset = self._position - self._start
            if not 0 <= offset < len(self._chunk):
                return 0
        piece = memoryview(self._chunk)[offset : offset + len(buffer)]
        buffer[: len(piece)] = piece
        self._position += len(piece)
        return len(piece)
