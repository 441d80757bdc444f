"""Fixtures shared by unit tests: stream and table services on every store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.service_stores import Backend, Services
from tests.unit.stream_stores import BACKENDS, StreamServices
from tests.unit.table_stores import TABLE_BACKENDS, TableServices


def _services(
    kind: type[Services[Any, Any]], backends: dict[str, Backend[Any]], backend: str, tmp_path: Path
) -> Iterator[Any]:
    with backends[backend](tmp_path) as make_store:
        services = kind(backend, make_store)
        try:
            yield services
        finally:
            services.close_all()


@pytest.fixture(params=sorted(BACKENDS))
def stream_services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StreamServices]:
    """Stream services on SQLite and on PostgreSQL (each test in a scratch schema of its own)."""
    yield from _services(StreamServices, BACKENDS, request.param, tmp_path)


@pytest.fixture(params=sorted(TABLE_BACKENDS))
def table_services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TableServices]:
    """Table services on SQLite and on PostgreSQL (each test in a scratch schema of its own)."""
    yield from _services(TableServices, TABLE_BACKENDS, request.param, tmp_path)
