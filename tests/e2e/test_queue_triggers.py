"""Queue-triggered functions: event source mappings on SQS-compatible queues, against a live server."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.conftest import make_zip

from .conftest import error_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Copies what it got to the SINK queue; "poison" bodies fail the batch, "flaky" ones fail on their
#: first receive (reported as a partial batch failure).
RELAY = """
import json, os
import boto3

sqs = boto3.client("sqs")
SINK = sqs.get_queue_url(QueueName=os.environ["SINK"])["QueueUrl"]

def handler(event, context):
    failures = []
    for record in event["Records"]:
        body = record["body"]
        if body.startswith("poison"):
            raise ValueError("poison " + body)
        count = int(record["attributes"]["ApproximateReceiveCount"])
        if body.startswith("flaky") and count == 1:
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        note = {"body": body, "count": count, "batch": len(event["Records"]), "record": record}
        sqs.send_message(QueueUrl=SINK, MessageBody=json.dumps(note))
    return {"batchItemFailures": failures}
"""


@pytest.fixture
def sqs(squall: Any) -> Any:
    return squall.client("sqs")


def queue(sqs: Any, name: str, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain(sqs: Any, url: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(notes) < count and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            notes.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return notes


def counts(sqs: Any, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def relay(make_function: Any, name: str, sink: str, **kwargs: Any) -> None:
    make_function(name, make_zip({"app.py": RELAY}), Environment={"Variables": {"SINK": sink}}, **kwargs)


def test_messages_reach_the_function_in_batches_and_leave_the_queue(lam: Any, sqs: Any, make_function: Any) -> None:
    url, arn = queue(sqs, "orders")
    sink, _ = queue(sqs, "orders-sink")
    relay(make_function, "orders-fn", "orders-sink")
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="orders-fn", BatchSize=5)
    assert mapping["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert mapping["BatchSize"] == 5 and mapping["StateTransitionReason"] == "USER_INITIATED"
    assert "StartingPosition" not in mapping and "ParallelizationFactor" not in mapping
    for start in range(0, 20, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": f"order-{i:02d}",
                    "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "order"}},
                }
                for i in range(start, start + 10)
            ],
        )
    notes = drain(sqs, sink, 20)
    assert sorted(n["body"] for n in notes) == [f"order-{i:02d}" for i in range(20)]
    assert all(n["batch"] <= 5 and n["count"] == 1 for n in notes)
    record = notes[0]["record"]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "order",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert "md5OfMessageAttributes" in record
    time.sleep(0.5)
    assert counts(sqs, url) == (0, 0)  # handled messages are deleted
    got = lam.get_event_source_mapping(UUID=mapping["UUID"])
    assert got["State"] == "Enabled" and "LastProcessingResult" not in got  # a stream-only member, as on AWS
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_failures_return_to_the_queue_and_redrive_to_the_dead_letter_queue(
    lam: Any, sqs: Any, make_function: Any
) -> None:
    dlq_url, dlq_arn = queue(sqs, "jobs-dlq")
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    # A 3 s timeout, so that a loaded machine's slow cold start does not fail "fine" too; no longer
    # than the visibility timeout, which would otherwise be stretched to timeout + 30 s (Lambda's rule).
    url, arn = queue(sqs, "jobs", VisibilityTimeout="3", RedrivePolicy=policy)
    sink, _ = queue(sqs, "jobs-sink")
    relay(make_function, "jobs-fn", "jobs-sink", Timeout=3)
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="jobs-fn", BatchSize=1)
    sqs.send_message(QueueUrl=url, MessageBody="poison-1")
    sqs.send_message(QueueUrl=url, MessageBody="fine")
    assert [n["body"] for n in drain(sqs, sink, 1)] == ["fine"]
    deadline = time.monotonic() + 30
    moved: list[dict[str, Any]] = []
    while not moved and time.monotonic() < deadline:
        moved = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1, AttributeNames=["All"]).get("Messages", [])
    assert [m["Body"] for m in moved] == ["poison-1"]  # tried twice (maxReceiveCount), then redriven
    assert moved[0]["Attributes"]["DeadLetterQueueSourceArn"] == arn
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_partial_batch_failures_retry_only_what_failed(lam: Any, sqs: Any, make_function: Any) -> None:
    # Long enough that a loaded machine still deletes what succeeded before it would reappear.
    url, arn = queue(sqs, "partial-q", VisibilityTimeout="4")
    sink, _ = queue(sqs, "partial-sink")
    relay(make_function, "partial-fn", "partial-sink", Timeout=3)
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="partial-fn", BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"]
    )
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(["a", "flaky-b", "c"])]
    )
    notes = drain(sqs, sink, 3)
    assert {n["body"]: n["count"] for n in notes} == {"a": 1, "c": 1, "flaky-b": 2}  # only flaky-b came back
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_filtered_out_messages_are_deleted_without_invoking(lam: Any, sqs: Any, make_function: Any) -> None:
    url, arn = queue(sqs, "filtered-q")
    sink, _ = queue(sqs, "filtered-sink")
    relay(make_function, "filtered-fn", "filtered-sink")
    pattern = json.dumps({"body": {"kind": ["keep"]}})
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="filtered-fn", FilterCriteria={"Filters": [{"Pattern": pattern}]}
    )
    for body in ({"kind": "drop"}, {"kind": "keep", "n": 1}, "plain text"):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body) if isinstance(body, dict) else body)
    notes = drain(sqs, sink, 1)
    time.sleep(1)
    notes += drain(sqs, sink, 1, timeout=1)
    assert [json.loads(n["body"]) for n in notes] == [{"kind": "keep", "n": 1}]
    assert counts(sqs, url) == (0, 0)
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_fifo_queues_keep_order_per_group(lam: Any, sqs: Any, make_function: Any) -> None:
    url, arn = queue(sqs, "ledger.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    sink, _ = queue(sqs, "ledger-sink")
    relay(make_function, "ledger-fn", "ledger-sink")
    for i in range(12):
        sqs.send_message(QueueUrl=url, MessageBody=f"{'ab'[i % 2]}-{i:02d}", MessageGroupId="ab"[i % 2])
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="ledger-fn", BatchSize=3)
    notes = drain(sqs, sink, 12)
    for group in "ab":
        seen = [n["body"] for n in notes if n["body"].startswith(group)]
        assert seen == sorted(seen) and len(seen) == 6
    assert all("MessageGroupId" in n["record"]["attributes"] for n in notes)
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_queue_mapping_validation_and_updates(lam: Any, sqs: Any, make_function: Any, squall: Any) -> None:
    _, arn = queue(sqs, "checked-q")
    _, fifo_arn = queue(sqs, "checked.fifo", FifoQueue="true")
    relay(make_function, "checked-q-fn", "unused")
    cases = [
        ({"EventSourceArn": arn, "StartingPosition": "LATEST"}, "StartingPosition is not valid for SQS event sources."),
        (
            {"EventSourceArn": arn, "BatchSize": 20},
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
        ),
        ({"EventSourceArn": fifo_arn, "BatchSize": 20, "MaximumBatchingWindowInSeconds": 1}, None),
        ({"EventSourceArn": arn.replace("checked-q", "nope")}, None),
    ]
    for kwargs, message in cases:
        code, text, status, _ = error_of(lam.create_event_source_mapping, FunctionName="checked-q-fn", **kwargs)
        assert (code, status) == ("InvalidParameterValueException", 400), kwargs
        if message is not None:
            assert text == message
    unchecked = squall.client("lambda", parameter_validation=False)  # botocore refuses 1 itself
    code, _, status, _ = error_of(
        unchecked.create_event_source_mapping,
        EventSourceArn=arn,
        FunctionName="checked-q-fn",
        ScalingConfig={"MaximumConcurrency": 1},
    )
    assert (code, status) == ("ValidationException", 400)
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName="checked-q-fn",
        BatchSize=100,
        MaximumBatchingWindowInSeconds=2,
        ScalingConfig={"MaximumConcurrency": 5},
    )
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 5} and mapping["BatchSize"] == 100
    updated = lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False, BatchSize=10)
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 202
    got = lam.get_event_source_mapping(UUID=mapping["UUID"])
    assert got["State"] == "Disabled" and got["BatchSize"] == 10
    assert [m["UUID"] for m in lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]] == [
        mapping["UUID"]
    ]
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
