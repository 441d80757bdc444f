"""Mapping stores on each backend: ``mapping_stores()`` opens a new ``MappingStore`` on one backend's
storage each time (a SQLite file, or a scratch PostgreSQL schema dropped after the test), so that a
test can reopen a store, or run two on one storage as two servers would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from squall.sources.mappings import MappingStore
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable

Opener = Callable[[], MappingStore]


@contextmanager
def _sqlite(tmp_path: Path) -> Iterator[Opener]:
    yield lambda: MappingStore(tmp_path / "mappings.db")


@contextmanager
def _postgres(tmp_path: Path) -> Iterator[Opener]:
    from squall.sources.mappings_postgres import postgres_mapping_database

    with scratch_schema(unavailable) as schema:
        yield lambda: MappingStore(postgres_mapping_database(postgres_dsn(), f"{schema}_mappings"))


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Opener]]] = {"sqlite": _sqlite, "postgres": _postgres}


@pytest.fixture(params=sorted(BACKENDS))
def mapping_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens mapping stores on one backend's storage; all are closed after the test."""
    opened: list[MappingStore] = []
    with BACKENDS[request.param](tmp_path) as make:

        def opener() -> MappingStore:
            opened.append(make())
            return opened[-1]

        yield opener
        for store in opened:
            store.close()
