"""Group commit in the stream service, on SQLite and on PostgreSQL: concurrent puts share one durable
transaction, each still gets its own contiguous sequence counters, and one put's refusal never fails
the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from squall.errors import StoreUnavailable
from squall.services.streams import shards
from squall.services.streams.errors import StreamNotFound
from squall.services.streams.service import StreamService
from squall.services.streams.store import SqliteStreamStore
from tests.unit.stream_stores import StreamServices


@pytest.fixture
def service(stream_services: StreamServices) -> StreamService:
    service = stream_services.open()
    service.create_stream("s", 4, "PROVISIONED", {})
    return service


def transactions(service: StreamService) -> Callable[[], int]:
    """How many transactions wrote the records written from now on: SQLite's COMMITs on the write
    connection; on PostgreSQL, the distinct transaction ids (``xmin``) of the rows of ``records``."""
    store = service.store
    if isinstance(store, SqliteStreamStore):
        seen: list[str] = []
        store._conn.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
        return lambda: len(seen)
    with store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0

    def count() -> int:
        with store.read() as conn:
            return int(conn.execute("SELECT COUNT(DISTINCT xmin::text) FROM records").fetchone()[0])

    return count


def run_queued(service: StreamService, calls: list[Callable[[], Any]]) -> list[Any]:
    """Start ``calls`` (puts) while the write lock is held, as during another put's commit, wait
    until all of them have queued, then let them go; their results or exceptions, in order."""
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with service._lock:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(service._waiting) < len(calls):
            assert time.monotonic() < deadline, "the puts did not queue"
            time.sleep(0.001)
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
    return results


def test_queued_puts_share_one_commit_and_keep_their_own_counters(service: StreamService) -> None:
    count = transactions(service)
    calls = [
        lambda i=i: service.put("s", [(f"k{i}-{j}", f"{i}-{j}".encode(), None) for j in range(3)]) for i in range(4)
    ]
    results = run_queued(service, calls)
    assert count() == 1
    counters = [[counter for _, counter in placed] for placed in results]
    assert all(c == list(range(c[0], c[0] + 3)) for c in counters)  # contiguous per put
    assert sorted(n for c in counters for n in c) == list(range(1, 13))  # unique, no gaps
    assert service.latest_counter("s") == 12
    for i, placed in enumerate(results):
        for j, (shard_id, counter) in enumerate(placed):
            record = service.read("s", shard_id, counter, 1)[0][0]
            assert (record.seq, record.partition_key, record.data) == (counter, f"k{i}-{j}", f"{i}-{j}".encode())
            assert shard_id == next(
                s.shard_id for s in service.shards("s") if s.start_key <= shards.hash_key(f"k{i}-{j}") <= s.end_key
            )


def test_a_put_to_a_missing_stream_fails_alone(service: StreamService) -> None:
    results = run_queued(
        service,
        [
            lambda: service.put("s", [("a", b"1", None)]),
            lambda: service.put("gone", [("b", b"2", None)]),
            lambda: service.put("s", [("c", b"3", None)]),
        ],
    )
    assert isinstance(results[1], StreamNotFound)
    assert results[1].message == "Stream gone under account 000000000000 not found."
    assert sorted(counter for placed in (results[0], results[2]) for _, counter in placed) == [1, 2]
    assert service.latest_counter("s") == 2


def test_a_store_failure_fails_every_put_of_the_group(service: StreamService) -> None:
    with service.store.write() as conn:
        conn.execute("DROP TABLE records")  # every put now fails in the driver
    results = run_queued(service, [lambda: service.put("s", [("a", b"1", None)]) for _ in range(2)])
    assert all(isinstance(r, StoreUnavailable) and r.message.startswith("Stream store failure") for r in results)
    assert all(isinstance(r.__cause__, StoreUnavailable) for r in results)
    assert service.latest_counter("s") == 0  # nothing of theirs was committed


def test_many_threads_putting_at_once_lose_nothing(service: StreamService) -> None:
    placed: list[list[tuple[str, int]]] = []
    lock = threading.Lock()

    def producer(n: int) -> None:
        for call in range(20):
            result = service.put("s", [(f"{n}-{call}-{j}", b"x", None) for j in range(5)])
            with lock:
                placed.append(result)

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    counters = sorted(counter for result in placed for _, counter in result)
    assert counters == list(range(1, 6 * 20 * 5 + 1))
    stored = sum(len(service.read("s", s.shard_id, 0, 10_000)[0]) for s in service.shards("s"))
    assert stored == 600
