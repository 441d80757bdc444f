"""Fixtures shared by unit tests: stream, table, topic, queue and bucket services on every store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit import queue_stores
from tests.unit.bucket_stores import BACKENDS as BUCKET_BACKENDS
from tests.unit.bucket_stores import BucketServices
from tests.unit.queue_stores import QueueServices
from tests.unit.service_stores import Backend, Services
from tests.unit.stream_stores import BACKENDS, StreamServices
from tests.unit.table_stores import TABLE_BACKENDS, TableServices
from tests.unit.topic_stores import BACKENDS as TOPIC_BACKENDS
from tests.unit.topic_stores import TopicServices


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


@pytest.fixture(params=sorted(TOPIC_BACKENDS))
def topic_services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TopicServices]:
    """Topic services on SQLite and on PostgreSQL (each test in a scratch schema of its own)."""
    yield from _services(TopicServices, TOPIC_BACKENDS, request.param, tmp_path)


@pytest.fixture(params=sorted(queue_stores.BACKENDS))
def queue_services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QueueServices]:
    """Queue services on SQLite and on PostgreSQL (each test in a scratch schema of its own)."""
    with queue_stores.BACKENDS[request.param](tmp_path) as storage:
        services = QueueServices(request.param, storage)
        try:
            yield services
        finally:
            services.close_all()


@pytest.fixture(params=sorted(BUCKET_BACKENDS))
def bucket_services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BucketServices]:
    """Bucket services on SQLite and on PostgreSQL (each test in a scratch schema of its own)."""
    with BUCKET_BACKENDS[request.param](tmp_path) as (opener, script):
        services = BucketServices(request.param, opener, script)
        try:
            yield services
        finally:
            services.close_all()
