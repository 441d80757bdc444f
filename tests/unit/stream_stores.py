"""Stream services on each store backend, for the stream service's tests.

``StreamServices.open()`` opens a *new* service on one backend's storage each time (a SQLite file,
or a scratch PostgreSQL schema dropped after the test), so that a test can reopen a store to check
durability, or run two services on one store as two servers would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from squall.services.streams.service import StreamService
from squall.services.streams.store import StreamStore
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable

ACCOUNT, REGION = "000000000000", "us-east-1"


@contextmanager
def _sqlite(tmp_path: Path) -> Iterator[Callable[[], Path | StreamStore]]:
    yield lambda: tmp_path / "streams.db"


@contextmanager
def _postgres(tmp_path: Path) -> Iterator[Callable[[], Path | StreamStore]]:
    from squall.services.streams.postgres import PostgresStreamStore

    with scratch_schema(unavailable) as schema:
        yield lambda: PostgresStreamStore(postgres_dsn(), schema)


#: Each backend makes new stores on one scratch storage.
BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Callable[[], Path | StreamStore]]]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@dataclass
class StreamServices:
    """Opens stream services on one backend's storage; closes them all at the end of the test."""

    backend: str
    make_store: Callable[[], Path | StreamStore]
    opened: list[StreamService] = field(default_factory=list)

    def open(self, iterator_key: bytes | None = None) -> StreamService:
        service = StreamService(self.make_store(), ACCOUNT, REGION, iterator_key=iterator_key)
        self.opened.append(service)
        return service

    def close_all(self) -> None:
        for service in self.opened:
            service.close()
