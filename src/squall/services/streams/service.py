"""The stream service: streams, shards, durable records and shard iterators, on SQLite.

A put is acknowledged only after its transaction is committed with ``synchronous=FULL``. Records
are numbered by a per-stream counter; the sequence numbers clients see are that counter spelled as
Kinesis spells them (increasing decimal strings), so ordering and iterator positions are integers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

from squall.errors import StoreUnavailable
from squall.services.streams import shards
from squall.services.streams.errors import ExpiredIterator, InvalidArgument, StreamInUse, StreamNotFound
from squall.stores.sqlite_file import open_durable

ITERATOR_TTL_MS = 300_000
DEFAULT_RETENTION_HOURS = 24
ON_DEMAND_SHARDS = 4
_SEQUENCE_BASE = int(shards.sequence_number(0))

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS streams (
        name TEXT PRIMARY KEY, mode TEXT NOT NULL, status TEXT NOT NULL, retention_hours INTEGER NOT NULL,
        created REAL NOT NULL, counter INTEGER NOT NULL, tags TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS shards (
        stream TEXT NOT NULL, shard_id TEXT NOT NULL, start_key TEXT NOT NULL, end_key TEXT NOT NULL,
        start_seq INTEGER NOT NULL, end_seq INTEGER, parent TEXT, adjacent_parent TEXT,
        PRIMARY KEY (stream, shard_id))""",
    """CREATE TABLE IF NOT EXISTS records (
        stream TEXT NOT NULL, shard_id TEXT NOT NULL, seq INTEGER NOT NULL, partition_key TEXT NOT NULL,
        data BLOB NOT NULL, arrival REAL NOT NULL, PRIMARY KEY (stream, shard_id, seq))""",
]


class Shard(msgspec.Struct, frozen=True):
    """One shard: its hash-key range, the first (and, once closed, last) sequence counter, its parents."""

    shard_id: str
    start_key: int
    end_key: int
    start_seq: int
    end_seq: int | None = None
    parent: str | None = None
    adjacent_parent: str | None = None


class Stream(msgspec.Struct, frozen=True):
    name: str
    mode: str
    status: str
    retention_hours: int
    created: float
    tags: dict[str, str]


class StoredRecord(msgspec.Struct, frozen=True):
    seq: int
    partition_key: str
    data: bytes
    arrival: float


def sequence(counter: int) -> str:
    return shards.sequence_number(counter)


def counter_of(sequence_number: str) -> int:
    """The counter behind a sequence number; InvalidArgument for anything that is not one."""
    if not sequence_number.isdigit() or int(sequence_number) < _SEQUENCE_BASE:
        raise InvalidArgument(
            f"StartingSequenceNumber {sequence_number} used in GetShardIterator on shard "
            "is not a valid sequence number."
        )
    return int(sequence_number) - _SEQUENCE_BASE


