"""The bucket service: buckets, objects and multipart uploads, with metadata in SQLite and bodies
as files (``files.BodyStore``).

A write stores its body file first (atomically, fsynced), then commits the metadata row that
points to it; only then is the object visible, and only then is a replaced body removed. Listeners
(``add_listener``) hear of every object created or removed after its commit: that is where bucket
notifications attach. A change that a bucket notification configuration wants is also written to
an outbox in the object's own transaction, and stays there until the notifier acknowledges it
(``ack_notification``), so a crash between the commit and the delivery does not lose it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
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
from squall.stores.sqlite_file import open_durable, write_transaction

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000
DEFAULT_MAX_KEYS = 1000

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, region TEXT NOT NULL, created REAL NOT NULL)",
    """CREATE TABLE IF NOT EXISTS objects (
        bucket TEXT NOT NULL, key TEXT NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
        modified REAL NOT NULL, headers TEXT NOT NULL, metadata TEXT NOT NULL, checksums TEXT NOT NULL,
        sequencer TEXT NOT NULL, PRIMARY KEY (bucket, key))""",
    """CREATE TABLE IF NOT EXISTS uploads (
        upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, initiated REAL NOT NULL,
        headers TEXT NOT NULL, metadata TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, initiated)",
    """CREATE TABLE IF NOT EXISTS parts (
        upload_id TEXT NOT NULL, number INTEGER NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL,
        etag TEXT NOT NULL, modified REAL NOT NULL, PRIMARY KEY (upload_id, number))""",
    # A bucket's notification configuration (``notifications.to_json``); removed with the bucket.
    "CREATE TABLE IF NOT EXISTS notifications (bucket TEXT PRIMARY KEY, config TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS notification_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, change TEXT NOT NULL)",
]

