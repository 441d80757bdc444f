"""Queues as destinations: async OnSuccess/OnFailure records, dead-letter queues of async events, and
the OnFailure records of stream mappings, all landing in SQS-compatible queues."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_zip

from .conftest import ROLE, SquallServer
from .test_async_invoke import WORKER, create

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    """Lambda's async retry delays shrunk a hundredfold, as in test_async_invoke."""
    srv = SquallServer(Path(tmp_path_factory.mktemp("qdest")) / "data", ["--async-retry-scale", "0.01"])
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(server: SquallServer) -> Any:
    return server.client("lambda")


@pytest.fixture(scope="module")
def kinesis(server: SquallServer) -> Any:
    return server.client("kinesis")


@pytest.fixture(scope="module")
def sqs(server: SquallServer) -> Any:
    return server.client("sqs")


def make_queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def wait_messages(sqs: Any, url: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", [])
    return got


def test_async_outcomes_go_to_queues(lam: Any, kinesis: Any, sqs: Any) -> None:
    kinesis.create_stream(StreamName="qdest-notes", ShardCount=1)
    create(lam, "qdest", WORKER, "qdest-notes")
    ok_url, ok_arn = make_queue(sqs, "qdest-success")
    bad_url, bad_arn = make_queue(sqs, "qdest-failure")
    lam.put_function_event_invoke_config(
        FunctionName="qdest",
        MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": ok_arn}, "OnFailure": {"Destination": bad_arn}},
    )
    lam.invoke(FunctionName="qdest", InvocationType="Event", Payload=json.dumps({"n": 21}))
    lam.invoke(FunctionName="qdest", InvocationType="Event", Payload=json.dumps({"n": 1, "fail": True}))
    (success,) = wait_messages(sqs, ok_url, 1)
    (failure,) = wait_messages(sqs, bad_url, 1)
    record = json.loads(success["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestPayload"] == {"n": 21} and record["responsePayload"] == {"doubled": 42}
    record = json.loads(failure["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorMessage"] == "boom 1"


def test_failed_async_events_land_in_the_dead_letter_queue(lam: Any, kinesis: Any, sqs: Any) -> None:
    url, arn = make_queue(sqs, "dlq-target")
    kinesis.create_stream(StreamName="dlq-notes", ShardCount=1)
    create(lam, "dlq-fn", WORKER, "dlq-notes", DeadLetterConfig={"TargetArn": arn})
    assert lam.get_function_configuration(FunctionName="dlq-fn")["DeadLetterConfig"] == {"TargetArn": arn}
    lam.put_function_event_invoke_config(FunctionName="dlq-fn", MaximumRetryAttempts=1)
    event = {"n": 7, "fail": True}
    response = lam.invoke(FunctionName="dlq-fn", InvocationType="Event", Payload=json.dumps(event))
    request_id = response["ResponseMetadata"]["RequestId"]
    (message,) = wait_messages(sqs, url, 1)
    assert json.loads(message["Body"]) == event  # the original event, not a record
    attributes = message["MessageAttributes"]
    assert attributes["RequestID"] == {"StringValue": request_id, "DataType": "String"}
    assert attributes["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
    assert attributes["ErrorMessage"] == {"StringValue": "boom 7", "DataType": "String"}
    lam.invoke(FunctionName="dlq-fn", InvocationType="Event", Payload=json.dumps({"n": 8}))
    time.sleep(1.5)
    assert wait_messages(sqs, url, 1, timeout=1) == []  # a success sends nothing there


def test_stream_mapping_failures_go_to_a_queue(lam: Any, kinesis: Any, sqs: Any) -> None:
    url, arn = make_queue(sqs, "stream-failures")
    kinesis.create_stream(StreamName="qpoison", ShardCount=1)
    source = kinesis.describe_stream_summary(StreamName="qpoison")["StreamDescriptionSummary"]["StreamARN"]
    lam.create_function(
        FunctionName="qpoison-fn",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": "def handler(event, context):\n    raise ValueError('no')\n"})},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="qpoison-fn")
    mapping = lam.create_event_source_mapping(
        EventSourceArn=source,
        FunctionName="qpoison-fn",
        StartingPosition="TRIM_HORIZON",
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    kinesis.put_records(StreamName="qpoison", Records=[{"Data": b"x", "PartitionKey": "k"}] * 3)
    (message,) = wait_messages(sqs, url, 1)
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["KinesisBatchInfo"]["batchSize"] == 3 and record["KinesisBatchInfo"]["streamArn"] == source
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


@pytest.fixture(scope="module")
def sns(server: SquallServer) -> Any:
    return server.client("sns")


def test_topics_carry_records_and_dead_letters(lam: Any, kinesis: Any, sqs: Any, sns: Any) -> None:
    """A topic as OnFailure destination and as dead-letter target, fanning out to a queue."""
    topic = sns.create_topic(Name="failures")["TopicArn"]
    raw_url, raw_arn = make_queue(sqs, "failures-raw")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=raw_arn, Attributes={"RawMessageDelivery": "true"})
    kinesis.create_stream(StreamName="tdest-notes", ShardCount=1)
    create(lam, "tdest", WORKER, "tdest-notes", DeadLetterConfig={"TargetArn": topic})
    lam.put_function_event_invoke_config(
        FunctionName="tdest", MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": topic}}
    )
    event = {"n": 3, "fail": True}
    lam.invoke(FunctionName="tdest", InvocationType="Event", Payload=json.dumps(event))
    messages = wait_messages(sqs, raw_url, 2)
    bodies = [json.loads(m["Body"]) for m in messages]
    assert event in bodies  # the dead letter: the event itself
    (record,) = [b for b in bodies if b != event]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["responsePayload"]["errorMessage"] == "boom 3"
    dead = next(m for m in messages if json.loads(m["Body"]) == event)
    assert dead["MessageAttributes"]["ErrorMessage"]["StringValue"] == "boom 3"