class StreamService:
    """Streams of one account and region, stored in ``path``."""

    def __init__(self, path: Path, account_id: str, region: str, iterator_key: bytes | None = None) -> None:
        self.account_id = account_id
        self.region = region
        self._iterator_key = iterator_key or os.urandom(32)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []
        self._conn = open_durable(path, _SCHEMA, "stream store")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"Stream store failure: {exc}") from exc

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(stream name)`` after every committed put (from the putting thread)."""
        self._listeners.append(listener)

    def arn(self, name: str) -> str:
        return f"arn:aws:kinesis:{self.region}:{self.account_id}:stream/{name}"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- streams ------------------------------------------------------------------------------------
    def create_stream(self, name: str, shard_count: int, mode: str, tags: dict[str, str]) -> None:
        now = time.time()
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM streams WHERE name = ?", (name,)).fetchone():
                raise StreamInUse(f"Stream {name} under account {self.account_id} already exists.")
            conn.execute(
                "INSERT INTO streams VALUES (?, ?, 'ACTIVE', ?, ?, 0, ?)",
                (name, mode, DEFAULT_RETENTION_HOURS, now, json.dumps(tags)),
            )
            conn.executemany(
                "INSERT INTO shards VALUES (?, ?, ?, ?, 0, NULL, NULL, NULL)",
                [
                    (name, shards.shard_id(i), str(start), str(end))
                    for i, (start, end) in enumerate(shards.even_ranges(shard_count))
                ],
            )

    def delete_stream(self, name: str) -> None:
        with self._tx() as conn:
            self._stream(conn, name)
            for table, column in (("records", "stream"), ("shards", "stream"), ("streams", "name")):
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (name,))

    def stream(self, name: str) -> Stream:
        with self._lock:
            return self._stream(self._conn, name)

    def _stream(self, conn: sqlite3.Connection, name: str) -> Stream:
        row = conn.execute(
            "SELECT name, mode, status, retention_hours, created, tags FROM streams WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise StreamNotFound(f"Stream {name} under account {self.account_id} not found.")
        return Stream(
            name=row[0], mode=row[1], status=row[2], retention_hours=row[3], created=row[4], tags=json.loads(row[5])
        )

    def list_streams(self, after: str | None, limit: int) -> tuple[list[Stream], bool]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT name FROM streams WHERE name > ? ORDER BY name LIMIT ?", (after or "", limit + 1)
            ).fetchall()
            streams = [self._stream(self._conn, row[0]) for row in rows[:limit]]
        return streams, len(rows) > limit

    def shards(self, name: str) -> list[Shard]:
        with self._lock:
            self._stream(self._conn, name)
            rows = self._conn.execute(
                "SELECT shard_id, start_key, end_key, start_seq, end_seq, parent, adjacent_parent FROM shards"
                " WHERE stream = ? ORDER BY shard_id",
                (name,),
            ).fetchall()
        return [
            Shard(
                shard_id=r[0],
                start_key=int(r[1]),
                end_key=int(r[2]),
                start_seq=r[3],
                end_seq=r[4],
                parent=r[5],
                adjacent_parent=r[6],
            )
            for r in rows
        ]

    def set_retention(self, name: str, hours: int) -> None:
        """Change the retention period; records older than it are trimmed at once."""
        with self._tx() as conn:
            self._stream(conn, name)
            conn.execute("UPDATE streams SET retention_hours = ? WHERE name = ?", (hours, name))
            conn.execute("DELETE FROM records WHERE stream = ? AND arrival < ?", (name, time.time() - hours * 3600))

    def reshard(self, name: str, close: Sequence[str], children: Sequence[tuple[int, int, str, str | None]]) -> None:
        """Close shards ``close`` at the current sequence counter and open ``children``
        (start key, end key, parent, adjacent parent), numbered after the existing shards."""
        with self._tx() as conn:
            self._stream(conn, name)
            (counter,) = conn.execute("SELECT counter FROM streams WHERE name = ?", (name,)).fetchone()
            (count,) = conn.execute("SELECT COUNT(*) FROM shards WHERE stream = ?", (name,)).fetchone()
            conn.executemany(
                "UPDATE shards SET end_seq = ? WHERE stream = ? AND shard_id = ?",
                [(counter, name, shard_id) for shard_id in close],
            )
            conn.executemany(
                "INSERT INTO shards VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
                [
                    (name, shards.shard_id(count + i), str(start), str(end), counter + 1, parent, adjacent)
                    for i, (start, end, parent, adjacent) in enumerate(children)
                ],
            )

    def change_tags(self, name: str, add: dict[str, str], remove: Sequence[str]) -> None:
        with self._tx() as conn:
            tags = self._stream(conn, name).tags
            tags.update(add)
            for key in remove:
                tags.pop(key, None)
            conn.execute("UPDATE streams SET tags = ? WHERE name = ?", (json.dumps(tags), name))

    # --- records ------------------------------------------------------------------------------------
    def put(self, name: str, entries: Sequence[tuple[str, bytes, str | None]]) -> list[tuple[str, int]]:
        """Append (partition key, data, explicit hash key) records; (shard id, counter) of each, in order.

        All of them are committed, durably, before this returns.
        """
        now = time.time()
        with self._tx() as conn:
            self._stream(conn, name)
            open_shards = [
                (r[0], int(r[1]), int(r[2]))
                for r in conn.execute(
                    "SELECT shard_id, start_key, end_key FROM shards WHERE stream = ? AND end_seq IS NULL", (name,)
                )
            ]
            (counter,) = conn.execute("SELECT counter FROM streams WHERE name = ?", (name,)).fetchone()
            placed = []
            rows = []
            for partition_key, data, explicit in entries:
                key = shards.hash_key(partition_key, explicit)
                shard = next(s for s, start, end in open_shards if start <= key <= end)
                counter += 1
                placed.append((shard, counter))
                rows.append((name, shard, counter, partition_key, data, now))
            conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.execute("UPDATE streams SET counter = ? WHERE name = ?", (counter, name))
        for listener in self._listeners:
            listener(name)
        return placed

    def read(self, name: str, shard_id: str, from_counter: int, limit: int) -> tuple[list[StoredRecord], float | None]:
        """Records of a shard from a counter on; plus the arrival time of the newest record in the shard."""
        with self._lock:
            stream = self._stream(self._conn, name)
            cutoff = time.time() - stream.retention_hours * 3600
            rows = self._conn.execute(
                "SELECT seq, partition_key, data, arrival FROM records WHERE stream = ? AND shard_id = ? AND seq >= ?"
                " AND arrival >= ? ORDER BY seq LIMIT ?",
                (name, shard_id, from_counter, cutoff, limit),
            ).fetchall()
            newest = self._conn.execute(
                "SELECT MAX(seq), MAX(arrival) FROM records WHERE stream = ? AND shard_id = ?", (name, shard_id)
            ).fetchone()
        records = [StoredRecord(seq=r[0], partition_key=r[1], data=bytes(r[2]), arrival=r[3]) for r in rows]
        behind = None
        if records and newest[0] is not None and records[-1].seq < newest[0]:
            behind = records[-1].arrival
        return records, behind

    def backlog(self, name: str, shard_id: str, position: int) -> tuple[int, float | None]:
        """How many records of a shard wait at or after ``position``, and when the oldest arrived."""
        with self._lock:
            count, oldest = self._conn.execute(
                "SELECT COUNT(*), MIN(arrival) FROM records WHERE stream = ? AND shard_id = ? AND seq >= ?",
                (name, shard_id, position),
            ).fetchone()
        return int(count), oldest

    def latest_counter(self, name: str) -> int:
        with self._lock:
            self._stream(self._conn, name)
            (counter,) = self._conn.execute("SELECT counter FROM streams WHERE name = ?", (name,)).fetchone()
        return int(counter)

    def first_counter_at(self, name: str, shard_id: str, timestamp: float) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT MIN(seq) FROM records WHERE stream = ? AND shard_id = ? AND arrival >= ?",
                (name, shard_id, timestamp),
            ).fetchone()
            (counter,) = self._conn.execute("SELECT counter FROM streams WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row[0] is not None else int(counter) + 1

    # --- iterators ----------------------------------------------------------------------------------
    def make_iterator(self, name: str, shard_id: str, position: int) -> str:
        body = base64.urlsafe_b64encode(
            json.dumps([name, shard_id, position, int(time.time() * 1000)]).encode()
        ).decode()
        return f"{body}.{self._sign(body)}"

    def open_iterator(self, token: str) -> tuple[str, str, int]:
        """(stream, shard, position) of an iterator; InvalidArgument if forged, ExpiredIterator if old."""
        body, _, signature = token.rpartition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            raise InvalidArgument("Invalid ShardIterator.")
        name, shard_id, position, created_ms = json.loads(base64.urlsafe_b64decode(body))
        now_ms = int(time.time() * 1000)
        if now_ms - created_ms > ITERATOR_TTL_MS:
            raise ExpiredIterator(
                f"Iterator expired. The iterator was created at time {_iso(created_ms)} while right now it is "
                f"{_iso(now_ms)} which is further in the future than the tolerated delay of {ITERATOR_TTL_MS} "
                "milliseconds."
            )
        return str(name), str(shard_id), int(position)

    def _sign(self, body: str) -> str:
        return hmac.new(self._iterator_key, body.encode(), hashlib.sha256).hexdigest()[:32]


def _iso(ms: int) -> str:
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(ms / 1000))


def describe_shard(shard: Shard) -> dict[str, Any]:
    """A Shard as Kinesis returns it."""
    body: dict[str, Any] = {
        "ShardId": shard.shard_id,
        "HashKeyRange": {"StartingHashKey": str(shard.start_key), "EndingHashKey": str(shard.end_key)},
        "SequenceNumberRange": {"StartingSequenceNumber": sequence(shard.start_seq)},
    }
    if shard.end_seq is not None:
        body["SequenceNumberRange"]["EndingSequenceNumber"] = sequence(shard.end_seq)
    if shard.parent:
        body["ParentShardId"] = shard.parent
    if shard.adjacent_parent:
        body["AdjacentParentShardId"] = shard.adjacent_parent
    return body
