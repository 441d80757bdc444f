"""Bodies as chunks in PostgreSQL (the scale-out tier): a replaced body outlives its object for the
readers still streaming it, then goes; what a crash left unreferenced is swept."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from squall.services.buckets import postgres
from squall.services.buckets.postgres import ChunkBodies, postgres_bucket_database
from squall.services.buckets.service import BucketService
from tests.contract.postgres import dsn, scratch_schema
from tests.contract.test_metadata_store import unavailable


@pytest.fixture
def schema() -> Iterator[str]:
    with scratch_schema(unavailable) as name:
        yield name


def open_service(schema: str) -> BucketService:
    database = postgres_bucket_database(dsn(), schema)
    return BucketService(database, ChunkBodies(database), "us-east-1")


def bodies(service: BucketService) -> int:
    with service.db.read() as conn:
        return int(conn.execute("SELECT count(*) FROM bodies").fetchone()[0])


def test_a_replaced_body_is_kept_for_its_readers_then_swept(schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service = open_service(schema)
    try:
        assert isinstance(service.bodies, ChunkBodies)
        service.create_bucket("bkt")
        old = os.urandom(3 * postgres.CHUNK)
        for key in ("k", "slow"):
            service.put_object("bkt", key, old, {}, {})
        _, reader = service.open_object("bkt", "k")
        with reader:
            head = reader.read(postgres.CHUNK)
            service.put_object("bkt", "k", b"new", {}, {})
            service.delete_object("bkt", "k")
            assert service.bodies.sweep() == 0  # both in their grace
            assert head + reader.read() == old
        assert bodies(service) == 3  # "slow", and k's two in their grace

        monkeypatch.setattr(postgres, "READ_GRACE_S", -1.0)
        _, reader = service.open_object("bkt", "slow")
        with reader:
            head = reader.read(postgres.CHUNK)
            service.put_object("bkt", "slow", b"new", {}, {})  # the old body's grace is over at once
            assert service.bodies.sweep() == 1
            # Past its grace a slow reader is cut short: it ends early, and never reads other bytes.
            assert head == old[: postgres.CHUNK] and reader.read() == b""
    finally:
        service.close()


def test_a_body_whose_object_was_never_committed_is_swept(schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service = open_service(schema)
    service.create_bucket("bkt")
    service.put_object("bkt", "kept", b"kept", {}, {})
    monkeypatch.setattr(postgres, "WRITE_GRACE_S", -1.0)
    service.bodies.write(b"a server died before committing the object")
    service.close()
    reopened = open_service(schema)  # the next server to start sweeps it
    try:
        assert bodies(reopened) == 1
        _, body = reopened.open_object("bkt", "kept")
        with body:
            assert body.read() == b"kept"
    finally:
        reopened.close()
