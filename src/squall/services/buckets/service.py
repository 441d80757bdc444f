"""The bucket service: buckets, objects and multipart uploads, with metadata in a ``SqlDatabase``
and bodies in a ``store.Bodies`` (SQLite and files in the embedded tier; PostgreSQL, shared by every
server, in the scale-out tier: ``postgres.py``).

A write stores its body first (durably), then commits the metadata row that points to it; only then
is the object visible, and only then is a replaced body removed. Listeners (``add_listener``) hear
of every object created or removed after its commit: that is where bucket notifications attach. A
change that a bucket notification configuration wants is also written to an outbox in the object's
own transaction, claimed by the writing server, and stays there until the notifier acknowledges it
(``ack_notification``), so a crash between the commit and the delivery does not lose it: once the
claim's server is gone, any server takes the row over (``claim_notifications``).

Several servers may share one store: writes to one key wait for each other (the object's row is
locked, a key being created is retried once its creator commits), so a conditional write's check and
its write are one step across servers; a write into a bucket holds the bucket's row against a
concurrent DeleteBucket.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from squall.errors import StoreUnavailable
from squall.services.buckets import checksums, notifications
from squall.services.buckets.errors import (
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    EntityTooSmall,
    InvalidArgument,
    InvalidBucketName,
    InvalidPart,
    InvalidPartOrder,
    MalformedXML,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
)
from squall.services.buckets.files import BodyStore
from squall.services.buckets.store import Bodies, schema
from squall.sources.owner import new_owner, owner_alive
from squall.stores.sql import SQLITE_TYPES, Connection, SqlDatabase, SqliteDatabase

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000
DEFAULT_MAX_KEYS = 1000

#: How long a server's claim on an outbox row holds before another server may deliver the row.
NOTIFICATION_CLAIM_S = 30.0
#: Outbox rows a server claims at most at a time.
NOTIFICATION_BATCH = 100

_BUCKET_NAME_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_OBJECT_FIELDS = ("bucket", "key", "file", "size", "etag", "modified", "headers", "metadata", "checksums", "sequencer")
_OBJECT_COLUMNS = ", ".join(_OBJECT_FIELDS)
_PART_FIELDS = ("upload_id", "number", "file", "size", "etag", "modified")
#: Reads of an object that lost the race against an overwrite, before giving up.
_OPEN_ATTEMPTS = 5


@dataclass(frozen=True)
class Bucket:
    name: str
    region: str
    created: float


@dataclass(frozen=True)
class StoredObject:
    """An object's metadata. ``headers`` are the stored representation headers (content-type,
    content-encoding...), ``metadata`` the user's ``x-amz-meta-*`` (names without the prefix)."""

    bucket: str
    key: str
    file: str
    size: int
    etag: str
    modified: float
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    sequencer: str = ""


@dataclass(frozen=True)
class Upload:
    upload_id: str
    bucket: str
    key: str
    initiated: float
    headers: dict[str, str]
    metadata: dict[str, str]


@dataclass(frozen=True)
class Part:
    number: int
    size: int
    etag: str
    modified: float


@dataclass(frozen=True)
class Listing:
    """One page of a bucket listing; ``last`` is the last key or common prefix it returned."""

    objects: list[StoredObject]
    prefixes: list[str]
    truncated: bool
    last: str | None


@dataclass(frozen=True)
class ObjectChange:
    """What a listener hears: ``event`` is S3's event name without ``s3:`` (``ObjectCreated:Put``,
    ``ObjectRemoved:Delete``...); ``size`` and ``etag`` are ``None`` for removals. ``outbox_id`` is
    its outbox row when a notification configuration wanted it, ``caller`` who made the request."""

    event: str
    bucket: str
    key: str
    size: int | None
    etag: str | None
    sequencer: str
    outbox_id: int | None = None
    caller: notifications.Caller | None = None


Listener = Callable[[ObjectChange], None]


def check_bucket_name(name: str) -> None:
    """InvalidBucketName unless ``name`` follows S3's general purpose bucket naming rules."""
    invalid = (
        not _BUCKET_NAME_RE.fullmatch(name)
        or ".." in name
        or ".-" in name
        or "-." in name
        or name.startswith(("xn--", "sthree-"))
        or name.endswith(("-s3alias", "--ol-s3"))
    )
    if not invalid:
        with contextlib.suppress(ValueError):
            ipaddress.IPv4Address(name)
            invalid = True
    if invalid:
        raise InvalidBucketName(BucketName=name)


