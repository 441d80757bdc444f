"""Stream-triggered functions: event source mappings over the Kinesis-compatible service."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import function_zip, make_zip

FAILURE_SINK = """
import boto3, json

def handler(event, context):
    note = json.dumps({"data": json.dumps(event)})
    boto3.client("kinesis").put_record(StreamName="doomed-dlq-sink", Data=note, PartitionKey="f")
"""

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def kinesis(squall: Any) -> Any:
    return squall.client("kinesis")


def make_stream(kinesis: Any, name: str, shards: int = 1) -> str:
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    return str(kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"])


def sink_notes(kinesis: Any, sink: str, expected: int, timeout: float = 30) -> list[dict[str, Any]]:
    """Everything the function copied to the sink stream, once ``expected`` notes arrived."""
    deadline = time.monotonic() + timeout
    notes: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        notes = []
        for shard in kinesis.list_shards(StreamName=sink)["Shards"]:
            iterator = kinesis.get_shard_iterator(
                StreamName=sink, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            page = kinesis.get_records(ShardIterator=iterator)
            notes += [json.loads(r["Data"]) for r in page["Records"]]
        if len(notes) >= expected:
            return notes
        time.sleep(0.2)
    return notes


def setup(kinesis: Any, make_function: Any, name: str, shards: int = 1) -> tuple[str, str]:
    source = make_stream(kinesis, f"{name}-src", shards)
    make_stream(kinesis, f"{name}-sink")
    make_function(
        name, function_zip("stream_sink", "app"), Timeout=10, Environment={"Variables": {"SINK": f"{name}-sink"}}
    )
    return source, f"{name}-sink"


def test_batches_arrive_in_order_per_shard(lam: Any, kinesis: Any, make_function: Any) -> None:
    source, sink = setup(kinesis, make_function, "ordered", shards=2)
    for i in range(30):
        kinesis.put_record(StreamName="ordered-src", Data=f"r{i:02d}".encode(), PartitionKey=f"k{i % 3}")
    mapping = lam.create_event_source_mapping(
        EventSourceArn=source, FunctionName="ordered", StartingPosition="TRIM_HORIZON", BatchSize=7
    )
    assert mapping["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert mapping["State"] == "Creating" and mapping["BatchSize"] == 7
    assert mapping["FunctionArn"].endswith(":function:ordered")
    notes = sink_notes(kinesis, sink, 30)
    assert sorted(n["data"] for n in notes) == [f"r{i:02d}" for i in range(30)]
    assert all(n["batch"] <= 7 for n in notes)
    for shard in {n["shard"] for n in notes}:
        numbers = [int(n["sequence"]) for n in notes if n["shard"] == shard]
        assert numbers == sorted(numbers)
    got = lam.get_event_source_mapping(UUID=mapping["UUID"])
    assert got["State"] == "Enabled" and got["LastProcessingResult"] == "OK"
    listed = lam.list_event_source_mappings(FunctionName="ordered")["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [mapping["UUID"]]
    deleted = lam.delete_event_source_mapping(UUID=mapping["UUID"])
    assert deleted["State"] == "Deleting"
    with pytest.raises(ClientError) as info:
        lam.get_event_source_mapping(UUID=mapping["UUID"])
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_latest_skips_what_was_there(lam: Any, kinesis: Any, make_function: Any) -> None:
    source, sink = setup(kinesis, make_function, "latest")
    kinesis.put_record(StreamName="latest-src", Data=b"old", PartitionKey="k")
    mapping = lam.create_event_source_mapping(EventSourceArn=source, FunctionName="latest", StartingPosition="LATEST")
    kinesis.put_record(StreamName="latest-src", Data=b"new", PartitionKey="k")
    assert sink_notes(kinesis, sink, 1)
    time.sleep(1)
    assert [n["data"] for n in sink_notes(kinesis, sink, 1)] == ["new"]
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_poison_batches_are_retried_then_discarded_and_bisected(lam: Any, kinesis: Any, make_function: Any) -> None:
    source, sink = setup(kinesis, make_function, "poisoned")
    for data in ("a", "b", "poison-1", "c"):
        kinesis.put_record(StreamName="poisoned-src", Data=data.encode(), PartitionKey="k")
    mapping = lam.create_event_source_mapping(
        EventSourceArn=source,
        FunctionName="poisoned",
        StartingPosition="TRIM_HORIZON",
        BatchSize=10,
        MaximumRetryAttempts=1,
        BisectBatchOnFunctionError=True,
    )
    kinesis.put_record(StreamName="poisoned-src", Data=b"after", PartitionKey="k")
    deadline = time.monotonic() + 40
    delivered: list[str] = []
    while "after" not in delivered and time.monotonic() < deadline:
        delivered = [n["data"] for n in sink_notes(kinesis, sink, 1)]
        time.sleep(0.2)
    # At least once: the function saw "a" and "b" before it failed on the poison record, and again
    # after the batch was bisected. Bisection isolates the poison record; the rest gets through in order.
    assert list(dict.fromkeys(delivered)) == ["a", "b", "c", "after"]
    assert "poison-1" not in delivered
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["MaximumRetryAttempts"] == 1
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_partial_batch_failures_retry_from_the_reported_record(lam: Any, kinesis: Any, make_function: Any) -> None:
    source, sink = setup(kinesis, make_function, "partial")
    for data in ("p1", "flaky-2", "p3"):
        kinesis.put_record(StreamName="partial-src", Data=data.encode(), PartitionKey="k")
    mapping = lam.create_event_source_mapping(
        EventSourceArn=source,
        FunctionName="partial",
        StartingPosition="TRIM_HORIZON",
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    notes = sink_notes(kinesis, sink, 3)
    assert [n["data"] for n in notes] == ["p1", "flaky-2", "p3"]  # p1 was not redelivered
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_disable_pauses_and_enable_resumes_from_the_checkpoint(lam: Any, kinesis: Any, make_function: Any) -> None:
    source, sink = setup(kinesis, make_function, "paused")
    mapping = lam.create_event_source_mapping(
        EventSourceArn=source, FunctionName="paused", StartingPosition="TRIM_HORIZON"
    )
    kinesis.put_record(StreamName="paused-src", Data=b"one", PartitionKey="k")
    assert len(sink_notes(kinesis, sink, 1)) == 1
    updated = lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 202
    time.sleep(1.5)
    kinesis.put_record(StreamName="paused-src", Data=b"two", PartitionKey="k")
    time.sleep(1.5)
    assert [n["data"] for n in sink_notes(kinesis, sink, 1)] == ["one"]
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Disabled"
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    assert [n["data"] for n in sink_notes(kinesis, sink, 2)] == ["one", "two"]
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_mapping_validation(lam: Any, kinesis: Any, make_function: Any) -> None:
    source, _ = setup(kinesis, make_function, "checked")
    for kwargs, code in [
        ({"BatchSize": 10001, "StartingPosition": "LATEST"}, "ValidationException"),
        ({"MaximumRecordAgeInSeconds": 30, "StartingPosition": "LATEST"}, "InvalidParameterValueException"),
        ({"StartingPosition": "NOWHERE"}, "ValidationException"),
        ({}, "InvalidParameterValueException"),
    ]:
        with pytest.raises(ClientError) as info:
            lam.create_event_source_mapping(EventSourceArn=source, FunctionName="checked", **kwargs)
        assert info.value.response["Error"]["Code"] == code, kwargs
    with pytest.raises(ClientError) as info:
        lam.create_event_source_mapping(EventSourceArn=source, FunctionName="no-such-fn", StartingPosition="LATEST")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as info:
        lam.create_event_source_mapping(
            EventSourceArn=source.replace("checked-src", "missing"), FunctionName="checked", StartingPosition="LATEST"
        )
    assert info.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_filter_criteria_skip_records_for_good(lam: Any, kinesis: Any, make_function: Any) -> None:
    source, sink = setup(kinesis, make_function, "filtered")
    pattern = json.dumps({"data": {"kind": ["order"], "total": [{"numeric": [">", 10]}]}})
    mapping = lam.create_event_source_mapping(
        EventSourceArn=source,
        FunctionName="filtered",
        StartingPosition="TRIM_HORIZON",
        FilterCriteria={"Filters": [{"Pattern": pattern}]},
    )
    assert mapping["FilterCriteria"] == {"Filters": [{"Pattern": pattern}]}
    for body in ({"kind": "order", "total": 5}, {"kind": "refund", "total": 50}, {"kind": "order", "total": 20}):
        kinesis.put_record(StreamName="filtered-src", Data=json.dumps(body).encode(), PartitionKey="k")
    kinesis.put_record(StreamName="filtered-src", Data=b"not json", PartitionKey="k")
    notes = sink_notes(kinesis, sink, 1)
    time.sleep(1.5)
    notes = sink_notes(kinesis, sink, 1)
    assert [json.loads(n["data"]) for n in notes] == [{"kind": "order", "total": 20}]
    with pytest.raises(ClientError) as info:
        lam.update_event_source_mapping(UUID=mapping["UUID"], FilterCriteria={"Filters": [{"Pattern": "{bad"}]})
    assert info.value.response["Error"]["Code"] == "InvalidParameterValueException"
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_delivery_resumes_from_the_checkpoint_after_a_crash(new_server: Any) -> None:
    import signal

    from .conftest import ROLE

    server = new_server()
    lam, kinesis = server.client("lambda"), server.client("kinesis")
    source = make_stream(kinesis, "crash-src")
    make_stream(kinesis, "crash-sink")
    lam.create_function(
        FunctionName="crash",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": function_zip("stream_sink", "app")},
        Timeout=10,
        Environment={"Variables": {"SINK": "crash-sink"}},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="crash", WaiterConfig={"Delay": 0.05})
    lam.create_event_source_mapping(
        EventSourceArn=source, FunctionName="crash", StartingPosition="TRIM_HORIZON", BatchSize=5
    )
    for i in range(10):
        kinesis.put_record(StreamName="crash-src", Data=f"before {i}".encode(), PartitionKey="k")
    assert len(sink_notes(kinesis, "crash-sink", 10)) >= 10
    server.stop(signal.SIGKILL)
    server.start()
    kinesis = server.client("kinesis")
    for i in range(5):
        kinesis.put_record(StreamName="crash-src", Data=f"after {i}".encode(), PartitionKey="k")
    notes = sink_notes(kinesis, "crash-sink", 15)
    delivered = [n["data"] for n in notes]
    # At least once, in order, nothing lost; the checkpoint keeps a crash from replaying everything.
    assert list(dict.fromkeys(delivered)) == [f"before {i}" for i in range(10)] + [f"after {i}" for i in range(5)]
    assert len(delivered) <= 15 + 5


def test_on_failure_destination_gets_the_batch_info(lam: Any, kinesis: Any, make_function: Any) -> None:
    source, _ = setup(kinesis, make_function, "doomed")
    _, failures = setup(kinesis, make_function, "doomed-dlq")  # its sink collects the failure records
    # The destination function gets the failure record as its event and writes it to a stream.
    make_function("failure-sink", make_zip({"app.py": FAILURE_SINK}), Timeout=10)
    kinesis.put_record(StreamName="doomed-src", Data=b"poison-x", PartitionKey="k")
    kinesis.put_record(StreamName="doomed-src", Data=b"fine", PartitionKey="k")
    mapping = lam.create_event_source_mapping(
        EventSourceArn=source,
        FunctionName="doomed",
        StartingPosition="TRIM_HORIZON",
        MaximumRetryAttempts=0,
        DestinationConfig={
            "OnFailure": {"Destination": lam.get_function(FunctionName="failure-sink")["Configuration"]["FunctionArn"]}
        },
    )
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"].endswith(":function:failure-sink")
    notes = sink_notes(kinesis, failures, 1)
    record = json.loads(notes[0]["data"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["functionArn"].endswith(":function:doomed")
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    info = record["KinesisBatchInfo"]
    assert info["shardId"] == "shardId-000000000000" and info["streamArn"] == source
    assert info["batchSize"] == 2 and int(info["startSequenceNumber"]) < int(info["endSequenceNumber"])
    assert info["approximateArrivalOfFirstRecord"].endswith("Z") and record["version"] == "1.0"
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_new_records_wake_an_idle_poller_at_once(lam: Any, kinesis: Any, make_function: Any) -> None:
    source, sink = setup(kinesis, make_function, "prompt")
    mapping = lam.create_event_source_mapping(EventSourceArn=source, FunctionName="prompt", StartingPosition="LATEST")
    kinesis.put_record(StreamName="prompt-src", Data=b"warm-up", PartitionKey="k")
    sink_notes(kinesis, sink, 1)
    time.sleep(2)  # the poller is idle now, waiting for a put
    started = time.monotonic()
    kinesis.put_record(StreamName="prompt-src", Data=b"ping", PartitionKey="k")
    notes = sink_notes(kinesis, sink, 2)
    assert [n["data"] for n in notes] == ["warm-up", "ping"]
    assert time.monotonic() - started < 1.0  # far below the idle backstop (5 s)
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_squall_streams_shows_shards_and_lag(squall: Any, lam: Any, kinesis: Any, make_function: Any) -> None:
    import subprocess
    import sys

    source, _ = setup(kinesis, make_function, "lagging")
    for i in range(3):
        kinesis.put_record(StreamName="lagging-src", Data=f"{i}".encode(), PartitionKey="k")
    mapping = lam.create_event_source_mapping(
        EventSourceArn=source, FunctionName="lagging", StartingPosition="TRIM_HORIZON", Enabled=False
    )
    result = subprocess.run(
        [sys.executable, "-m", "squall", "streams", "--json", "--data-dir", str(squall.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    stream = next(s for s in report["streams"] if s["name"] == "lagging-src")
    assert stream["shards"] == [{"id": "shardId-000000000000", "open": True, "records": 3}]
    entry = next(m for m in report["mappings"] if m["uuid"] == mapping["UUID"])
    assert entry["state"] == "Disabled" and entry["lag"][0]["behind"] == 3 and entry["lag"][0]["iterator_age_ms"] >= 0
    text = subprocess.run(
        [sys.executable, "-m", "squall", "streams", "--data-dir", str(squall.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "lagging-src  PROVISIONED  1 open shard(s)" in text and "behind 3" in text
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


COUNTER = """
import os

