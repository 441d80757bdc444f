"""Several Squall servers as one: a code store shared through PostgreSQL, two ``squall server --tier ray``
processes on one Ray cluster and one PostgreSQL schema, and the API endpoint sandboxes are given."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from squall.errors import StoreUnavailable
from squall.stores.code import CodeMissing, CodeStore
from tests.conftest import make_zip
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable

HANDLER = """
import json, os

def handler(event, context):
    return {"endpoint": os.environ["AWS_ENDPOINT_URL"], "event": event}
"""


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    with scratch_schema(unavailable) as name:
        yield name


# --- 1. the code store, shared through PostgreSQL -------------------------------------------------
def shared_code_store(root: Path, schema: str) -> CodeStore:
    from squall.stores.postgres_code import PostgresPackages

    return CodeStore(root, PostgresPackages.open(postgres_dsn(), schema))


def test_a_package_stored_through_one_code_store_is_read_and_unpacked_by_another(tmp_path: Path, schema: str) -> None:
    package = make_zip({"app.py": HANDLER, "lib/data.txt": "shared"})
    first = shared_code_store(tmp_path / "a", schema)
    second = shared_code_store(tmp_path / "b", schema)
    try:
        ref = first.put(package)
        assert not (tmp_path / "b" / f"{ref.hex}.zip").exists()
        assert second.has(ref.hex)
        assert second.size_of(ref.hex) == len(package)
        assert second.total_size() == first.total_size() == len(package)
        tree = second.unpacked(ref.hex)  # fetched into b's cache, then unpacked there
        assert tree == tmp_path / "b" / ref.hex
        assert (tree / "lib" / "data.txt").read_text() == "shared"
        assert (tmp_path / "b" / f"{ref.hex}.zip").read_bytes() == package
        assert second.get(ref.hex) == package
        # The same bytes through the other store: the ref again, nothing stored twice.
        assert second.put(package) == ref
        assert second.total_size() == len(package)
        missing = hashlib.sha256(b"never stored").hexdigest()
        assert not second.has(missing)
        with pytest.raises(CodeMissing):
            second.get(missing)
        with pytest.raises(CodeMissing):
            second.unpacked(missing)
    finally:
        first.close()
        second.close()


def test_a_shared_package_whose_bytes_do_not_match_their_digest_is_refused(tmp_path: Path, schema: str) -> None:
    import psycopg

    claimed = hashlib.sha256(b"the real package").hexdigest()
    store = shared_code_store(tmp_path / "c", schema)  # creates the schema's tables
    try:
        with psycopg.connect(postgres_dsn(), autocommit=True) as conn:
            conn.execute(
                f"INSERT INTO {schema}.code_packages (sha256, size, body) VALUES (%s, %s, %s)",
                (claimed, 5, b"other"),
            )
        with pytest.raises(StoreUnavailable, match="does not match its SHA-256"):
            store.get(claimed)
        assert not (tmp_path / "c" / f"{claimed}.zip").exists()
    finally:
        store.close()