class BucketService:
    """Buckets and their objects: metadata in ``database`` (a path: a SQLite file, the embedded tier's
    ``<data dir>/buckets.db``) and bodies in ``bodies`` (a path: a directory of files)."""

    def __init__(
        self,
        database: Path | SqlDatabase,
        bodies: Path | Bodies,
        region: str,
        claim_s: float = NOTIFICATION_CLAIM_S,
    ) -> None:
        self.region = region
        self.db = (
            SqliteDatabase(database, schema(SQLITE_TYPES), "Bucket store") if isinstance(database, Path) else database
        )
        try:
            self.bodies: Bodies = BodyStore(bodies) if isinstance(bodies, Path) else bodies
            self.bodies.recover(self.db)
        except BaseException:
            self.db.close()
            raise
        #: Who this service is in the outbox's claims: its process (``sources.owner``, gone once the
        #: process is) and an instance of its own.
        self.owner = f"{new_owner()}#{secrets.token_hex(4)}"
        self.claim_s = claim_s
        self._listeners: list[Listener] = []
        self._sequence_lock = threading.Lock()
        self._last_sequence = 0
        self._closed = False

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` after every committed object creation or removal (from the writing thread)."""
        self._listeners.append(listener)

    def close(self) -> None:
        """Stop: the outbox rows this service claimed and did not deliver go to the other servers."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(StoreUnavailable), self.db.write() as conn:
            conn.execute("DELETE FROM notification_claims WHERE owner = ?", (self.owner,))
        self.db.close()

    # --- buckets ----------------------------------------------------------------------------------
    def create_bucket(self, name: str, region: str | None = None) -> None:
        check_bucket_name(name)
        with self.db.write() as conn:
            created = conn.execute(
                "INSERT INTO buckets VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (name, region or self.region, time.time()),
            ).rowcount
            # us-east-1 answers 200 to its owner, for legacy compatibility; other regions 409.
            if not created and (region or self.region) != "us-east-1":
                raise BucketAlreadyOwnedByYou(BucketName=name)

    def delete_bucket(self, name: str) -> None:
        with self.db.write() as conn:
            # Waits for the writes into the bucket in progress (they hold its row shared).
            self._bucket(conn, name, self.db.for_update)
            if conn.execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (name,)).fetchone():
                raise BucketNotEmpty(BucketName=name)
            files = [
                row[0]
                for row in conn.execute(
                    "SELECT p.file FROM parts p JOIN uploads u USING (upload_id) WHERE u.bucket = ?", (name,)
                ).fetchall()
            ]
            conn.execute(
                "DELETE FROM parts WHERE upload_id IN (SELECT upload_id FROM uploads WHERE bucket = ?)", (name,)
            )
            conn.execute("DELETE FROM uploads WHERE bucket = ?", (name,))
            conn.execute("DELETE FROM buckets WHERE name = ?", (name,))
            conn.execute("DELETE FROM notifications WHERE bucket = ?", (name,))
        for file in files:
            self.bodies.remove(file)

    def list_buckets(self) -> list[Bucket]:
        with self.db.read() as conn:
            rows = conn.execute("SELECT name, region, created FROM buckets ORDER BY name").fetchall()
        return [Bucket(*row) for row in rows]

    def get_bucket(self, name: str) -> Bucket:
        with self.db.read() as conn:
            return self._bucket(conn, name)

    def put_notifications(self, bucket: str, config: str) -> None:
        """Store ``bucket``'s notification configuration (JSON); an empty list removes it."""
        with self.db.write() as conn:
            self._bucket(conn, bucket, self.db.for_share)
            if config == "[]":
                conn.execute("DELETE FROM notifications WHERE bucket = ?", (bucket,))
            else:
                conn.execute(
                    "INSERT INTO notifications VALUES (?, ?)"
                    " ON CONFLICT (bucket) DO UPDATE SET config = excluded.config",
                    (bucket, config),
                )

    def notifications(self, bucket: str) -> str:
        """``bucket``'s notification configuration (JSON, ``[]`` when none), as committed (by any server)."""
        with self.db.read() as conn:
            return self._configs(conn, bucket)

    # --- objects ----------------------------------------------------------------------------------
    def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes,
        headers: dict[str, str],
        metadata: dict[str, str],
        object_checksums: dict[str, str] | None = None,
        condition: Callable[[StoredObject | None], None] | None = None,
    ) -> StoredObject:
        """Store an object; ``condition`` (a conditional write's check of the object it would
        replace, or of ``None``) runs in the write's transaction, so no other write comes between."""
        self.get_bucket(bucket)
        file = self.bodies.write(data)
        stored = StoredObject(
            bucket, key, file, len(data), checksums.etag(data), time.time(), headers, metadata, object_checksums or {}
        )
        return self._store(stored, "ObjectCreated:Put", condition)

    def head_object(self, bucket: str, key: str) -> StoredObject:
        with self.db.read() as conn:
            return self._object(conn, bucket, key)

    def open_object(self, bucket: str, key: str) -> tuple[StoredObject, BinaryIO]:
        """The object and its body opened for reading. A reader keeps its body across a concurrent
        overwrite or delete; one that loses the race to open it reads the object again."""
        for attempt in range(_OPEN_ATTEMPTS):
            with self.db.read() as conn:
                stored = self._object(conn, bucket, key)
            try:
                return stored, self.bodies.open(stored.file)
            except FileNotFoundError:
                if attempt == _OPEN_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def delete_object(self, bucket: str, key: str) -> bool:
        """Remove ``key`` (no error when it does not exist, as S3); whether something was removed."""
        with self.db.write() as conn:
            self._bucket(conn, bucket, self.db.for_share)
            row = conn.execute(
                "SELECT file, sequencer FROM objects WHERE bucket = ? AND key = ?" + self.db.for_update, (bucket, key)
            ).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
            change = self._outbox(
                conn, ObjectChange("ObjectRemoved:Delete", bucket, key, None, None, self._next_sequencer(row[1]))
            )
        self.bodies.remove(row[0])
        self._notify(change)
        return True

    def copy_object(
        self,
        source_bucket: str,
        source_key: str,
        bucket: str,
        key: str,
        replace: tuple[dict[str, str], dict[str, str]] | None,
        check: Callable[[StoredObject], None] = lambda _: None,
    ) -> StoredObject:
        """Copy an object; ``replace`` is the new (headers, metadata), or ``None`` to keep the
        source's. ``check`` (copy-source preconditions) runs on the source before anything is written."""
        self.get_bucket(bucket)
        for attempt in range(_OPEN_ATTEMPTS):
            with self.db.read() as conn:
                source = self._object(conn, source_bucket, source_key)
            check(source)
            try:
                file = self.bodies.copy(source.file)
                break
            except FileNotFoundError:  # overwritten or deleted since the read: read it again
                if attempt == _OPEN_ATTEMPTS - 1:
                    raise
        headers, metadata = replace if replace is not None else (source.headers, source.metadata)
        stored = StoredObject(
            bucket, key, file, source.size, source.etag, time.time(), headers, metadata, source.checksums
        )
        return self._store(stored, "ObjectCreated:Copy")

    def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        after: str = "",
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> Listing:
        """Keys (and, with ``delimiter``, common prefixes) after ``after`` in UTF-8 binary order."""
        objects: list[StoredObject] = []
        prefixes: list[str] = []
        last: str | None = None
        cursor = max(after, prefix) if prefix else after
        inclusive = bool(prefix) and prefix > after
        with self.db.read() as conn:
            self._bucket(conn, bucket)
            while True:
                rows = conn.execute(
                    f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key {'>=' if inclusive else '>'} ? "
                    "ORDER BY key LIMIT 1000",
                    (bucket, cursor),
                ).fetchall()
                if not rows:
                    return Listing(objects, prefixes, False, last)
                for row in rows:
                    stored = _object_of(row)
                    cursor, inclusive = stored.key, False
                    if not stored.key.startswith(prefix):
                        return Listing(objects, prefixes, False, last)
                    entry = stored.key
                    if delimiter:
                        index = stored.key.find(delimiter, len(prefix))
                        if index >= 0:
                            entry = stored.key[: index + len(delimiter)]
                    if entry <= after or (prefixes and entry == prefixes[-1]):
                        continue
                    if len(objects) + len(prefixes) == max_keys:
                        return Listing(objects, prefixes, True, last)
                    if entry == stored.key:
                        objects.append(stored)
                    else:
                        prefixes.append(entry)
                    last = entry

    # --- multipart uploads ------------------------------------------------------------------------
    def create_upload(self, bucket: str, key: str, headers: dict[str, str], metadata: dict[str, str]) -> Upload:
        upload = Upload(secrets.token_urlsafe(48), bucket, key, time.time(), headers, metadata)
        with self.db.write() as conn:
            self._bucket(conn, bucket, self.db.for_share)
            conn.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?)",
                (upload.upload_id, bucket, key, upload.initiated, json.dumps(headers), json.dumps(metadata)),
            )
        return upload

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> Part:
        _check_part_number(number)
        self._upload(bucket, key, upload_id)
        file = self.bodies.write(data)
        part = Part(number, len(data), checksums.etag(data), time.time())
        try:
            with self.db.write() as conn:
                # Shared: parts go up in parallel; completing or aborting the upload waits for them.
                self._upload_in(conn, bucket, key, upload_id, self.db.for_share)
                old = self._replace(
                    conn,
                    "parts",
                    _PART_FIELDS,
                    (upload_id, number),
                    lambda _: (file, part.size, part.etag, part.modified),
                )
                self.bodies.adopt(conn, file)
        except BaseException:
            self.bodies.discard(file)
            raise
        if old is not None:
            self.bodies.remove(old[2])
        return part

    def list_parts(self, bucket: str, key: str, upload_id: str) -> tuple[Upload, list[Part]]:
        upload = self._upload(bucket, key, upload_id)
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT number, size, etag, modified FROM parts WHERE upload_id = ? ORDER BY number", (upload_id,)
            ).fetchall()
        return upload, [Part(*row) for row in rows]

    def list_uploads(self, bucket: str) -> list[Upload]:
        with self.db.read() as conn:
            self._bucket(conn, bucket)
            rows = conn.execute(
                "SELECT upload_id, bucket, key, initiated, headers, metadata FROM uploads WHERE bucket = ? "
                "ORDER BY key, initiated",
                (bucket,),
            ).fetchall()
        return [_upload_of(row) for row in rows]

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        with self.db.write() as conn:
            self._upload_in(conn, bucket, key, upload_id, self.db.for_update)
            files = [row[0] for row in conn.execute("SELECT file FROM parts WHERE upload_id = ?", (upload_id,))]
            conn.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
            conn.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
        for file in files:
            self.bodies.remove(file)

    def complete_upload(
        self, bucket: str, key: str, upload_id: str, requested: Sequence[tuple[int, str]]
    ) -> StoredObject:
        """Assemble the parts ``requested`` (number, ETag) into the object; S3's checks apply."""
        if not requested:
            raise MalformedXML()
        upload, parts = self.list_parts(bucket, key, upload_id)
        by_number = {part.number: part for part in parts}
        numbers = [number for number, _ in requested]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise InvalidPartOrder(UploadId=upload_id)
        chosen = []
        for number, tag in requested:
            part = by_number.get(number)
            if part is None or part.etag.strip('"') != tag.strip('"'):
                raise InvalidPart(UploadId=upload_id, PartNumber=str(number), ETag=tag)
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < MIN_PART_SIZE:
                raise EntityTooSmall(
                    ProposedSize=str(part.size),
                    MinSizeAllowed=str(MIN_PART_SIZE),
                    PartNumber=str(part.number),
                    ETag=part.etag.strip('"'),
                )
        with self.db.read() as conn:
            files = dict(conn.execute("SELECT number, file FROM parts WHERE upload_id = ?", (upload_id,)).fetchall())
        file = self.bodies.concatenate(files[part.number] for part in chosen)
        stored = StoredObject(
            bucket,
            key,
            file,
            sum(part.size for part in chosen),
            checksums.multipart_etag(part.etag for part in chosen),
            time.time(),
            upload.headers,
            upload.metadata,
        )
        try:
            with self.db.write() as conn:
                self._bucket(conn, bucket, self.db.for_share)
                self._upload_in(conn, bucket, key, upload_id, self.db.for_update)
                current = dict(
                    conn.execute("SELECT number, file FROM parts WHERE upload_id = ?", (upload_id,)).fetchall()
                )
                for part in chosen:
                    if current.get(part.number) != files[part.number]:  # uploaded again meanwhile
                        raise InvalidPart(UploadId=upload_id, PartNumber=str(part.number), ETag=part.etag)
                conn.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
                conn.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
                replaced, sequencer = self._upsert(conn, stored)
                event = "ObjectCreated:CompleteMultipartUpload"
                change = self._outbox(conn, ObjectChange(event, bucket, key, stored.size, stored.etag, sequencer))
        except BaseException:
            self.bodies.discard(file)
            raise
        for name in [*current.values(), *([replaced] if replaced else [])]:
            self.bodies.remove(name)
        self._notify(change)
        return dataclasses.replace(stored, sequencer=sequencer)

    # --- notification outbox ----------------------------------------------------------------------
    def pending_notifications(self) -> list[ObjectChange]:
        """Every outbox row not acknowledged yet, claimed or not."""
        with self.db.read() as conn:
            rows = conn.execute("SELECT id, change FROM notification_outbox ORDER BY id").fetchall()
        return [_change_of(row_id, raw) for row_id, raw in rows]

    def claim_notifications(self) -> list[ObjectChange]:
        """Outbox rows no live server is delivering, now claimed by this one for ``claim_s``: rows a
        dead server had claimed (at once when it ran on this host, else once its claim lapsed), or a
        live one's claim that lapsed before it acknowledged. Of servers claiming at once, each row goes
        to one."""
        with self.db.read() as conn:
            owners = [row[0] for row in conn.execute("SELECT DISTINCT owner FROM notification_claims").fetchall()]
        dead = [owner for owner in owners if not owner_alive(owner.partition("#")[0])]
        now = time.time()
        wanted = "c.id IS NULL OR c.until < ?" + (f" OR c.owner IN ({', '.join('?' * len(dead))})" if dead else "")
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT o.id, o.change, c.owner, c.until FROM notification_outbox o"
                f" LEFT JOIN notification_claims c ON c.id = o.id WHERE {wanted} ORDER BY o.id LIMIT ?",
                (now, *dead, NOTIFICATION_BATCH),
            ).fetchall()
        claimed: list[ObjectChange] = []
        with self.db.write() as conn:
            for outbox_id, raw, owner, until in rows:
                # Compare-and-set on the claim read: a server that took it meanwhile keeps it.
                if owner is None:
                    taken = conn.execute(
                        "INSERT INTO notification_claims VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        (outbox_id, self.owner, now + self.claim_s),
                    ).rowcount
                else:
                    taken = conn.execute(
                        "UPDATE notification_claims SET owner = ?, until = ? WHERE id = ? AND owner = ? AND until = ?",
                        (self.owner, now + self.claim_s, outbox_id, owner, until),
                    ).rowcount
                if taken:
                    claimed.append(_change_of(outbox_id, raw))
        return claimed

    def ack_notification(self, outbox_id: int) -> None:
        """The notification of outbox row ``outbox_id`` was handed on (or given up on)."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM notification_outbox WHERE id = ?", (outbox_id,))
            conn.execute("DELETE FROM notification_claims WHERE id = ?", (outbox_id,))

    # --- internals --------------------------------------------------------------------------------
    def _store(
        self, stored: StoredObject, event: str, condition: Callable[[StoredObject | None], None] | None = None
    ) -> StoredObject:
        try:
            with self.db.write() as conn:
                self._bucket(conn, stored.bucket, self.db.for_share)
                replaced, sequencer = self._upsert(conn, stored, condition)
                change = self._outbox(
                    conn, ObjectChange(event, stored.bucket, stored.key, stored.size, stored.etag, sequencer)
                )
        except BaseException:
            self.bodies.discard(stored.file)
            raise
        if replaced:
            self.bodies.remove(replaced)
        self._notify(change)
        return dataclasses.replace(stored, sequencer=sequencer)

    def _upsert(
        self, conn: Connection, stored: StoredObject, condition: Callable[[StoredObject | None], None] | None = None
    ) -> tuple[str | None, str]:
        """Write ``stored``'s row once ``condition`` accepts the one it replaces; the body it replaced
        (if any) and its sequencer, which follows the replaced object's."""
        sequencer = ""

        def fill(old: Sequence[Any] | None) -> tuple[Any, ...]:
            nonlocal sequencer
            current = _object_of(old) if old is not None else None
            if condition is not None:
                condition(current)
            sequencer = self._next_sequencer(current.sequencer if current else "")
            return (
                stored.file,
                stored.size,
                stored.etag,
                stored.modified,
                json.dumps(stored.headers),
                json.dumps(stored.metadata),
                json.dumps(stored.checksums),
                sequencer,
            )

        old = self._replace(conn, "objects", _OBJECT_FIELDS, (stored.bucket, stored.key), fill)
        self.bodies.adopt(conn, stored.file)
        return (old[2] if old else None), sequencer

    def _replace(
        self,
        conn: Connection,
        table: str,
        columns: Sequence[str],
        key: tuple[Any, ...],
        fill: Callable[[Sequence[Any] | None], tuple[Any, ...]],
    ) -> Sequence[Any] | None:
        """Write the row of ``table`` whose primary key (its first columns) is ``key``, the other
        columns being ``fill(the row there, or None)``, called with that row locked; the row replaced.
        When another server creates the row first, this waits for its commit and replaces it."""
        where = " AND ".join(f"{column} = ?" for column in columns[: len(key)])
        while True:
            old = conn.execute(
                f"SELECT {', '.join(columns)} FROM {table} WHERE {where}{self.db.for_update}", key
            ).fetchone()
            values = fill(old)
            if old is not None:
                assignments = ", ".join(f"{column} = ?" for column in columns[len(key) :])
                conn.execute(f"UPDATE {table} SET {assignments} WHERE {where}", (*values, *key))
                return tuple(old)
            inserted = conn.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                " ON CONFLICT DO NOTHING",
                (*key, *values),
            )
            if inserted.rowcount == 1:
                return None

    def _next_sequencer(self, after: str = "") -> str:
        """S3's ``sequencer``: increasing hex, comparable between events of one key (and above ``after``,
        the sequencer of the key's last event, whichever server wrote it)."""
        with self._sequence_lock:
            floor = int(after, 16) + 1 if after else 0
            self._last_sequence = max(self._last_sequence + 1, time.time_ns(), floor)
            return f"{self._last_sequence:018X}"

    def _outbox(self, conn: Connection, change: ObjectChange) -> ObjectChange:
        """``change`` with who caused it, and with its outbox row, claimed by this server, when a
        configuration of its bucket wants it (written in the caller's transaction)."""
        change = dataclasses.replace(change, caller=notifications.CALLER.get())
        configs = notifications.from_json(self._configs(conn, change.bucket))
        if not any(config.matches(change.event, change.key) for config in configs):
            return change
        row = conn.execute(
            "INSERT INTO notification_outbox (change) VALUES (?) RETURNING id", (_change_json(change),)
        ).fetchone()
        conn.execute(
            "INSERT INTO notification_claims VALUES (?, ?, ?)", (row[0], self.owner, time.time() + self.claim_s)
        )
        return dataclasses.replace(change, outbox_id=int(row[0]))

    def _notify(self, change: ObjectChange) -> None:
        for listener in self._listeners:
            listener(change)

    def _configs(self, conn: Connection, bucket: str) -> str:
        row = conn.execute("SELECT config FROM notifications WHERE bucket = ?", (bucket,)).fetchone()
        return str(row[0]) if row else "[]"

    def _bucket(self, conn: Connection, name: str, lock: str = "") -> Bucket:
        row = conn.execute("SELECT name, region, created FROM buckets WHERE name = ?" + lock, (name,)).fetchone()
        if row is None:
            raise NoSuchBucket(BucketName=name)
        return Bucket(*row)

    def _object(self, conn: Connection, bucket: str, key: str) -> StoredObject:
        row = conn.execute(
            f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
        ).fetchone()
        if row is None:
            self._bucket(conn, bucket)
            raise NoSuchKey(Key=key)
        return _object_of(row)

    def _upload(self, bucket: str, key: str, upload_id: str) -> Upload:
        with self.db.read() as conn:
            return self._upload_in(conn, bucket, key, upload_id)

    def _upload_in(self, conn: Connection, bucket: str, key: str, upload_id: str, lock: str = "") -> Upload:
        row = conn.execute(
            "SELECT upload_id, bucket, key, initiated, headers, metadata FROM uploads WHERE upload_id = ?" + lock,
            (upload_id,),
        ).fetchone()
        if row is None or row[1] != bucket or row[2] != key:
            self._bucket(conn, bucket)
            raise NoSuchUpload(UploadId=upload_id)
        return _upload_of(row)


def _check_part_number(number: int) -> None:
    if not 1 <= number <= MAX_PART_NUMBER:
        raise InvalidArgument(
            "Part number must be an integer between 1 and 10000, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=str(number),
        )


def _object_of(row: Sequence[Any]) -> StoredObject:
    bucket, key, file, size, etag, modified, headers, metadata, sums, sequencer = row
    return StoredObject(
        bucket, key, file, size, etag, modified, json.loads(headers), json.loads(metadata), json.loads(sums), sequencer
    )


def _upload_of(row: Sequence[Any]) -> Upload:
    return Upload(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]))


def _change_json(change: ObjectChange) -> str:
    data = dataclasses.asdict(change)
    data.pop("outbox_id")
    return json.dumps(data)


def _change_of(outbox_id: int, raw: str) -> ObjectChange:
    data = json.loads(raw)
    caller = notifications.Caller(**data.pop("caller")) if data.get("caller") else None
    data.pop("caller", None)
    return ObjectChange(**data, outbox_id=outbox_id, caller=caller)
