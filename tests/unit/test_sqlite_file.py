"""The shared opener of Squall's small durable SQLite stores."""

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from squall.errors import StoreUnavailable
from squall.stores.sqlite_file import open_durable, write_transaction


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


SCHEMA = ["CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)"]


def test_a_non_durable_transaction_skips_the_fsync_and_restores_it(tmp_path: Path) -> None:
    conn = open_durable(tmp_path / "small.db", SCHEMA, "test store")
    with write_transaction(conn, None, "Test store", durable=False) as tx:
        assert tx.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: no fsync at commit
        tx.execute("INSERT INTO t VALUES ('a')")
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    with pytest.raises(KeyError), write_transaction(conn, None, "Test store", durable=False) as tx:
        tx.execute("INSERT INTO t VALUES ('b')")
        raise KeyError("rolled back")
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert conn.execute("SELECT k FROM t").fetchall() == [("a",)]


def test_a_non_durable_commit_survives_the_process_being_killed(tmp_path: Path) -> None:
    path = tmp_path / "small.db"
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from squall.stores.sqlite_file import open_durable, write_transaction\n"
        f"conn = open_durable(Path({str(path)!r}), {SCHEMA!r}, 'test store')\n"
        "with write_transaction(conn, None, 'Test store', durable=False) as tx:\n"
        "    tx.execute(\"INSERT INTO t VALUES ('kept')\")\n"
        "os.kill(os.getpid(), 9)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == -9, result.stderr
    conn = open_durable(path, SCHEMA, "test store")
    assert conn.execute("SELECT k FROM t").fetchall() == [("kept",)]
