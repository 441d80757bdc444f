"""Where the bucket service keeps its rows and bodies: the bucket tables on the shared SQL seam, and
the ``Bodies`` an object's bytes live in.

The service writes its SQL once, with ``?`` placeholders, against ``squall.stores.sql``'s
``Connection``. Metadata (buckets, objects, uploads, parts, notification configurations and the
outbox) is in a ``SqlDatabase``: a SQLite file in the embedded tier, with bodies as files
(``files.BodyStore``); in the scale-out tier a PostgreSQL schema shared by every server, with bodies
as chunks in the same schema (``postgres.py``).

A body is written first, under a new name, and stays invisible until a metadata transaction points
a row at it (``Bodies.adopt`` runs in that transaction); once a commit stops pointing at it the
service calls ``Bodies.remove``. ``Bodies.recover`` cleans what a crash left between the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO, Protocol

from squall.stores.sql import ColumnTypes, Connection, SqlDatabase


def schema(types: ColumnTypes) -> list[str]:
    """The bucket tables in a dialect. Never change a statement a release has shipped: SQLite files
    and PostgreSQL schemas in the field were made with them (add a PostgreSQL migration instead)."""
    t = types
    return [
        f"CREATE TABLE IF NOT EXISTS buckets (name {t.name} PRIMARY KEY, region TEXT NOT NULL,"
        f" created {t.real} NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS objects (
        bucket {t.name} NOT NULL, key {t.name} NOT NULL, file TEXT NOT NULL, size {t.int64} NOT NULL,
        etag TEXT NOT NULL,
        modified {t.real} NOT NULL, headers TEXT NOT NULL, metadata TEXT NOT NULL, checksums TEXT NOT NULL,
        sequencer TEXT NOT NULL, PRIMARY KEY (bucket, key))""",
        f"""CREATE TABLE IF NOT EXISTS uploads (
        upload_id TEXT PRIMARY KEY, bucket {t.name} NOT NULL, key {t.name} NOT NULL, initiated {t.real} NOT NULL,
        headers TEXT NOT NULL, metadata TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, initiated)",
        f"""CREATE TABLE IF NOT EXISTS parts (
        upload_id TEXT NOT NULL, number INTEGER NOT NULL, file TEXT NOT NULL, size {t.int64} NOT NULL,
        etag TEXT NOT NULL, modified {t.real} NOT NULL, PRIMARY KEY (upload_id, number))""",
        # A bucket's notification configuration (``notifications.to_json``); removed with the bucket.
        f"CREATE TABLE IF NOT EXISTS notifications (bucket {t.name} PRIMARY KEY, config TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS notification_outbox (id {t.serial}, change TEXT NOT NULL)",
        # Who delivers an outbox row (``sources.owner`` id) and until when; a row without one is free.
        f"""CREATE TABLE IF NOT EXISTS notification_claims (
        id {t.int64} PRIMARY KEY, owner TEXT NOT NULL, until {t.real} NOT NULL)""",
    ]


class Bodies(Protocol):
    """Where object and part bodies are stored, each under a name of its own (see the module docstring)."""

    def write(self, data: bytes) -> str:
        """Store ``data`` durably under a new name, returned."""

    def copy(self, name: str) -> str:
        """A new body with the bytes of ``name`` (CopyObject); FileNotFoundError if it is gone."""

    def concatenate(self, names: Iterable[str]) -> str:
        """A new body made of the bodies ``names``, in order (assembling a multipart upload)."""

    def open(self, name: str) -> BinaryIO:
        """The body for reading (and seeking); FileNotFoundError if it is gone."""

    def adopt(self, conn: Connection, name: str) -> None:
        """Inside the metadata transaction whose row points at ``name``: the body is referenced now."""

    def remove(self, name: str) -> None:
        """After the commit that stopped pointing at ``name``: gone once no reader can need it."""

    def discard(self, name: str) -> None:
        """A body no commit ever pointed at (its write failed or lost a race): gone at once."""

    def recover(self, db: SqlDatabase) -> None:
        """At start: drop bodies a crash left stored but never (or no longer) referenced."""
