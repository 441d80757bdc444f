"""Bucket services on each store backend, for the bucket service's tests.

``BucketServices.open()`` opens a *new* service on one backend's storage each time (a SQLite file
and an objects directory, or a scratch PostgreSQL schema dropped after the test), so that a test can
run two services on one store as two servers would, or reopen one after a "crash".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from squall.services.buckets.service import NOTIFICATION_CLAIM_S, BucketService
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable

REGION = "us-east-1"
#: The imports ``BucketServices.script`` needs.
PREAMBLE = (
    "from pathlib import Path\n"
    "from squall.services.buckets.service import BucketService\n"
    "from squall.services.buckets.postgres import ChunkBodies, postgres_bucket_database\n"
)
#: How to open a service on a backend's storage, with a notification claim time.
Opener = Callable[[float], BucketService]


@contextmanager
def _sqlite(tmp_path: Path) -> Iterator[tuple[Opener, str]]:
    # A script opening the same store in another process (see ``dying_writer``).
    script = f"BucketService(Path({str(tmp_path / 'buckets.db')!r}), Path({str(tmp_path / 'objects')!r}), {REGION!r})"
    yield (lambda claim_s: BucketService(tmp_path / "buckets.db", tmp_path / "objects", REGION, claim_s)), script


@contextmanager
def _postgres(tmp_path: Path) -> Iterator[tuple[Opener, str]]:
    from squall.services.buckets.postgres import ChunkBodies, postgres_bucket_database

    def opener(claim_s: float) -> BucketService:
        database = postgres_bucket_database(postgres_dsn(), schema)
        return BucketService(database, ChunkBodies(database), REGION, claim_s)

    with scratch_schema(unavailable) as schema:
        database = f"postgres_bucket_database({postgres_dsn()!r}, {schema!r})"
        yield opener, f"(lambda db: BucketService(db, ChunkBodies(db), {REGION!r}))({database})"


#: Each backend makes new services on one scratch storage.
BACKENDS: dict[str, Callable[[Path], AbstractContextManager[tuple[Opener, str]]]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@dataclass
class BucketServices:
    """Opens bucket services on one backend's storage; closes them all at the end of the test."""

    backend: str
    opener: Opener
    #: A Python expression that opens a service on the same storage (in another process), given
    #: ``PREAMBLE``'s imports.
    script: str
    opened: list[BucketService] = field(default_factory=list)

    def open(self, claim_s: float = NOTIFICATION_CLAIM_S) -> BucketService:
        service = self.opener(claim_s)
        self.opened.append(service)
        return service

    def close_all(self) -> None:
        for service in self.opened:
            service.close()
