"""``drop_deployment`` removes a deployment's schema and the schemas named after it, and no other."""

from __future__ import annotations

import uuid

import pytest

from squall.stores.postgres import drop_deployment
from tests.contract.postgres import dsn, scratch_schema


def test_drops_the_schema_and_its_namesakes_only() -> None:
    psycopg = pytest.importorskip("psycopg")
    with scratch_schema(pytest.skip) as schema:
        neighbour = f"{schema}x"  # shares the prefix but not the ``_``: another deployment's
        with psycopg.connect(dsn(), autocommit=True) as conn:
            for name in (schema, f"{schema}_streams", f"{schema}_mappings", neighbour):
                conn.execute(f"CREATE SCHEMA {name}")
            try:
                assert sorted(drop_deployment(dsn(), schema)) == sorted(
                    [schema, f"{schema}_streams", f"{schema}_mappings"]
                )
                left = conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (schema,)
                ).fetchall()
                assert left == [(neighbour,)]
            finally:
                conn.execute(f"DROP SCHEMA IF EXISTS {neighbour}")


def test_refuses_a_name_that_is_not_a_plain_schema() -> None:
    with pytest.raises(ValueError, match="not a plain lower-case PostgreSQL schema name"):
        drop_deployment(dsn(), f"x; DROP TABLE y {uuid.uuid4().hex}")
