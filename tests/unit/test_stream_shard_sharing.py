"""Two stream-mapping supervisors on one lease store, mapping store and stream service, as two servers
of the scale-out tier would be: they split a mapping's shards, a newcomer is handed its share between
batches, and the shards of one that stops renewing (a server on another host that died) are taken
over once its leases expire, from the checkpoints, without losing a record or breaking shard order."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from squall.runtime.bootstrap import batch_events
from squall.services.streams.service import StreamService, sequence
from squall.sources import streams as supervisor_module
from squall.sources.mappings import EventSourceMapping, MappingStore
from squall.sources.shard_sources import KinesisSource
from squall.sources.streams import StreamMappings, lease_name
from squall.stores.leases import SqliteLeaseStore

ROLE = "arn:aws:iam::000000000000:role/r"
SHARDS = 4


class Server:
    """A supervisor on an event loop of its own thread; ``crash`` stops the loop dead: no renewal, no release."""

    def __init__(self, name: str, make: Callable[[Callable[..., object]], StreamMappings]) -> None:
        self.name = name
        self.seen: list[tuple[str, str, int]] = []  # (server, shard, sequence number), in delivery order
        self.lock = threading.Lock()
        self.supervisor = make(self.invoke)
        self.supervisor.owner = f"host-{name}/1/1"  # another host: its leases end only by expiring
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def invoke(self, _: EventSourceMapping, payload: bytes, shape: Any) -> tuple[str | None, bytes, str]:
        records = batch_events.event_of(shape, payload)["Records"]
        with self.lock:
            self.seen += [(self.name, r["eventID"].split(":")[0], int(r["kinesis"]["sequenceNumber"])) for r in records]
        await asyncio.sleep(0.01)
        return None, b"{}", "$LATEST"

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.supervisor.start(), self.loop).result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.supervisor.stop(), self.loop).result(30)
        self.crash()

    def crash(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)

    def close(self) -> None:
        """After ``crash``: end what the stopped loop still had pending, then close it."""

        async def drain() -> None:
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.loop.run_until_complete(drain())
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StreamService, Callable[[str], Server]]]:
    monkeypatch.setattr(supervisor_module, "LEASE_TTL_S", 2.0)
    monkeypatch.setattr(supervisor_module, "LEASE_RENEW_S", 0.3)
    streams = StreamService(tmp_path / "streams.db", "000000000000", "us-east-1")
    streams.create_stream("s", SHARDS, "PROVISIONED", {})
    mappings = MappingStore(tmp_path / "mappings.db")
    leases = SqliteLeaseStore(tmp_path / "leases.db")
    mappings.put(
        EventSourceMapping(
            uuid="m",
            function_arn="arn:aws:lambda:us-east-1:000000000000:function:f",
            event_source_arn=streams.arn("s"),
            batch_size=10,
            starting_position="TRIM_HORIZON",
            state="Enabled",
        )
    )
    servers: list[Server] = []

    def server(name: str) -> Server:
        servers.append(
            Server(name, lambda invoke: StreamMappings(mappings, [KinesisSource(streams)], invoke, ROLE, leases))
        )
        return servers[-1]

    yield streams, server
    for running in servers:
        if running.thread.is_alive():
            running.stop()
        running.close()
    leases.close()
    mappings.close()
    streams.close()


def holders(server: Server) -> dict[str, str]:
    """Shard id -> the server holding it, for the mapping's shards."""
    prefix = lease_name("m", "")
    held = server.supervisor.leases.holders().items()
    return {lease.removeprefix(prefix): owner.split("/")[0] for lease, owner in held if lease.startswith(prefix)}


def split(server: Server) -> Counter[str]:
    """How many of the mapping's shards each server holds."""
    return Counter(holders(server).values())


def put(streams: StreamService, first: int, count: int) -> dict[int, str]:
    """Records ``first``.. (partition keys spread them over the shards): sequence number -> shard."""
    placed = streams.put("s", [(str(i), str(i).encode(), None) for i in range(first, first + count)])
    return {int(sequence(counter)): shard for shard, counter in placed}


def wait_for(done: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.02)


def test_servers_split_the_shards_hand_over_between_batches_and_take_a_silent_ones_over(
    world: tuple[StreamService, Callable[[str], Server]],
) -> None:
    streams, server = world
    placed = put(streams, 0, 400)
    one = server("one")
    one.start()
    wait_for(lambda: split(one) == {"host-one": SHARDS}, "the only server to take every shard")
    two = server("two")
    two.start()
    wait_for(lambda: split(one) == {"host-one": 2, "host-two": 2}, "the newcomer to get its share")
    placed |= put(streams, 400, 400)

    def delivered() -> list[tuple[str, str, int]]:
        with one.lock, two.lock:
            return one.seen + two.seen

    wait_for(lambda: {seq for _, _, seq in delivered()} >= set(placed), "the records put so far")
    assert len(delivered()) == len(placed)  # handed over between batches: nothing delivered twice
    assert {name for name, _, _ in delivered()} == {"one", "two"}

    of_one = {shard for shard, name in holders(one).items() if name == "host-one"}
    one.crash()
    crashed = time.monotonic()
    late = put(streams, 800, 400)
    placed |= late
    wait_for(lambda: split(two) == {"host-two": SHARDS}, "the survivor to hold every shard")
    taken_s = time.monotonic() - crashed
    wait_for(lambda: {seq for _, _, seq in delivered()} >= set(placed), "every record")
    assert taken_s < supervisor_module.LEASE_TTL_S + 2 * supervisor_module.LEASE_RENEW_S + 1.5
    # In order per shard, by first delivery; the survivor carried on from the crashed one's checkpoints.
    first: dict[int, str] = {}
    for _, shard, seq in delivered():
        assert placed[seq] == shard
        first.setdefault(seq, shard)
    for shard in set(placed.values()):
        numbers = [seq for seq, s in first.items() if s == shard]
        assert numbers == sorted(numbers), shard
    assert {shard for name, shard, seq in delivered() if name == "two" and seq in late} >= of_one
