"""Group commit in the stream service: concurrent puts share one durable transaction, each still gets
its own contiguous sequence counters, and one put's refusal never fails the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from squall.errors import StoreUnavailable
from squall.services.streams import shards
from squall.services.streams.errors import StreamNotFound
from squall.services.streams.service import StreamService


@pytest.fixture
def service(tmp_path: Path) -> Iterator[StreamService]:
    service = StreamService(tmp_path / "s.db", "000000000000", "us-east-1")
    service.create_stream("s", 4, "PROVISIONED", {})
    yield service
    service.close()


def commits(service: StreamService) -> list[str]:
    """Every COMMIT the service's write connection runs from now on."""
    seen: list[str] = []
    service._conn.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
    return seen


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
    seen = commits(service)
    calls = [
        lambda i=i: service.put("s", [(f"k{i}-{j}", f"{i}-{j}".encode(), None) for j in range(3)]) for i in range(4)
    ]
    results = run_queued(service, calls)
    assert seen == ["COMMIT"]
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


def test_a_store_failure_fails_every_put_of_the_group(tmp_path: Path) -> None:
    service = StreamService(tmp_path / "s.db", "000000000000", "us-east-1")
    service.create_stream("s", 1, "PROVISIONED", {})
    service._conn.close()  # every statement now fails in the driver
    results = run_queued(service, [lambda: service.put("s", [("a", b"1", None)]) for _ in range(2)])
    assert all(isinstance(r, StoreUnavailable) and r.message.startswith("Stream store failure") for r in results)
    service.close()


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
