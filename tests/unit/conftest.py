"""Fixtures shared by unit tests: stream, queue, bucket and topic services on every store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit import queue_stores
from tests.unit.bucket_stores import BACKENDS as BUCKET_BACKENDS
from tests.unit.bucket_stores import BucketServices
from tests.unit.queue_stores import QueueServices
from tests.unit.stream_stores import BACKENDS, StreamServices
from tests.unit.topic_stores import BACKENDS as TOPIC_BACKENDS
from tests.unit.topic_stores import TopicServices


@pytest.fixture(params=sorted(BACKENDS))
def stream_services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StreamServices]:
    """Stream services on SQLite and on PostgreSQL (each test in a scratch schema of its own)."""
    with BACKENDS[request.param](tmp_path) as make_store:
        services = StreamServices(request.param, make_store)
        try:
            yield services
        finally:
            services.close_all()


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


@pytest.fixture(params=sorted(TOPIC_BACKENDS))
def topic_services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TopicServices]:
    """Topic services on SQLite and on PostgreSQL (each test in a scratch schema of its own)."""
    with TOPIC_BACKENDS[request.param](tmp_path) as make_store:
        services = TopicServices(request.param, make_store)
        try:
            yield services
        finally:
            services.close_all()
