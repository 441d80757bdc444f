"""Table services on each store backend, for the table service's tests.

``TableServices.open()`` opens a *new* service on one backend's storage each time (a SQLite file, or
a scratch PostgreSQL schema dropped after the test), so that a test can reopen a store to check
durability, or run two services on one store as two servers would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from squall.services.tables.service import TableService
from squall.services.tables.store import TableStore
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable

ACCOUNT, REGION = "000000000000", "us-east-1"


@contextmanager
def _sqlite(tmp_path: Path) -> Iterator[Callable[[], Path | TableStore]]:
    yield lambda: tmp_path / "tables.db"


@contextmanager
def _postgres(tmp_path: Path) -> Iterator[Callable[[], Path | TableStore]]:
    from squall.services.tables.postgres import PostgresTableStore

    with scratch_schema(unavailable) as schema:
        yield lambda: PostgresTableStore(postgres_dsn(), schema)


#: Each backend makes new stores on one scratch storage.
TABLE_BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Callable[[], Path | TableStore]]]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@dataclass
class TableServices:
    """Opens table services on one backend's storage; closes them all at the end of the test."""

    backend: str
    make_store: Callable[[], Path | TableStore]
    opened: list[TableService] = field(default_factory=list)

    def open(self, expiry_interval: float = 3600) -> TableService:
        """A service whose expiry sweep does not run by itself (tests call ``expire`` and ``trim``)."""
        service = TableService(self.make_store(), ACCOUNT, REGION, expiry_interval=expiry_interval)
        self.opened.append(service)
        return service

    def close_all(self) -> None:
        for service in self.opened:
            service.close()
