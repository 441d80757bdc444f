"""The stream service: streams, shards, durable records and shard iterators.

The rows live in a ``StreamStore``: a SQLite file (embedded tier) or PostgreSQL shared by several
servers (scale-out tier); the SQL and the logic here are the same for both. A put is acknowledged
only after its transaction is committed durably. Records are numbered by a per-stream counter; the
sequence numbers clients see are that counter spelled as Kinesis spells them (increasing decimal
strings), so ordering and iterator positions are integers.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from squall.errors import StoreUnavailable
from squall.services.streams import shards
from squall.services.streams.errors import ExpiredIterator, InvalidArgument, StreamInUse, StreamNotFound
from squall.services.streams.store import RecordRow, SqliteStreamStore, StreamStore
from squall.stores.sql import Connection, shared_secret

ITERATOR_TTL_MS = 300_000
DEFAULT_RETENTION_HOURS = 24
ON_DEMAND_SHARDS = 4


@dataclass(eq=False)
class _Put:
    """One put waiting for (or done by) a group commit."""

    name: str
    entries: Sequence[tuple[str, bytes, str | None]]
    keys: list[int]
    done: bool = False
    placed: list[tuple[str, int]] = field(default_factory=list)
    error: BaseException | None = None


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
    if not sequence_number.isdigit() or int(sequence_number) < shards.SEQUENCE_BASE:
        raise InvalidArgument(
            f"StartingSequenceNumber {sequence_number} used in GetShardIterator on shard "
            "is not a valid sequence number."
        )
    return int(sequence_number) - shards.SEQUENCE_BASE


class StreamService:
    """Streams of one account and region, stored in ``store`` (a path: a SQLite file of its own)."""

    def __init__(
        self, store: Path | StreamStore, account_id: str, region: str, iterator_key: bytes | None = None
    ) -> None:
        self.account_id = account_id
        self.region = region
        self.store = SqliteStreamStore(store) if isinstance(store, Path) else store
        self._lock = threading.Lock()  # one group commit at a time
        self._waiting: list[_Put] = []  # puts queued for the next group commit
        self._waiting_lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []
        try:
            self._iterator_key = iterator_key or shared_secret(self.store, "stream_secrets", "iterator")
        except BaseException:
            self.store.close()
            raise

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(stream name)`` after every committed put: this service's own (from the
        putting thread) and, on a shared store, other servers' (from a thread of the store's)."""
        if not self._listeners:
            self.store.watch(self._on_remote_put)
        self._listeners.append(listener)

    def _on_remote_put(self, name: str) -> None:
        # No resync: puts missed while not listening are found by the pollers' idle backstop.
        for listener in self._listeners:
            listener(name)

    def arn(self, name: str) -> str:
        return f"arn:aws:kinesis:{self.region}:{self.account_id}:stream/{name}"

    def close(self) -> None:
        with self._lock:
            self.store.close()

    # --- streams ------------------------------------------------------------------------------------
    def create_stream(self, name: str, shard_count: int, mode: str, tags: dict[str, str]) -> None:
        now = time.time()
        with self.store.write() as conn:
            created = conn.execute(
                "INSERT INTO streams VALUES (?, ?, 'ACTIVE', ?, ?, 0, ?) ON CONFLICT (name) DO NOTHING",
                (name, mode, DEFAULT_RETENTION_HOURS, now, json.dumps(tags)),
            )
            if created.rowcount != 1:
                raise StreamInUse(f"Stream {name} under account {self.account_id} already exists.")
            conn.executemany(
                "INSERT INTO shards VALUES (?, ?, ?, ?, 0, NULL, NULL, NULL)",
                [
                    (name, shards.shard_id(i), str(start), str(end))
                    for i, (start, end) in enumerate(shards.even_ranges(shard_count))
                ],
            )

    def delete_stream(self, name: str) -> None:
        with self.store.write() as conn:
            self._stream(conn, name, lock=True)  # a put in flight on another server finishes first
            for table, column in (("records", "stream"), ("shards", "stream"), ("streams", "name")):
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (name,))

    def stream(self, name: str) -> Stream:
        with self.store.read() as conn:
            return self._stream(conn, name)

    def _stream(self, conn: Connection, name: str, lock: bool = False) -> Stream:
        """The stream ``name``; with ``lock``, its row stays locked until the write transaction ends."""
        row = conn.execute(
            "SELECT name, mode, status, retention_hours, created, tags FROM streams WHERE name = ?"
            + (self.store.for_update if lock else ""),
            (name,),
        ).fetchone()
        if row is None:
            raise StreamNotFound(f"Stream {name} under account {self.account_id} not found.")
        return Stream(
            name=row[0], mode=row[1], status=row[2], retention_hours=row[3], created=row[4], tags=json.loads(row[5])
        )

    def list_streams(self, after: str | None, limit: int) -> tuple[list[Stream], bool]:
        with self.store.read() as conn:
            rows = conn.execute(
                "SELECT name FROM streams WHERE name > ? ORDER BY name LIMIT ?", (after or "", limit + 1)
            ).fetchall()
            streams = [self._stream(conn, row[0]) for row in rows[:limit]]
        return streams, len(rows) > limit

    def shards(self, name: str) -> list[Shard]:
        with self.store.read() as conn:
            self._stream(conn, name)
            rows = conn.execute(
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
        with self.store.write() as conn:
            self._stream(conn, name, lock=True)
            conn.execute("UPDATE streams SET retention_hours = ? WHERE name = ?", (hours, name))
            conn.execute("DELETE FROM records WHERE stream = ? AND arrival < ?", (name, time.time() - hours * 3600))

    def reshard(self, name: str, close: Sequence[str], children: Sequence[tuple[int, int, str, str | None]]) -> None:
        """Close shards ``close`` at the current sequence counter and open ``children``
        (start key, end key, parent, adjacent parent), numbered after the existing shards."""
        with self.store.write() as conn:
            counter = self._counter(conn, name, lock=True)
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
        with self.store.write() as conn:
            tags = self._stream(conn, name, lock=True).tags
            tags.update(add)
            for key in remove:
                tags.pop(key, None)
            conn.execute("UPDATE streams SET tags = ? WHERE name = ?", (json.dumps(tags), name))

    def _counter(self, conn: Connection, name: str, lock: bool = False) -> int:
        """The stream's last sequence counter; with ``lock``, no other writer takes it until we commit."""
        row = conn.execute(
            "SELECT counter FROM streams WHERE name = ?" + (self.store.for_update if lock else ""), (name,)
        ).fetchone()
        if row is None:
            raise StreamNotFound(f"Stream {name} under account {self.account_id} not found.")
        return int(row[0])

    # --- records ------------------------------------------------------------------------------------
    def put(self, name: str, entries: Sequence[tuple[str, bytes, str | None]]) -> list[tuple[str, int]]:
        """Append (partition key, data, explicit hash key) records; (shard id, counter) of each, in order.

        All of them are committed, durably, before this returns. Puts from concurrent threads are
        committed together (group commit): each queues itself, and whichever thread gets the commit
        lock next commits every queued put in one transaction, one flush to disk for all of them; the
        others find theirs done when they get the lock in turn.
        """
        job = _Put(name, entries, [shards.hash_key(key, explicit) for key, _, explicit in entries])
        with self._waiting_lock:
            self._waiting.append(job)
        with self._lock:
            if not job.done:
                with self._waiting_lock:
                    group, self._waiting = self._waiting, []
                self._commit(group)
        if job.error is not None:
            raise job.error
        for listener in self._listeners:
            listener(name)
        return job.placed

    def _commit(self, group: list[_Put]) -> None:
        """Write every put of ``group`` in one transaction. A put refused on its own (its stream is
        gone) fails alone, before writing anything; any other failure fails the whole group, whose
        puts then all raise StoreUnavailable (nothing of theirs was committed)."""
        committed = False
        cause: BaseException | None = None
        try:
            with self.store.write() as conn:
                self._write_group(conn, group)
            committed = True
        except Exception as exc:
            cause = exc
        finally:
            for job in group:
                if not committed and job.error is None:
                    job.placed = []
                    job.error = StoreUnavailable(
                        cause.message if isinstance(cause, StoreUnavailable) else f"Stream store failure: {cause}"
                    )
                    job.error.__cause__ = cause
                job.done = True

    def _write_group(self, conn: Connection, group: list[_Put]) -> None:
        # The streams' rows are locked in name order, so that two servers' groups never deadlock.
        counters: dict[str, int | None] = {}
        for name in sorted({job.name for job in group}):
            try:
                counters[name] = self._counter(conn, name, lock=True)
            except StreamNotFound:
                counters[name] = None
        placers: dict[str, Callable[[int], str]] = {}
        rows: list[RecordRow] = []
        now = time.time()
        for job in group:
            last = counters[job.name]
            if last is None:
                job.error = StreamNotFound(f"Stream {job.name} under account {self.account_id} not found.")
                continue
            if job.name not in placers:
                placers[job.name] = self._placer_of(conn, job.name)
            try:
                shard_ids = [placers[job.name](key) for key in job.keys]
            except ValueError as exc:
                job.error = exc
                continue
            first, count = last + 1, len(job.entries)
            rows += zip(
                itertools.repeat(job.name),
                shard_ids,
                itertools.count(first),
                (entry[0] for entry in job.entries),
                (entry[1] for entry in job.entries),
                itertools.repeat(now),
            )
            counters[job.name] = last + count
            job.placed = list(zip(shard_ids, range(first, first + count), strict=True))
        if not rows:
            return
        self.store.insert_records(conn, rows)
        written = sorted({job.name for job in group if job.placed})
        conn.executemany("UPDATE streams SET counter = ? WHERE name = ?", [(counters[n], n) for n in written])
        for stream in written:
            self.store.notify(conn, stream)

    @staticmethod
    def _placer_of(conn: Connection, name: str) -> Callable[[int], str]:
        """Hash key -> shard id over the stream's open shards."""
        open_shards = sorted(
            (int(r[1]), int(r[2]), r[0])
            for r in conn.execute(
                "SELECT shard_id, start_key, end_key FROM shards WHERE stream = ? AND end_seq IS NULL", (name,)
            )
        )
        return _placer(open_shards)

    def read(self, name: str, shard_id: str, from_counter: int, limit: int) -> tuple[list[StoredRecord], float | None]:
        """Records of a shard from a counter on; plus, when the shard holds newer records than those
        returned, the arrival time of the last one returned (how far behind the reader is)."""
        with self.store.read() as conn:
            stream = conn.execute("SELECT retention_hours FROM streams WHERE name = ?", (name,)).fetchone()
            if stream is None:
                raise StreamNotFound(f"Stream {name} under account {self.account_id} not found.")
            rows = conn.execute(
                "SELECT seq, partition_key, data, arrival FROM records WHERE stream = ? AND shard_id = ?"
                " AND seq >= ? AND arrival >= ? ORDER BY seq LIMIT ?",
                (name, shard_id, from_counter, time.time() - stream[0] * 3600, limit),
            ).fetchall()
            # An index seek: MAX(arrival) here would visit every record of the shard.
            newest = conn.execute(
                "SELECT seq FROM records WHERE stream = ? AND shard_id = ? ORDER BY seq DESC LIMIT 1",
                (name, shard_id),
            ).fetchone()
        records = [StoredRecord(seq=r[0], partition_key=r[1], data=bytes(r[2]), arrival=r[3]) for r in rows]
        behind = None
        if records and newest is not None and records[-1].seq < newest[0]:
            behind = records[-1].arrival
        return records, behind

    def backlog(self, name: str, shard_id: str, position: int) -> tuple[int, float | None]:
        """How many records of a shard wait at or after ``position``, and when the oldest arrived."""
        with self.store.read() as conn:
            count, oldest = conn.execute(
                "SELECT COUNT(*), MIN(arrival) FROM records WHERE stream = ? AND shard_id = ? AND seq >= ?",
                (name, shard_id, position),
            ).fetchone()
        return int(count), oldest

    def latest_counter(self, name: str) -> int:
        with self.store.read() as conn:
            return self._counter(conn, name)

    def first_counter_at(self, name: str, shard_id: str, timestamp: float) -> int:
        with self.store.read() as conn:
            row = conn.execute(
                "SELECT MIN(seq) FROM records WHERE stream = ? AND shard_id = ? AND arrival >= ?",
                (name, shard_id, timestamp),
            ).fetchone()
            counter = self._counter(conn, name)
        return int(row[0]) if row[0] is not None else counter + 1

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


def _placer(open_shards: Sequence[tuple[int, int, str]]) -> Callable[[int], str]:
    """A function from hash key to shard id over ``open_shards``: (start key, end key, shard id)
    sorted by start key, covering the whole key space as the open shards of a stream always do."""
    starts = [start for start, _, _ in open_shards]
    ids = [shard for _, _, shard in open_shards]

    def place(key: int) -> str:
        index = bisect.bisect_right(starts, key) - 1
        if index < 0 or key > open_shards[index][1]:
            raise ValueError(f"hash key {key} is outside every open shard")
        return ids[index]

    return place


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