_BUCKET_NAME_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_OBJECT_COLUMNS = "bucket, key, file, size, etag, modified, headers, metadata, checksums, sequencer"


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
    """Buckets and their objects in ``<data dir>/buckets.db`` and ``<data dir>/objects/``."""

    def __init__(self, db_path: Path, objects_dir: Path, region: str) -> None:
        self.region = region
        self.bodies = BodyStore(objects_dir)
        self._conn = open_durable(db_path, _SCHEMA, "bucket store")
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._last_sequence = 0
        self._remove_orphans()
        #: Notification configurations (JSON) by bucket, read without the lock by every write's listeners.
        self._notifications: dict[str, str] = dict(self._conn.execute("SELECT bucket, config FROM notifications"))

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` after every committed object creation or removal (from the writing thread)."""
        self._listeners.append(listener)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- buckets ----------------------------------------------------------------------------------
    def create_bucket(self, name: str, region: str | None = None) -> None:
        check_bucket_name(name)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)).fetchone():
                # us-east-1 answers 200 to its owner, for legacy compatibility; other regions 409.
                if (region or self.region) == "us-east-1":
                    return
                raise BucketAlreadyOwnedByYou(BucketName=name)
            conn.execute("INSERT INTO buckets VALUES (?, ?, ?)", (name, region or self.region, time.time()))

    def delete_bucket(self, name: str) -> None:
        with self._write() as conn:
            self._bucket(conn, name)
            if conn.execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (name,)).fetchone():
                raise BucketNotEmpty(BucketName=name)
            files = [
                row[0]
                for row in conn.execute(
                    "SELECT p.file FROM parts p JOIN uploads u USING (upload_id) WHERE u.bucket = ?", (name,)
                )
            ]
            conn.execute(
                "DELETE FROM parts WHERE upload_id IN (SELECT upload_id FROM uploads WHERE bucket = ?)", (name,)
            )
            conn.execute("DELETE FROM uploads WHERE bucket = ?", (name,))
            conn.execute("DELETE FROM buckets WHERE name = ?", (name,))
            conn.execute("DELETE FROM notifications WHERE bucket = ?", (name,))
        self._notifications.pop(name, None)
        for file in files:
            self.bodies.remove(file)

    def list_buckets(self) -> list[Bucket]:
        with self._read() as conn:
            return [Bucket(*row) for row in conn.execute("SELECT name, region, created FROM buckets ORDER BY name")]

    def get_bucket(self, name: str) -> Bucket:
        with self._read() as conn:
            return self._bucket(conn, name)

    def put_notifications(self, bucket: str, config: str) -> None:
        """Store ``bucket``'s notification configuration (JSON); an empty list removes it."""
        with self._write() as conn:
            self._bucket(conn, bucket)
            if config == "[]":
                conn.execute("DELETE FROM notifications WHERE bucket = ?", (bucket,))
            else:
                conn.execute("INSERT OR REPLACE INTO notifications VALUES (?, ?)", (bucket, config))
        if config == "[]":
            self._notifications.pop(bucket, None)
        else:
            self._notifications[bucket] = config

    def notifications(self, bucket: str) -> str:
        """``bucket``'s notification configuration (JSON, ``[]`` when none); no store access."""
        return self._notifications.get(bucket, "[]")

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
        with self._read() as conn:
            return self._object(conn, bucket, key)

    def open_object(self, bucket: str, key: str) -> tuple[StoredObject, BinaryIO]:
        """The object and its body opened for reading; opened under the lock, so a concurrent
        overwrite or delete (which removes the old file) cannot pull it away."""
        with self._read() as conn:
            stored = self._object(conn, bucket, key)
            return stored, self.bodies.open(stored.file)

    def delete_object(self, bucket: str, key: str) -> bool:
        """Remove ``key`` (no error when it does not exist, as S3); whether something was removed."""
        with self._write() as conn:
            self._bucket(conn, bucket)
            row = conn.execute("SELECT file FROM objects WHERE bucket = ? AND key = ?", (bucket, key)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
            change = self._outbox(
                conn, ObjectChange("ObjectRemoved:Delete", bucket, key, None, None, self._next_sequencer())
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
        with self._read() as conn:
            source = self._object(conn, source_bucket, source_key)
            check(source)
            body = self.bodies.open(source.file)
        with body:
            file = self.bodies.write_stream(body)
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
        with self._read() as conn:
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
        with self._write() as conn:
            self._bucket(conn, bucket)
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
            with self._write() as conn:
                self._upload_in(conn, bucket, key, upload_id)
                old = conn.execute(
                    "SELECT file FROM parts WHERE upload_id = ? AND number = ?", (upload_id, number)
                ).fetchone()
                conn.execute(
                    "INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?, ?)",
                    (upload_id, number, file, part.size, part.etag, part.modified),
                )
        except BaseException:
            self.bodies.remove(file)
            raise
        if old is not None:
            self.bodies.remove(old[0])
        return part

    def list_parts(self, bucket: str, key: str, upload_id: str) -> tuple[Upload, list[Part]]:
        upload = self._upload(bucket, key, upload_id)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT number, size, etag, modified FROM parts WHERE upload_id = ? ORDER BY number", (upload_id,)
            ).fetchall()
        return upload, [Part(*row) for row in rows]

    def list_uploads(self, bucket: str) -> list[Upload]:
        with self._read() as conn:
            self._bucket(conn, bucket)
            rows = conn.execute(
                "SELECT upload_id, bucket, key, initiated, headers, metadata FROM uploads WHERE bucket = ? "
                "ORDER BY key, initiated",
                (bucket,),
            ).fetchall()
        return [_upload_of(row) for row in rows]

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        with self._write() as conn:
            self._upload_in(conn, bucket, key, upload_id)
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
        with self._read() as conn:
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
            with self._write() as conn:
                self._upload_in(conn, bucket, key, upload_id)
                conn.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
                conn.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
                replaced, sequencer = self._upsert(conn, stored)
                event = "ObjectCreated:CompleteMultipartUpload"
                change = self._outbox(conn, ObjectChange(event, bucket, key, stored.size, stored.etag, sequencer))
        except BaseException:
            self.bodies.remove(file)
            raise
        for name in [*files.values(), *([replaced] if replaced else [])]:
            self.bodies.remove(name)
        self._notify(change)
        return dataclasses.replace(stored, sequencer=sequencer)

    # --- internals --------------------------------------------------------------------------------
    def _store(
        self, stored: StoredObject, event: str, condition: Callable[[StoredObject | None], None] | None = None
    ) -> StoredObject:
        try:
            with self._write() as conn:
                self._bucket(conn, stored.bucket)
                if condition is not None:
                    condition(self._current(conn, stored.bucket, stored.key))
                replaced, sequencer = self._upsert(conn, stored)
                change = self._outbox(
                    conn, ObjectChange(event, stored.bucket, stored.key, stored.size, stored.etag, sequencer)
                )
        except BaseException:
            self.bodies.remove(stored.file)
            raise
        if replaced:
            self.bodies.remove(replaced)
        self._notify(change)
        return dataclasses.replace(stored, sequencer=sequencer)

    def _upsert(self, conn: sqlite3.Connection, stored: StoredObject) -> tuple[str | None, str]:
        """Write ``stored``'s row; the body file it replaced (if any) and its sequencer."""
        old = conn.execute(
            "SELECT file FROM objects WHERE bucket = ? AND key = ?", (stored.bucket, stored.key)
        ).fetchone()
        sequencer = self._next_sequencer()
        conn.execute(
            f"INSERT OR REPLACE INTO objects ({_OBJECT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                stored.bucket,
                stored.key,
                stored.file,
                stored.size,
                stored.etag,
                stored.modified,
                json.dumps(stored.headers),
                json.dumps(stored.metadata),
                json.dumps(stored.checksums),
                sequencer,
            ),
        )
        return (old[0] if old else None), sequencer

    def _next_sequencer(self) -> str:
        """S3's ``sequencer``: increasing hex, comparable between events of one key (called under the lock)."""
        self._last_sequence = max(self._last_sequence + 1, time.time_ns())
        return f"{self._last_sequence:018X}"

    def _outbox(self, conn: sqlite3.Connection, change: ObjectChange) -> ObjectChange:
        """``change`` with who caused it, and with its outbox row when a configuration of its bucket
        wants it (written in the caller's transaction)."""
        change = dataclasses.replace(change, caller=notifications.CALLER.get())
        configs = notifications.from_json(self._notifications.get(change.bucket, "[]"))
        if not any(config.matches(change.event, change.key) for config in configs):
            return change
        cursor = conn.execute("INSERT INTO notification_outbox (change) VALUES (?)", (_change_json(change),))
        return dataclasses.replace(change, outbox_id=cursor.lastrowid)

    def pending_notifications(self) -> list[ObjectChange]:
        """Outbox rows not acknowledged yet (a crash came between their commit and their delivery)."""
        with self._read() as conn:
            rows = conn.execute("SELECT id, change FROM notification_outbox ORDER BY id").fetchall()
        return [_change_of(row_id, raw) for row_id, raw in rows]

    def ack_notification(self, outbox_id: int) -> None:
        """The notification of outbox row ``outbox_id`` was handed on (or given up on)."""
        with self._write() as conn:
            conn.execute("DELETE FROM notification_outbox WHERE id = ?", (outbox_id,))

    def _notify(self, change: ObjectChange) -> None:
        for listener in self._listeners:
            listener(change)

    def _bucket(self, conn: sqlite3.Connection, name: str) -> Bucket:
        row = conn.execute("SELECT name, region, created FROM buckets WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NoSuchBucket(BucketName=name)
        return Bucket(*row)

    def _object(self, conn: sqlite3.Connection, bucket: str, key: str) -> StoredObject:
        row = conn.execute(
            f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
        ).fetchone()
        if row is None:
            self._bucket(conn, bucket)
            raise NoSuchKey(Key=key)
        return _object_of(row)

    def _current(self, conn: sqlite3.Connection, bucket: str, key: str) -> StoredObject | None:
        try:
            return self._object(conn, bucket, key)
        except NoSuchKey:
            return None

    def _upload(self, bucket: str, key: str, upload_id: str) -> Upload:
        with self._read() as conn:
            return self._upload_in(conn, bucket, key, upload_id)

    def _upload_in(self, conn: sqlite3.Connection, bucket: str, key: str, upload_id: str) -> Upload:
        row = conn.execute(
            "SELECT upload_id, bucket, key, initiated, headers, metadata FROM uploads WHERE upload_id = ?",
            (upload_id,),
        ).fetchone()
        if row is None or row[1] != bucket or row[2] != key:
            self._bucket(conn, bucket)
            raise NoSuchUpload(UploadId=upload_id)
        return _upload_of(row)

    def _remove_orphans(self) -> None:
        """Bodies a crash left stored but never committed to metadata."""
        with self._read() as conn:
            referenced = {row[0] for row in conn.execute("SELECT file FROM objects UNION SELECT file FROM parts")}
        for name in self.bodies.names() - referenced:
            self.bodies.remove(name)

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"The bucket store failed: {exc}") from exc

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._conn, self._lock, "Bucket store")


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
