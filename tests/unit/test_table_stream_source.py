"""The source seam of the stream delivery engine: Kinesis streams and table streams behind one protocol,
and one ShardPoller delivering a table stream (partial failures by dynamodb.SequenceNumber, DDBStreamBatchInfo)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from squall.runtime.bootstrap import batch_events
from squall.services.streams.events import kinesis_event
from squall.services.streams.service import StreamService, sequence
from squall.services.tables import changes
from squall.services.tables.service import TableService, WriteOp
from squall.services.tables.streams import TableStreams
from squall.sources.filters import kinesis_view, matches_any, parse_filters
from squall.sources.mappings import EventSourceMapping
from squall.sources.shard_sources import KinesisSource, ShardSource, TableStreamSource
from squall.sources.stream_poller import ShardPoller
from tests.contract.mapping_stores import Opener, mapping_stores

__all__ = ["mapping_stores"]  # the fixture: the pollers run on every mapping store backend

ROLE = "arn:aws:iam::000000000000:role/r"
TABLE = {
    "TableName": "things",
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    "BillingMode": "PAY_PER_REQUEST",
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
}


@pytest.fixture
def tables(tmp_path: Path) -> Iterator[TableService]:
    service = TableService(tmp_path / "tables.db", "000000000000", "us-east-1", expiry_interval=3600)
    service.create_table(TABLE)
    yield service
    service.close()


@pytest.fixture
def kinesis(tmp_path: Path) -> Iterator[StreamService]:
    service = StreamService(tmp_path / "streams.db", "000000000000", "us-east-1")
    yield service
    service.close()


def put(tables: TableService, key: str, **attributes: str) -> None:
    item = {"pk": {"S": key}} | {name: {"S": value} for name, value in attributes.items()}
    tables.write(WriteOp(table="things", kind="put", item=item))


def table_source(tables: TableService) -> tuple[TableStreamSource, str]:
    arn = tables.stream_arn(tables.table("things"))
    assert arn is not None
    return TableStreamSource(TableStreams(tables)), arn


def test_kinesis_source_is_the_engine_as_it_was(kinesis: StreamService) -> None:
    kinesis.create_stream("s", 1, "PROVISIONED", {})
    kinesis.put("s", [("k", b'{"a": 1}', None), ("k", b"raw", None)])
    source: ShardSource = KinesisSource(kinesis)
    arn = kinesis.arn("s")
    assert source.owns(arn) and not source.owns("arn:aws:dynamodb:us-east-1:0:table/t/stream/x")
    assert source.batch_info_key == "KinesisBatchInfo" and source.wake_key(arn) == "s"
    (shard,) = source.shards(arn)
    records = source.read(arn, shard.shard_id, shard.start_seq, 10)
    assert [r.data for r in records] == [b'{"a": 1}', b"raw"]
    assert source.latest(arn) == records[-1].seq
    body, shape = source.payload(records, shard.shard_id, arn, ROLE, None)
    assert shape is not None  # the sandbox builds the event from rows
    assert batch_events.event(shape, body) == kinesis_event(records, shard.shard_id, arn, "us-east-1", ROLE)
    assert source.view(records[0]) == kinesis_view("k", b'{"a": 1}')
    assert source.sequence(records[0].seq) == sequence(records[0].seq)


def test_table_source_reads_the_change_log(tables: TableService) -> None:
    source, arn = table_source(tables)
    assert source.owns(arn) and not source.owns("arn:aws:kinesis:us-east-1:0:stream/s")
    assert source.batch_info_key == "DDBStreamBatchInfo" and source.wake_key(arn) == arn
    put(tables, "a", colour="red")
    put(tables, "b")
    put(tables, "a", colour="blue")
    (shard,) = source.shards(arn)
    assert shard.shard_id.startswith("shardId-") and shard.end_seq is None
    records = source.read(arn, shard.shard_id, shard.start_seq, 10)
    assert len(records) == 3 and source.latest(arn) == records[-1].seq
    # Lanes keep order per partition key: for a table, per item.
    assert records[0].partition_key == records[2].partition_key != records[1].partition_key
    assert source.read(arn, shard.shard_id, records[1].seq, 10) == records[1:]
    body, shape = source.payload(records, shard.shard_id, arn, ROLE, {"window": "w"})
    assert shape is None  # a table stream's event travels whole
    event = json.loads(body)
    assert event.pop("window") == "w"
    size = source.sizer(shard.shard_id, arn, ROLE)
    for stored, sent in zip(records, event["Records"], strict=True):
        assert size(stored) >= len(msgspec.json.encode(sent)) + 1  # never under what it takes in the event
    assert [r["eventName"] for r in event["Records"]] == ["INSERT", "INSERT", "MODIFY"]
    assert [r["dynamodb"]["SequenceNumber"] for r in event["Records"]] == [source.sequence(r.seq) for r in records]
    assert all(r["eventSourceARN"] == arn for r in event["Records"])
    assert event == changes.dynamodb_event([json.loads(r.data) for r in records], arn)
    pattern = parse_filters(
        {
            "Filters": [
                {"Pattern": json.dumps({"eventName": ["MODIFY"], "dynamodb": {"OldImage": {"colour": {"S": ["red"]}}}})}
            ]
        }
    )
    assert [matches_any(pattern, source.view(r)) for r in records] == [False, False, True]
    tables.update_table({"TableName": "things", "StreamSpecification": {"StreamEnabled": False}})
    (closed,) = source.shards(arn)
    assert closed.end_seq == records[-1].seq
    with pytest.raises(LookupError):
        source.shards(arn.replace("things", "other"))


def run_poller(
    tables: TableService, mapping_stores: Opener, mapping: EventSourceMapping, replies: list[Any], wanted: int
) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """Run a poller of the table's stream until ``wanted`` invocations; the function answers ``replies`` in turn
    (then succeeds). Returns each invocation's sequence numbers and the failure records sent."""
    source, arn = table_source(tables)
    mapping.event_source_arn = arn
    store = mapping_stores()
    store.put(mapping)
    calls: list[list[str]] = []
    failures: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def invoke(_: EventSourceMapping, payload: bytes, shape: Any) -> tuple[str | None, bytes, str]:
        assert shape is None  # a table stream's event travels whole
        event = json.loads(payload)
        calls.append([r["dynamodb"]["SequenceNumber"] for r in event["Records"]])
        if len(calls) >= wanted:
            done.set()
        reply = replies.pop(0) if replies else None
        if reply == "error":
            return "Unhandled", b'{"errorMessage": "no"}', "$LATEST"
        return None, json.dumps(reply).encode(), "$LATEST"

    async def deliver(_: str, body: bytes) -> None:
        failures.append(json.loads(body))

    async def main() -> None:
        poller = ShardPoller(mapping, source.shards(arn)[0], source, store, invoke, ROLE, deliver)
        task = asyncio.ensure_future(poller.run())
        await asyncio.wait_for(done.wait(), 20)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    return calls, failures


