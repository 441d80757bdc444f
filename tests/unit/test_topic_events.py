"""Squall's SNS documents against AWS's samples and powertools' independent SnsModel."""

import base64
import json
import os
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import SnsModel

from squall.services.topics.events import confirmation, lambda_event, notification
from squall.services.topics.messages import Message, timestamp

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "events"  # shared/ lies beside the checkout
TOPIC = "arn:aws:sns:us-east-1:000000000000:alarms"
SUB = f"{TOPIC}:9f0c3c1e-4ab7-4a8c-9d0c-1b0e0d3e6f11"
URL = "http://127.0.0.1:8990"


def setup_module() -> None:
    if not SAMPLES.is_dir() and not os.environ.get("CI"):
        pytest.skip(f"AWS's sample events are not at {SAMPLES}")


def shape(value: object) -> object:
    """Keys and value types, recursively: what must match between two events."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def message(**overrides: object) -> Message:
    fields: dict[str, object] = {
        "message_id": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "topic_arn": TOPIC,
        "message": "Hello from SNS!",
        "subject": "TestInvoke",
        "attributes": {
            "Test": {"DataType": "String", "StringValue": "TestString"},
            "TestBinary": {"DataType": "Binary", "BinaryValue": base64.b64encode(b"\x00\x01").decode()},
        },
        "timestamp": 1433353407.123,
    }
    fields.update(overrides)
    return Message(**fields)  # type: ignore[arg-type]


def test_lambda_event_matches_aws_samples_and_parses() -> None:
    event = lambda_event(message(), SUB, URL)
    for sample_file in ("aws-lambda-go/sns-event.json", "aws-sam-cli-rendered/sns-notification.json"):
        sample = json.loads((SAMPLES / sample_file).read_text())
        assert shape(event) == shape(sample), sample_file
    parsed = SnsModel.model_validate(event)
    record = parsed.Records[0]
    assert record.EventSource == "aws:sns"
    assert record.EventSubscriptionArn == SUB
    assert record.Sns.Message == "Hello from SNS!"
    assert record.Sns.Subject == "TestInvoke"
    assert record.Sns.Timestamp.isoformat().startswith("2015-06-03T17:43:27.123")
    assert record.Sns.MessageAttributes is not None
    assert record.Sns.MessageAttributes["Test"].Value == "TestString"
    assert record.Sns.MessageAttributes["TestBinary"].Type == "Binary"
    assert base64.b64decode(record.Sns.MessageAttributes["TestBinary"].Value) == b"\x00\x01"
    assert str(record.Sns.UnsubscribeUrl).startswith(f"{URL}/?Action=Unsubscribe&SubscriptionArn=")


def test_lambda_event_without_subject_or_attributes_still_parses() -> None:
    event = lambda_event(message(subject=None, attributes={}), SUB, URL)
    sns = event["Records"][0]["Sns"]
    assert sns["Subject"] is None and sns["MessageAttributes"] == {}
    assert SnsModel.model_validate(event).Records[0].Sns.Subject is None


def test_lambda_event_takes_the_lambda_entry_of_a_json_structure() -> None:
    structured = message(structure={"default": "plain", "lambda": "for functions", "http": "for hooks"})
    assert lambda_event(structured, SUB, URL)["Records"][0]["Sns"]["Message"] == "for functions"
    assert notification(structured, "http", SUB, URL)["Message"] == "for hooks"
    assert notification(structured, "sqs", SUB, URL)["Message"] == "plain"


def test_http_notification_document() -> None:
    document = notification(message(), "http", SUB, URL)
    assert list(document) == [
        "Type",
        "MessageId",
        "TopicArn",
        "Subject",
        "Message",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
        "UnsubscribeURL",
        "MessageAttributes",
    ]
    assert document["Timestamp"] == "2015-06-03T17:43:27.123Z"
    assert document["MessageAttributes"]["Test"] == {"Type": "String", "Value": "TestString"}
    bare = notification(message(subject=None, attributes={}), "http", SUB, URL)
    assert "Subject" not in bare and "MessageAttributes" not in bare


def test_confirmation_document() -> None:
    document = confirmation(TOPIC, "ab" * 64, "m-1", 0.0, URL)
    assert document["Type"] == "SubscriptionConfirmation"
    assert document["Token"] == "ab" * 64
    assert document["SubscribeURL"].startswith(f"{URL}/?Action=ConfirmSubscription&TopicArn=")
    assert document["Timestamp"] == timestamp(0.0) == "1970-01-01T00:00:00.000Z"
