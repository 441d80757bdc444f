"""Queue services on each store backend, for the queue service's tests.

``QueueServices.open()`` opens a *new* service on one backend's storage each time (a SQLite file, or
a scratch PostgreSQL schema dropped after the test), so that a test can reopen a store to check
durability, or run two services on one store as two servers would. The lease store of the same
backend (``leases()``) lets two queue mapping supervisors share their mappings the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from squall.services.queues.service import QueueService
from squall.services.queues.store import QueueStore
from squall.sources.mappings import MappingStore
from squall.stores.base import LeaseStore
from squall.stores.leases import SqliteLeaseStore
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable

ACCOUNT, REGION = "000000000000", "us-east-1"


@dataclass(frozen=True)
class Storage:
    """How one backend opens each store on its scratch storage."""

    queues: Callable[[], Path | QueueStore]
    mappings: Callable[[], MappingStore]
    leases: Callable[[], LeaseStore]
    #: The deployment's PostgreSQL schema (``--postgres-schema``); None for SQLite.
    schema: str | None = None


@contextmanager
def _sqlite(tmp_path: Path) -> Iterator[Storage]:
    yield Storage(
        lambda: tmp_path / "queues.db",
        lambda: MappingStore(tmp_path / "mappings.db"),
        lambda: SqliteLeaseStore(tmp_path / "leases.db"),
    )


@contextmanager
def _postgres(tmp_path: Path) -> Iterator[Storage]:
    from squall.services.queues.postgres import PostgresQueueStore
    from squall.sources.mappings_postgres import postgres_mapping_database
    from squall.stores.postgres import PostgresLeaseStore

    with scratch_schema(unavailable) as schema:
        yield Storage(
            lambda: PostgresQueueStore(postgres_dsn(), f"{schema}_queues"),
            lambda: MappingStore(postgres_mapping_database(postgres_dsn(), f"{schema}_mappings")),
            lambda: PostgresLeaseStore(postgres_dsn(), schema),
            schema,
        )


#: Each backend opens new stores on one scratch storage.
BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Storage]]] = {"sqlite": _sqlite, "postgres": _postgres}


@dataclass
class QueueServices:
    """Opens queue services (and mapping and lease stores) on one backend's storage; closes them all
    at the end of the test."""

    backend: str
    storage: Storage
    opened: list[QueueService | MappingStore | LeaseStore] = field(default_factory=list)

    def open(self) -> QueueService:
        service = QueueService(self.storage.queues(), ACCOUNT, REGION)
        self.opened.append(service)
        return service

    def mappings(self) -> MappingStore:
        store = self.storage.mappings()
        self.opened.append(store)
        return store

    def leases(self) -> LeaseStore:
        store = self.storage.leases()
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for opened in reversed(self.opened):
            opened.close()