import boto3

ddb = boto3.client("dynamodb")
KEY = {"pk": {"S": "arrived"}}


def handler(event, context):
    table = os.environ["TABLE"]
    added = ddb.update_item(
        TableName=table,
        Key=KEY,
        UpdateExpression="ADD records :n",
        ExpressionAttributeValues={":n": {"N": str(len(event["Records"]))}},
        ReturnValues="UPDATED_NEW",
    )
    total = int(added["Attributes"]["records"]["N"])
    if total >= int(os.environ["THRESHOLD"]):
        try:  # the flush: only the first batch past the threshold wins the conditional write
            ddb.update_item(
                TableName=table,
                Key=KEY,
                UpdateExpression="SET flushed_at = :total ADD flushes :one",
                ConditionExpression="attribute_not_exists(flushed_at)",
                ExpressionAttributeValues={":total": {"N": str(total)}, ":one": {"N": "1"}},
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            pass
"""


def test_stream_events_count_into_a_table_and_flush_once(
    squall: Any, lam: Any, kinesis: Any, make_function: Any
) -> None:
    """The seed's counter: batches from 4 shards, handled concurrently, add to one item atomically
    (ADD, UPDATED_NEW), and the flush past the threshold happens exactly once (conditional write)."""
    ddb = squall.client("dynamodb")
    ddb.create_table(
        TableName="arrivals",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    source = make_stream(kinesis, "counted-src", shards=4)
    make_function(
        "counter",
        make_zip({"app.py": COUNTER}),
        Timeout=10,
        Environment={"Variables": {"TABLE": "arrivals", "THRESHOLD": "100"}},
    )
    for start in range(0, 400, 100):
        entries = [{"Data": f"r{i}".encode(), "PartitionKey": f"k{i}"} for i in range(start, start + 100)]
        assert kinesis.put_records(StreamName="counted-src", Records=entries)["FailedRecordCount"] == 0
    lam.create_event_source_mapping(
        EventSourceArn=source, FunctionName="counter", StartingPosition="TRIM_HORIZON", BatchSize=7
    )
    deadline = time.monotonic() + 60
    item: dict[str, Any] = {}
    while time.monotonic() < deadline:
        item = ddb.get_item(TableName="arrivals", Key={"pk": {"S": "arrived"}}, ConsistentRead=True).get("Item", {})
        if item.get("records") == {"N": "400"}:
            break
        time.sleep(0.2)
    assert item.get("records") == {"N": "400"}
    assert item["flushes"] == {"N": "1"}
    assert 100 <= int(item["flushed_at"]["N"]) < 400
