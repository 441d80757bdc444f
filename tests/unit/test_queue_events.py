"""Squall's SQS events against AWS's own sample and an independent validator."""

import base64
import hashlib
import json
import os

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel
from hypothesis import given
from hypothesis import strategies as st

from squall.runtime.bootstrap import batch_events
from squall.runtime.bootstrap.batch_events import sqs_shape
from squall.services.queues.events import sqs_batch, sqs_event
from squall.services.queues.models import Received
from squall.sources.queues import sqs_view
from tests.unit.test_stream_events import SAMPLES, shape


def message(**extra: object) -> Received:
    fields: dict[str, object] = {
        "message_id": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receipt_handle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": "Message Body",
        "attributes": {
            "Attribute1": {"DataType": "String", "StringValue": "AttributeValue1"},
            "Attribute2": {"DataType": "Number", "StringValue": "123"},
            "Attribute3": {"DataType": "Binary", "BinaryValue": "MTEwMA=="},
        },
        "system_attributes": {},
        "sent": 1520621625.029,
        "receive_count": 2,
        "first_receive": 1520621634.884,
        "group_id": None,
        "dedup_id": None,
        "sequence_number": None,
        "sender_id": "AROAIWPX5BD2BHG722MW4:sender",
        "dlq_source": None,
    }
    fields.update(extra)
    return Received(**fields)  # type: ignore[arg-type]


def test_sqs_event_matches_the_aws_sample_and_parses() -> None:
    path = SAMPLES / "aws-lambda-go" / "sqs-event.json"
    if not path.exists() and not os.environ.get("CI"):
        pytest.skip(f"no sample at {path}")
    sample = json.loads(path.read_text())
    event = sqs_event([message()], "arn:aws:sqs:us-west-2:123456789012:SQSQueue", "us-west-2")
    record, expected = event["Records"][0], sample["Records"][0]
    assert set(record) == set(expected)
    assert shape(record["attributes"]) == shape(expected["attributes"])
    assert record["attributes"]["SentTimestamp"] == "1520621625029"
    assert record["md5OfBody"] == hashlib.md5(b"Message Body").hexdigest()  # the sample's own is made up
    for name, value in record["messageAttributes"].items():
        assert set(value) <= set(expected["messageAttributes"][name])
        assert value["dataType"] == expected["messageAttributes"][name]["dataType"]
    SqsModel(**event)


def test_fifo_attributes_and_no_attribute_digest_without_attributes() -> None:
    record = sqs_event(
        [message(attributes={}, group_id="g", dedup_id="d", sequence_number="18849496460467696128")],
        "arn:aws:sqs:us-east-1:1:q.fifo",
        "us-east-1",
    )["Records"][0]
    assert record["attributes"]["MessageGroupId"] == "g"
    assert record["attributes"]["MessageDeduplicationId"] == "d"
    assert record["attributes"]["SequenceNumber"] == "18849496460467696128"
    assert "md5OfMessageAttributes" not in record and record["messageAttributes"] == {}


def test_filters_see_json_bodies_as_json() -> None:
    assert sqs_view({"body": '{"a": 1}'})["body"] == {"a": 1}
    assert sqs_view({"body": "plain"})["body"] == "plain"


ARN = "arn:aws:sqs:eu-west-1:123456789012:q.fifo"
attribute_values = st.one_of(
    st.builds(lambda t, v: {"DataType": t, "StringValue": v}, st.sampled_from(["String", "Number.int"]), st.text()),
    st.builds(lambda v: {"DataType": "Binary", "BinaryValue": base64.b64encode(v).decode()}, st.binary(max_size=20)),
)
messages = st.builds(
    message,
    message_id=st.uuids().map(str),
    body=st.text(min_size=1),
    attributes=st.dictionaries(st.text(min_size=1, max_size=10), attribute_values, max_size=3),
    system_attributes=st.one_of(st.just({}), st.just({"AWSTraceHeader": {"StringValue": "Root=1-abc"}})),
    sent=st.floats(min_value=0, max_value=4e9),
    receive_count=st.integers(min_value=1, max_value=1000),
    group_id=st.one_of(st.none(), st.text(min_size=1, max_size=5)),
    dedup_id=st.one_of(st.none(), st.text(min_size=1, max_size=5)),
    sequence_number=st.one_of(st.none(), st.just("18849496460467696128")),
    dlq_source=st.one_of(st.none(), st.just("arn:aws:sqs:eu-west-1:123456789012:source")),
)


@given(st.lists(messages, min_size=1, max_size=10))
def test_the_sandbox_builds_from_rows_the_event_the_server_would(batch: list[Received]) -> None:
    """What the queue poller sends (rows + shape) becomes, in the sandbox, the very event the
    server builds itself, digests included."""
    body, rows_shape = sqs_batch(batch), sqs_shape(ARN, "eu-west-1")
    event = batch_events.event(rows_shape, body)
    assert event == sqs_event(batch, ARN, "eu-west-1")
    assert json.loads(batch_events.event_json(rows_shape, body)) == event
    for record, sent in zip(event["Records"], batch, strict=True):
        assert record["md5OfBody"] == hashlib.md5(sent.body.encode()).hexdigest()
        assert ("md5OfMessageAttributes" in record) == bool(sent.attributes)
