"""The shared opener of Squall's small durable SQLite stores."""

import stat
from pathlib import Path

import pytest

from squall.errors import StoreUnavailable
from squall.stores.sqlite_file import open_durable


def test_durable_settings_mode_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "small.db"
    conn = open_durable(path, ["CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)"], "test store")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    conn.execute("INSERT INTO t VALUES ('a')")
    conn.close()
    again = open_durable(path, ["CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)"], "test store")
    assert again.execute("SELECT k FROM t").fetchall() == [("a",)]
    again.close()


def test_errors_are_translated(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="Cannot open the test store"):
        open_durable(tmp_path / "missing-dir" / "x.db", [], "test store")
    with pytest.raises(StoreUnavailable):
        open_durable(tmp_path / "bad.db", ["NOT SQL"], "test store")
