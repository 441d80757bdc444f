"""A scratch PostgreSQL schema per test, for the contract suites' PostgreSQL backends.

The server is ``SQUALL_TEST_POSTGRES_DSN`` or, by default, the local one this machine runs
(``postgresql://postgres@127.0.0.1:5432/test``, trust auth). When it does not answer, the backend is
unavailable: skipped on a workstation, a failure in CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def dsn() -> str:
    return os.environ.get("SQUALL_TEST_POSTGRES_DSN", DEFAULT_DSN)


@contextmanager
def scratch_schema(unavailable: Callable[[str], NoReturn]) -> Iterator[str]:
    """A fresh schema name, dropped (with everything in it) afterwards, together with the schemas
    named after it (the stream service's ``<schema>_streams``)."""
    try:
        import psycopg
    except ImportError:
        unavailable("psycopg is not installed")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(dsn(), autocommit=True, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        unavailable(f"PostgreSQL at {dsn()} does not answer: {exc}")
    try:
        yield schema
    finally:
        from squall.stores.postgres import drop_deployment

        drop_deployment(dsn(), schema)
