"""One way to open a durable SQLite file for a small store of Squall's own (streams, mappings,
layers, policies, event invoke configs, IAM roles): created 0600, WAL, ``synchronous=FULL``, a busy
timeout, its schema applied, and driver errors translated at this edge; one way to write to it,
``write_transaction``; and one way to write many rows, ``insert_rows``."""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from squall.errors import StoreUnavailable


def open_durable(path: Path, schema: Sequence[str], what: str) -> sqlite3.Connection:
    """A connection in autocommit mode (callers run their own ``BEGIN IMMEDIATE`` where they need one),
    shareable between threads behind the caller's lock; StoreUnavailable if it cannot be opened."""
    try:
        if not path.exists():
            # Created 0600 before SQLite sees it. Only when missing: opening and closing another fd on a
            # file this process already has open in SQLite would drop the process's POSIX locks on it.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 10000")
        for statement in schema:
            conn.execute(statement)
    except (OSError, sqlite3.Error) as exc:
        raise StoreUnavailable(f"Cannot open the {what} {path}: {exc}") from exc
    return conn


@contextlib.contextmanager
def write_transaction(
    conn: sqlite3.Connection, lock: threading.Lock | None, what: str, durable: bool = True
) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` ... ``COMMIT`` on ``conn`` under ``lock`` (None: the caller holds it).

    Whatever the body raises rolls the transaction back and propagates; driver errors, there or at
    commit, become StoreUnavailable("<what> failure: ..."). ``durable=False`` commits without waiting
    for the disk (WAL with ``synchronous=NORMAL``): a crash of the process loses nothing, a power loss
    may lose the last such commits (never corrupting the file), and the next durable commit makes
    them durable too. Only for changes whose loss merely repeats work, such as a queue receive.
    """
    with lock if lock is not None else contextlib.nullcontext():
        if not durable:
            conn.execute("PRAGMA synchronous = NORMAL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreUnavailable(f"{what} failure: {exc}") from exc
        finally:
            if not durable:
                conn.execute("PRAGMA synchronous = FULL")


#: Rows per INSERT statement at most.
MAX_ROWS_PER_INSERT = 500


def insert_rows(conn: Any, insert: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run ``insert`` (``INSERT INTO t (...) VALUES``) for ``rows`` in as few multi-row statements as
    SQLite's parameter limit allows (32,766 since SQLite 3.32, 999 before).

    Not ``executemany``: Python's sqlite3 lets go of the GIL around every step of a statement, so
    ``executemany`` hands the GIL to the server's other threads once per row, and while the event loop
    is busy each hand-over is a thread switch (end to end on a stream: a third of the server's time).
    """
    if not rows:
        return
    width = len(rows[0])
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    step = max(1, min(MAX_ROWS_PER_INSERT, limit // width))
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        conn.execute(_multi_row(insert, width, len(chunk)), [value for row in chunk for value in row])


@functools.lru_cache(maxsize=128)
def _multi_row(insert: str, width: int, rows: int) -> str:
    values = "(" + ", ".join("?" * width) + ")"
    return f"{insert} " + ", ".join([values] * rows)