def test_partial_failures_name_the_dynamodb_sequence_number(tables: TableService, mapping_stores: Opener) -> None:
    for key in ("a", "b", "c"):
        put(tables, key)
    source, arn = table_source(tables)
    numbers = [source.sequence(r.seq) for r in source.read(arn, source.shards(arn)[0].shard_id, 0, 10)]
    mapping = EventSourceMapping(
        uuid="m1",
        function_arn="arn:aws:lambda:us-east-1:0:function:f",
        event_source_arn="",
        function_response_types=["ReportBatchItemFailures"],
    )
    calls, _ = run_poller(tables, mapping_stores, mapping, [{"batchItemFailures": [{"itemIdentifier": numbers[1]}]}], 2)
    assert calls == [numbers, numbers[1:]]


def test_discarded_batches_are_reported_with_ddb_stream_batch_info(
    tables: TableService, mapping_stores: Opener
) -> None:
    put(tables, "a")
    put(tables, "b")
    source, arn = table_source(tables)
    numbers = [source.sequence(r.seq) for r in source.read(arn, source.shards(arn)[0].shard_id, 0, 10)]
    mapping = EventSourceMapping(
        uuid="m2",
        function_arn="arn:aws:lambda:us-east-1:0:function:f",
        event_source_arn="",
        batch_size=1,
        maximum_retry_attempts=0,
        on_failure="arn:aws:sqs:us-east-1:0:dlq",
    )
    calls, failures = run_poller(tables, mapping_stores, mapping, ["error"], 2)
    assert calls == [[numbers[0]], [numbers[1]]]
    (failure,) = failures
    assert "KinesisBatchInfo" not in failure
    info = failure["DDBStreamBatchInfo"]
    assert info["streamArn"] == arn and info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == numbers[0]
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
