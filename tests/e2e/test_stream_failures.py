"""How a stream mapping handles what the function cannot take: a poison record blocking only its own
shard, records given up on for their age, and batches split at 6 MB."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.test_stream_triggers import make_stream, setup, sink_notes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Reports the size of each batch it gets (not the data: records here are up to 1 MB).
BATCH_SIZES = """
import json, os
import boto3

kinesis = boto3.client("kinesis")

def handler(event, context):
    size = sum(len(r["kinesis"]["data"]) for r in event["Records"])
    note = {"records": len(event["Records"]), "base64_bytes": size, "payload": len(json.dumps(event))}
    kinesis.put_record(StreamName=os.environ["SINK"], Data=json.dumps(note).encode(), PartitionKey="n")
"""

#: Explicit hash keys that land in the first and in the second of two shards.
FIRST_SHARD, SECOND_SHARD = "1", str(2**127 + 1)


def test_by_default_a_poison_record_blocks_its_shard_while_others_flow(
    lam: Any, squall: Any, make_function: Any
) -> None:
    kinesis = squall.client("kinesis")
    source, sink = setup(kinesis, make_function, "stuck", shards=2)
    mapping = lam.create_event_source_mapping(EventSourceArn=source, FunctionName="stuck", StartingPosition="LATEST")
    time.sleep(1.5)
    for data, key in (("poison-x", FIRST_SHARD), ("behind-poison", FIRST_SHARD), ("free", SECOND_SHARD)):
        kinesis.put_record(StreamName="stuck-src", Data=data.encode(), PartitionKey="p", ExplicitHashKey=key)
    notes = sink_notes(kinesis, sink, 1)
    time.sleep(3)  # several retries of the poisoned batch
    for i in range(3):
        kinesis.put_record(
            StreamName="stuck-src", Data=f"later-{i}".encode(), PartitionKey="p", ExplicitHashKey=SECOND_SHARD
        )
    notes = sink_notes(kinesis, sink, 4)
    delivered = [n["data"] for n in notes]
    assert delivered == ["free", "later-0", "later-1", "later-2"]  # the other shard keeps flowing
    assert "behind-poison" not in delivered  # the poisoned shard is blocked, in order, retrying
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["MaximumRetryAttempts"] == -1
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_batches_are_split_at_six_megabytes(lam: Any, squall: Any, make_function: Any) -> None:
    kinesis = squall.client("kinesis")
    source = make_stream(kinesis, "heavy-src")
    make_stream(kinesis, "heavy-sink")
    make_function(
        "heavy", make_zip({"app.py": BATCH_SIZES}), Timeout=30, Environment={"Variables": {"SINK": "heavy-sink"}}
    )
    record = b"x" * (1024 * 1024 - 10)  # just under the 1 MiB record limit, with its key
    for _ in range(7):
        kinesis.put_record(StreamName="heavy-src", Data=record, PartitionKey="k")
    mapping = lam.create_event_source_mapping(
        EventSourceArn=source, FunctionName="heavy", StartingPosition="TRIM_HORIZON", BatchSize=100
    )
    deadline = time.monotonic() + 60
    notes: list[dict[str, Any]] = []
    while sum(n["records"] for n in notes) < 7 and time.monotonic() < deadline:
        notes = sink_notes(kinesis, "heavy-sink", 1, timeout=1)
    assert sum(n["records"] for n in notes) == 7
    assert len(notes) >= 2  # 7 MB of data (9.3 MB as base64) cannot travel in one batch
    assert all(n["payload"] <= 6 * 1024 * 1024 for n in notes)
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_records_older_than_maximum_record_age_are_given_up_on(lam: Any, squall: Any, make_function: Any) -> None:
    """MaximumRecordAgeInSeconds cannot be set below 60 s, so this test waits a minute."""
    kinesis = squall.client("kinesis")
    source, sink = setup(kinesis, make_function, "aging")
    make_stream(kinesis, "aging-dlq-sink")
    dlq_arn = make_function("aging-dlq", make_zip({"app.py": _FAILURE_COPY}), Timeout=10)["FunctionArn"]
    mapping = lam.create_event_source_mapping(
        EventSourceArn=source,
        FunctionName="aging",
        StartingPosition="LATEST",
        MaximumRecordAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    )
    time.sleep(1.5)
    kinesis.put_records(
        StreamName="aging-src",
        Records=[{"Data": b"poison-old", "PartitionKey": "k"}, {"Data": b"fresh-enough", "PartitionKey": "k"}],
    )
    failures = sink_notes(kinesis, "aging-dlq-sink", 1, timeout=90)
    assert len(failures) == 1
    record = json.loads(failures[0]["data"])
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["KinesisBatchInfo"]["batchSize"] == 2 and record["requestContext"]["approximateInvokeCount"] > 1
    # The whole failing batch was given up on; the shard moved on: new records flow again.
    kinesis.put_record(StreamName="aging-src", Data=b"after", PartitionKey="k")
    assert [n["data"] for n in sink_notes(kinesis, sink, 1)] == ["after"]
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


_FAILURE_COPY = """
import boto3, json

def handler(event, context):
    boto3.client("kinesis").put_record(StreamName="aging-dlq-sink", Data=json.dumps({"data": json.dumps(event)}),
                                       PartitionKey="f")
"""
