"""Streams in the scale-out tier: a ``squall server --tier ray`` keeps them in PostgreSQL, where another
server (here a ``StreamService`` of this process on the same schema) puts and reads the same streams,
and the server's stream mapping delivers the other server's records."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from squall.services.streams.postgres import PostgresStreamStore
from squall.services.streams.service import StreamService, counter_of
from squall.stores.postgres import PostgresMetadataStore
from tests.conftest import make_zip
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable
from tests.e2e.conftest import ROLE, SquallServer

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow

HANDLER = """
import base64

def handler(event, context):
    for record in event["Records"]:
        print("got", base64.b64decode(record["kinesis"]["data"]).decode())
"""


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    with scratch_schema(unavailable) as name:
        yield name


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, schema: str) -> Iterator[SquallServer]:
    ray.init(include_dashboard=False, namespace="squall", num_cpus=2, log_to_driver=False)
    address = str(ray.get_runtime_context().gcs_address)
    args = ["--tier", "ray", "--ray-address", address, "--postgres-dsn", postgres_dsn(), "--postgres-schema", schema]
    server = SquallServer(tmp_path_factory.mktemp("pgstreams") / "data", args)
    try:
        server.start()
        yield server
        server.stop()
    finally:
        ray.shutdown()


@pytest.fixture
def other_server(schema: str) -> Iterator[StreamService]:
    """The stream service another server of the cluster would have."""
    service = StreamService(PostgresStreamStore(postgres_dsn(), f"{schema}_streams"), "000000000000", "us-east-1")
    yield service
    service.close()


def delivered(schema: str, function: str) -> list[str]:
    store = PostgresMetadataStore(postgres_dsn(), schema)
    try:
        events = store.log_events(f"/aws/lambda/{function}", limit=10_000)
    finally:
        store.close()
    return [e.message.strip().removeprefix("got ") for _, _, e in events if e.message.startswith("got ")]


def test_streams_are_shared_through_postgresql(server: SquallServer, other_server: StreamService, schema: str) -> None:
    kinesis, lam = server.client("kinesis"), server.client("lambda")
    kinesis.create_stream(StreamName="shared", ShardCount=2)
    assert other_server.stream("shared").status == "ACTIVE"
    placed = kinesis.put_records(
        StreamName="shared", Records=[{"Data": f"api-{i}".encode(), "PartitionKey": f"k{i}"} for i in range(10)]
    )["Records"]
    # The other server reads what this one took, and this one reads (through the API) what it puts.
    mine = other_server.put("shared", [(f"k{i}", f"other-{i}".encode(), None) for i in range(10)])
    assert min(counter for _, counter in mine) == max(counter_of(r["SequenceNumber"]) for r in placed) + 1
    read: list[str] = []
    for shard in kinesis.list_shards(StreamName="shared")["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName="shared", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        # An iterator one server hands out is good on the other.
        assert other_server.open_iterator(iterator)[:2] == ("shared", shard["ShardId"])
        records = kinesis.get_records(ShardIterator=iterator, Limit=100)["Records"]
        read += [r["Data"].decode() for r in records]
    assert sorted(read) == sorted([f"api-{i}" for i in range(10)] + [f"other-{i}" for i in range(10)])

    # A mapping on this server delivers, in order per shard, records the other server puts.
    lam.create_function(
        FunctionName="pg-sink",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": HANDLER})},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="pg-sink", WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
    lam.create_event_source_mapping(
        FunctionName="pg-sink",
        EventSourceArn=other_server.arn("shared"),
        StartingPosition="LATEST",
        BatchSize=100,
    )
    expected: list[str] = []
    deadline = time.monotonic() + 60
    while True:
        # LATEST starts where the stream is when the poller starts: put until a put is delivered.
        batch = [f"late-{len(expected) + i}" for i in range(5)]
        other_server.put("shared", [(value, value.encode(), None) for value in batch])
        expected += batch
        time.sleep(0.5)
        got = delivered(schema, "pg-sink")
        if got:
            break
        assert time.monotonic() < deadline, "the mapping delivered nothing"
    last = expected[-1]
    while last not in got:
        assert time.monotonic() < deadline, f"not delivered: {sorted(set(expected) - set(got))}"
        time.sleep(0.3)
        got = delivered(schema, "pg-sink")
    assert set(got) <= set(expected) and len(got) == len(set(got))
    for shard in other_server.shards("shared"):
        stored = [r.data.decode() for r in other_server.read("shared", shard.shard_id, 0, 10_000)[0]]
        mine_here = [value for value in got if value in stored]
        # Once delivery starts on a shard, everything after it arrives, in the shard's order.
        assert mine_here == stored[len(stored) - len(mine_here) :]
