"""Topic services on each store backend, for the topic service's tests.

``TopicServices.open()`` opens a *new* service on one backend's storage each time (a SQLite file, or
a scratch PostgreSQL schema dropped after the test), so that a test can reopen a store, or run two
services on one store as two servers of a deployment do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from squall.services.topics.service import CLAIM_S, TopicService
from squall.services.topics.store import TopicStore
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable

ACCOUNT, REGION = "000000000000", "us-east-1"


@contextmanager
def _sqlite(tmp_path: Path) -> Iterator[Callable[[], Path | TopicStore]]:
    yield lambda: tmp_path / "topics.db"


@contextmanager
def _postgres(tmp_path: Path) -> Iterator[Callable[[], Path | TopicStore]]:
    from squall.services.topics.postgres import PostgresTopicStore

    with scratch_schema(unavailable) as schema:
        yield lambda: PostgresTopicStore(postgres_dsn(), f"{schema}_topics")


#: Each backend makes new stores on one scratch storage.
BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Callable[[], Path | TopicStore]]]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@dataclass
class TopicServices:
    """Opens topic services on one backend's storage; closes them all at the end of the test."""

    backend: str
    make_store: Callable[[], Path | TopicStore]
    opened: list[TopicService] = field(default_factory=list)

    def open(self, endpoint_url: str = "http://127.0.0.1:1", claim_s: float = CLAIM_S) -> TopicService:
        service = TopicService(self.make_store(), ACCOUNT, REGION, endpoint_url, claim_s)
        self.opened.append(service)
        return service

    def close_all(self) -> None:
        for service in self.opened:
            service.close()
