"""Two servers' queue mapping supervisors on one store: one server at a time polls a mapping (the
holder of its lease), so MaximumConcurrency holds for both; when the holder stops dead, the other
takes the mapping over once the lease expires and delivers the rest, including what the dead one had
received and never deleted (after its visibility timeout)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from squall.runtime.bootstrap import batch_events
from squall.services.queues.models import Counts
from squall.sources.mappings import EventSourceMapping
from squall.sources.queues import QueueMappings, lease_name
from tests.unit.queue_stores import ACCOUNT, QueueServices
from tests.unit.test_queues_shared import message

LEASE_TTL_S = 1.5
MESSAGES = 300
CONCURRENCY = 2
BATCH = 5


class Deliveries:
    """What each server's function was invoked with, and its most invocations at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bodies: list[tuple[str, str, float]] = []  # server, body, when
        self.running: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    def by(self, server: str) -> list[str]:
        with self.lock:
            return [body for name, body, _ in self.bodies if name == server]

    def distinct(self) -> int:
        with self.lock:
            return len({body for _, body, _ in self.bodies})


class Server:
    """One server's ``QueueMappings`` on an event loop of its own, with stores of its own."""

    def __init__(self, name: str, services: QueueServices, deliveries: Deliveries) -> None:
        self.name = name
        self.deliveries = deliveries
        self.queues = services.open()
        self.mappings = QueueMappings(
            services.mappings(),
            self.queues,
            self.invoke,
            self.function_timeout,
            services.leases(),
            owner=f"{name}.example/1/1",  # another host's process: its lease only expires
            lease_ttl_s=LEASE_TTL_S,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.frozen = False

    async def invoke(self, mapping: EventSourceMapping, payload: bytes, shape: Any) -> tuple[str | None, bytes, str]:
        records = batch_events.event_of(shape, payload)["Records"]
        d = self.deliveries
        with d.lock:
            d.running[self.name] += 1
            d.peak[self.name] = max(d.peak[self.name], d.running[self.name])
            d.bodies += [(self.name, r["body"], time.monotonic()) for r in records]
        await asyncio.sleep(0.02)
        with d.lock:
            d.running[self.name] -= 1
        return None, b"", "$LATEST"

    @staticmethod
    async def function_timeout(arn: str) -> int:
        return 1

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.mappings.start(), self.loop).result(10)

    def freeze(self) -> None:
        """Stop dead, as a killed process does: no more heartbeats, receives or deletes, no release."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.frozen = True

    def stop(self) -> None:
        if self.frozen:  # let the stopped loop run again only to wind its tasks down
            self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
            self.thread.start()
        asyncio.run_coroutine_threadsafe(self.mappings.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def test_one_server_polls_a_mapping_and_the_other_takes_it_over_when_it_dies(
    queue_services: QueueServices,
) -> None:
    deliveries = Deliveries()
    a, b = Server("a", queue_services, deliveries), Server("b", queue_services, deliveries)
    try:
        a.queues.create_queue("jobs", False, {"VisibilityTimeout": "2"}, {})
        mapping = EventSourceMapping(
            uuid=str(uuid.uuid4()),
            function_arn=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f",
            event_source_arn=a.queues.arn("jobs"),
            batch_size=BATCH,
            maximum_concurrency=CONCURRENCY,
            state="Enabled",
            last_modified=time.time(),
        )
        a.mappings.store.put(mapping)
        a.start()
        wait_until(lambda: a.mappings.poller(mapping.uuid) is not None, 5, "a polls the mapping")
        b.start()
        # Sends through b wake a's idle pollers on PostgreSQL; an embedded store has one server.
        sender = b if queue_services.backend == "postgres" else a
        for start in range(0, MESSAGES, 10):
            sender.queues.send("jobs", [message(str(i)) for i in range(start, start + 10)], ACCOUNT)
        wait_until(lambda: len(deliveries.by("a")) >= 100, 20, "a delivered 100 messages")
        assert b.mappings.poller(mapping.uuid) is None and deliveries.by("b") == []
        assert a.mappings.leases.holders()[lease_name(mapping.uuid)] == a.mappings.owner

        a.freeze()
        frozen_at = time.monotonic()
        wait_until(lambda: deliveries.distinct() == MESSAGES, 30, "every message was delivered")
        with deliveries.lock:
            took_over_s = min(when for name, _, when in deliveries.bodies if name == "b") - frozen_at
        assert took_over_s < LEASE_TTL_S + 3, f"b delivered its first batch {took_over_s:.1f} s after a stopped"
        assert b.mappings.leases.holders()[lease_name(mapping.uuid)] == b.mappings.owner
        assert max(deliveries.peak.values()) <= CONCURRENCY  # MaximumConcurrency, on each in turn
        twice = [body for body, n in Counter(body for _, body, _ in deliveries.bodies).items() if n > 1]
        # Only what a had received when it stopped comes again: one batch per poller at most.
        assert len(twice) <= CONCURRENCY * BATCH, twice
        wait_until(lambda: b.queues.counts("jobs") == Counts(0, 0, 0), 10, "b deleted every message it delivered")
    finally:
        for server in (b, a):
            if server.thread.is_alive() or server.frozen:
                server.stop()
