"""A data service on each store backend, for the services' tests (streams, tables).

A backend, given a scratch directory, yields a function that makes a *new* store on one storage each
time (a SQLite file, or a scratch PostgreSQL schema dropped after the test), so that a test can
reopen a store to check durability, or run two services on one store as two servers would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable

ACCOUNT, REGION = "000000000000", "us-east-1"

Store = TypeVar("Store")


class Closable(Protocol):
    def close(self) -> None: ...


Service = TypeVar("Service", bound=Closable)
#: Given a scratch directory: a function making a store (a path for SQLite) on one storage.
Backend = Callable[[Path], AbstractContextManager[Callable[[], Path | Store]]]


def backends(filename: str, postgres: Callable[[str, str], Store]) -> dict[str, Backend[Store]]:
    """SQLite files named ``filename``, and ``postgres(dsn, schema)`` stores in a scratch schema."""

    @contextmanager
    def sqlite(tmp_path: Path) -> Iterator[Callable[[], Path | Store]]:
        yield lambda: tmp_path / filename

    @contextmanager
    def on_postgres(tmp_path: Path) -> Iterator[Callable[[], Path | Store]]:
        with scratch_schema(unavailable) as schema:
            yield lambda: postgres(postgres_dsn(), schema)

    return {"sqlite": sqlite, "postgres": on_postgres}


@dataclass
class Services(Generic[Store, Service]):
    """Services opened on one backend's storage, closed together at the end of the test."""

    backend: str
    make_store: Callable[[], Path | Store]
    opened: list[Service] = field(default_factory=list)

    def keep(self, service: Service) -> Service:
        self.opened.append(service)
        return service

    def close_all(self) -> None:
        for service in self.opened:
            service.close()
