"""A table stream's mapping on two servers of the scale-out tier, in-process: two table services, two
mapping stores, two lease stores and two supervisors on one PostgreSQL, as two servers have them. One
server holds the stream's shard by lease; items written through either server reach the function once
each, in the order of their sequence numbers, woken by the other server's notification (not the idle
backstop); and when the holder dies, the other takes the shard over from the shared checkpoint."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from squall.runtime.bootstrap import batch_events
from squall.services.tables import changes
from squall.services.tables.service import TableService, WriteOp
from squall.services.tables.streams import TableStreams
from squall.sources import stream_poller
from squall.sources import streams as supervisor_module
from squall.sources.mappings import EventSourceMapping, MappingStore
from squall.sources.mappings_postgres import postgres_mapping_database
from squall.sources.shard_sources import TableStreamSource
from squall.sources.streams import StreamMappings
from squall.stores.postgres import PostgresLeaseStore
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable
from tests.unit.test_stream_shard_sharing import ROLE, Server, holders, wait_for
from tests.unit.test_tables_shared import TABLE

ACCOUNT, REGION = "000000000000", "us-east-1"


class TableServer(Server):
    """A server whose function records (server, item key, sequence number) of each table stream record."""

    async def invoke(self, _: EventSourceMapping, payload: bytes, shape: Any) -> tuple[str | None, bytes, str]:
        records = batch_events.event_of(shape, payload)["Records"]
        with self.lock:
            self.seen += [
                (self.name, r["dynamodb"]["Keys"]["pk"]["S"], int(r["dynamodb"]["SequenceNumber"])) for r in records
            ]
        return None, b"{}", "$LATEST"


@dataclass
class Deployment:
    schema: str
    tables: dict[str, TableService]
    servers: dict[str, TableServer]


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Deployment]:
    monkeypatch.setattr(supervisor_module, "LEASE_TTL_S", 2.0)
    monkeypatch.setattr(supervisor_module, "LEASE_RENEW_S", 0.3)
    # An idle poller would look again only after a minute: only a notification wakes it in time.
    monkeypatch.setattr(stream_poller, "IDLE_WAIT_S", 60.0)
    closing: list[TableService | MappingStore | PostgresLeaseStore] = []
    with scratch_schema(unavailable) as schema:
        from squall.services.tables.postgres import PostgresTableStore

        found = Deployment(schema, {}, {})
        for name in ("one", "two"):
            tables = TableService(PostgresTableStore(postgres_dsn(), f"{schema}_tables"), ACCOUNT, REGION, 3600)
            mappings = MappingStore(postgres_mapping_database(postgres_dsn(), f"{schema}_mappings"))
            leases = PostgresLeaseStore(postgres_dsn(), schema)
            closing += [tables, mappings, leases]
            found.tables[name] = tables
            source = TableStreamSource(TableStreams(tables))
            found.servers[name] = TableServer(
                name,
                lambda invoke, m=mappings, s=source, leases=leases: StreamMappings(m, [s], invoke, ROLE, leases),
            )
        try:
            yield found
        finally:
            for server in found.servers.values():
                if server.thread.is_alive():
                    server.stop()
                if not server.loop.is_closed():
                    server.close()
            for store in closing:
                store.close()


def test_a_table_streams_shard_is_delivered_by_one_server_and_taken_over_when_it_dies(
    deployment: Deployment,
) -> None:
    one, two = deployment.tables["one"], deployment.tables["two"]
    one.create_table(TABLE)
    arn = two.stream_arn(two.table("things"))  # created through one, seen by two
    assert arn is not None
    store = MappingStore(postgres_mapping_database(postgres_dsn(), f"{deployment.schema}_mappings"))
    store.put(
        EventSourceMapping(
            uuid="m",
            function_arn="arn:aws:lambda:us-east-1:000000000000:function:f",
            event_source_arn=arn,
            batch_size=10,
            starting_position="TRIM_HORIZON",
            state="Enabled",
        )
    )
    store.close()
    servers = deployment.servers
    for server in servers.values():
        server.start()
    wait_for(lambda: len(holders(servers["one"])) == 1, "one server to hold the stream's one shard")
    holder = next(iter(holders(servers["one"]).values())).removeprefix("host-")
    other = "two" if holder == "one" else "one"

    def delivered() -> list[tuple[str, str, int]]:
        """What both delivered, the first holder's first: the order the shard went through them."""
        with servers["one"].lock, servers["two"].lock:
            return servers[holder].seen + servers[other].seen

    written: list[str] = []

    def write(through: str, count: int) -> None:
        for _ in range(count):
            key = f"{through}-{len(written)}"
            deployment.tables[through].write(WriteOp(table="things", kind="put", item={"pk": {"S": key}}))
            written.append(key)

    # Written through the server that does not hold the shard, while the holder's poller is idle.
    time.sleep(0.5)
    began = time.monotonic()
    write(other, 1)
    wait_for(lambda: len(delivered()) == 1, "the first record", timeout=10)
    woken_s = time.monotonic() - began
    assert woken_s < 3, woken_s  # by the other server's notification, not the one-minute backstop
    write(other, 30)
    write(holder, 30)
    wait_for(lambda: len(delivered()) == len(written), "every record written through both servers")
    assert {name for name, _, _ in delivered()} == {holder}
    shard = TableStreams(two).shards(arn)[0].shard_id
    last = changes.counter_of(str(max(seq for _, _, seq in delivered())))
    assert last is not None
    store = MappingStore(postgres_mapping_database(postgres_dsn(), f"{deployment.schema}_mappings"))
    try:
        wait_for(lambda: store.checkpoint("m", shard) == last + 1, "the holder to checkpoint its last batch")
    finally:
        store.close()

    servers[holder].crash()  # no release: the lease has to expire
    write(other, 30)
    wait_for(lambda: {key for _, key, _ in delivered()} >= set(written), "the survivor to deliver the rest")
    assert {name for name, key, _ in delivered() if key in written[61:]} == {other}
    # Once each (the holder checkpointed every batch it finished), in the order of their numbers.
    assert sorted(key for _, key, _ in delivered()) == sorted(written)
    numbers = [seq for _, _, seq in delivered()]
    assert numbers == sorted(numbers)
