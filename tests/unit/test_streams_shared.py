"""Two stream services on one store, as two servers on one PostgreSQL (or one data directory) have:
puts from both to one stream get unique sequence numbers, increasing per shard; nothing is lost;
each sees the other's records, and a reader never skips a record committed behind its position."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest

from squall.services.streams.service import StreamService
from tests.unit.stream_stores import StreamServices

THREADS_PER_SERVER = 3
PUTS_PER_THREAD = 30
RECORDS_PER_PUT = 20
SHARDS = 4


def test_two_servers_putting_to_one_stream_lose_nothing_and_keep_order(stream_services: StreamServices) -> None:
    a, b = stream_services.open(), stream_services.open()
    a.create_stream("s", SHARDS, "PROVISIONED", {})
    shard_ids = [s.shard_id for s in b.shards("s")]
    placed: list[tuple[str, int, bytes]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    done = threading.Event()

    def producer(service: StreamService, tag: str) -> None:
        try:
            for call in range(PUTS_PER_THREAD):
                data = [f"{tag}-{call}-{j}".encode() for j in range(RECORDS_PER_PUT)]
                result = service.put("s", [(d.decode(), d, None) for d in data])
                counters = [counter for _, counter in result]
                assert counters == list(range(counters[0], counters[0] + RECORDS_PER_PUT))  # contiguous per put
                with lock:
                    placed.extend((shard, counter, d) for (shard, counter), d in zip(result, data, strict=True))
        except BaseException as exc:
            errors.append(exc)

    # A poller on b reads while both servers put: it must never find a record behind its position.
    seen: dict[str, list[tuple[int, bytes]]] = defaultdict(list)

    def reader() -> None:
        try:
            positions = dict.fromkeys(shard_ids, 0)
            while True:
                finished = done.is_set()  # taken before the pass, so the last pass sees every commit
                for shard_id in shard_ids:
                    records, _ = b.read("s", shard_id, positions[shard_id], 500)
                    assert all(r.seq >= positions[shard_id] for r in records)
                    seen[shard_id] += [(r.seq, r.data) for r in records]
                    if records:
                        positions[shard_id] = records[-1].seq + 1
                if finished:
                    return
        except BaseException as exc:
            errors.append(exc)

    producers = [
        threading.Thread(target=producer, args=(service, f"{name}{n}"))
        for name, service in (("a", a), ("b", b))
        for n in range(THREADS_PER_SERVER)
    ]
    polling = threading.Thread(target=reader)
    polling.start()
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join(timeout=60)
        assert not thread.is_alive()
    done.set()
    polling.join(timeout=60)
    assert not polling.is_alive() and errors == []

    total = 2 * THREADS_PER_SERVER * PUTS_PER_THREAD * RECORDS_PER_PUT
    assert sorted(counter for _, counter, _ in placed) == list(range(1, total + 1))  # unique, no gaps
    assert a.latest_counter("s") == b.latest_counter("s") == total
    for shard_id in shard_ids:
        expected = sorted((counter, data) for shard, counter, data in placed if shard == shard_id)
        assert seen[shard_id] == expected  # increasing, and the live reader skipped nothing
        for service in (a, b):  # each server reads every record, whoever put it
            stored = service.read("s", shard_id, 0, total)[0]
            assert [(r.seq, r.data) for r in stored] == expected


def test_a_put_on_one_server_wakes_the_other_servers_listeners(stream_services: StreamServices) -> None:
    if stream_services.backend == "sqlite":
        pytest.skip("an embedded store has one server: puts wake only its own listeners")
    a, b = stream_services.open(), stream_services.open()
    a.create_stream("s", 1, "PROVISIONED", {})
    heard: list[str] = []
    b.add_listener(heard.append)
    deadline = time.monotonic() + 30
    # The listening connection may start after the first put: put until b hears one.
    while "s" not in heard:
        assert time.monotonic() < deadline, "b never heard of a's puts"
        a.put("s", [("k", b"x", None)])
        time.sleep(0.05)
    assert set(heard) == {"s"}
