"""The SQS-compatible queue service through boto3's sqs client (JSON protocol) and the AWS CLI."""

from __future__ import annotations

import hashlib
import json
import signal
import struct
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .conftest import SquallServer
from .conftest import error_of as aws_error

pytestmark = pytest.mark.e2e

ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def sqs(squall: SquallServer) -> Any:
    return squall.client("sqs")


def error(call: Any, **kwargs: Any) -> tuple[str, str, int, str]:
    """(Error.Code, message, status, QueryErrorCode) of the ClientError ``call`` must raise."""
    code, message, status, response = aws_error(call, **kwargs)
    return code, message, status, response["Error"].get("QueryErrorCode", "")


def attributes_md5(attrs: dict[str, dict[str, Any]]) -> str:
    """SQS's digest of message attributes, written out independently of Squall's code."""
    out = b""
    for name in sorted(attrs):
        value = attrs[name]
        out += struct.pack(">I", len(name.encode())) + name.encode()
        out += struct.pack(">I", len(value["DataType"].encode())) + value["DataType"].encode()
        if "StringValue" in value:
            raw = value["StringValue"].encode()
            out += b"\x01" + struct.pack(">I", len(raw)) + raw
        else:
            out += b"\x02" + struct.pack(">I", len(value["BinaryValue"])) + value["BinaryValue"]
    return hashlib.md5(out).hexdigest()


def test_queue_lifecycle_attributes_and_tags(squall: SquallServer, sqs: Any) -> None:
    url = sqs.create_queue(QueueName="life", Attributes={"DelaySeconds": "2"}, tags={"team": "a"})["QueueUrl"]
    assert url == f"http://127.0.0.1:{squall.port}/{ACCOUNT}/life"
    assert sqs.create_queue(QueueName="life", Attributes={"DelaySeconds": "2"})["QueueUrl"] == url
    code, message, status, query_code = error(sqs.create_queue, QueueName="life", Attributes={"DelaySeconds": "3"})
    assert (code, status, query_code) == ("QueueAlreadyExists", 400, "QueueNameExists")
    assert message == "A queue already exists with the same name and a different value for attribute DelaySeconds"
    assert sqs.get_queue_url(QueueName="life")["QueueUrl"] == url

    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["QueueArn"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:life"
    assert attrs["DelaySeconds"] == "2" and attrs["VisibilityTimeout"] == "30"
    assert attrs["MaximumMessageSize"] == "262144" and attrs["MessageRetentionPeriod"] == "345600"
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ReceiveMessageWaitTimeSeconds"] == "0"
    assert "FifoQueue" not in attrs and "RedrivePolicy" not in attrs
    assert abs(int(attrs["CreatedTimestamp"]) - time.time()) < 60
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "45", "DelaySeconds": "0"})
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"] == {
        "VisibilityTimeout": "45"
    }
    code, message, _, _ = error(sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["Colour"])
    assert (code, message) == ("InvalidAttributeName", "Unknown Attribute Colour.")
    code, _, _, _ = error(sqs.set_queue_attributes, QueueUrl=url, Attributes={"VisibilityTimeout": "43201"})
    assert code == "InvalidAttributeValue"

    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a"}
    sqs.tag_queue(QueueUrl=url, Tags={"env": "dev", "team": "b"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["env"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "b"}

    sqs.delete_queue(QueueUrl=url)
    for call, kwargs in ((sqs.get_queue_url, {"QueueName": "life"}), (sqs.delete_queue, {"QueueUrl": url})):
        assert error(call, **kwargs) == (
            "AWS.SimpleQueueService.NonExistentQueue",
            "The specified queue does not exist.",
            400,
            "QueueDoesNotExist",
        )
    # The modelled exception class matches too.
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="life")


def test_list_queues_by_prefix_and_pages(sqs: Any) -> None:
    names = [f"page-{i}" for i in range(5)]
    for name in names:
        sqs.create_queue(QueueName=name)
    listed = sqs.list_queues(QueueNamePrefix="page-")["QueueUrls"]
    assert [u.rsplit("/", 1)[1] for u in listed] == names
    seen = []
    for page in sqs.get_paginator("list_queues").paginate(QueueNamePrefix="page-", PaginationConfig={"PageSize": 2}):
        assert len(page["QueueUrls"]) <= 2
        seen += [u.rsplit("/", 1)[1] for u in page["QueueUrls"]]
    assert seen == names
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix="nothing-like-this")
    for name in names:
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])


def test_send_receive_delete_with_checksums_and_attributes(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="basic")["QueueUrl"]
    message_attrs = {
        "General": {"DataType": "String", "StringValue": "Kenobi"},
        "Hello": {"DataType": "String", "StringValue": "There"},
        "Help.Me": {"DataType": "String", "StringValue": "Me"},
        "Count": {"DataType": "Number", "StringValue": "42"},
        "Blob": {"DataType": "Binary", "BinaryValue": b"\x00\xffbin"},
    }
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody="msg",
        MessageAttributes=message_attrs,
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-abc"}},
    )
    assert sent["MD5OfMessageBody"] == "6e2baaf3b97dbeef01c0043275f9a0e7"
    assert sent["MD5OfMessageAttributes"] == attributes_md5(message_attrs)
    assert "MD5OfMessageSystemAttributes" in sent
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "1"}

    got = sqs.receive_message(
        QueueUrl=url, MessageAttributeNames=["He.*"], MessageSystemAttributeNames=["All"], VisibilityTimeout=0
    )["Messages"]
    (msg,) = got
    assert msg["MessageId"] == sent["MessageId"] and msg["Body"] == "msg"
    assert msg["MD5OfBody"] == hashlib.md5(b"msg").hexdigest()
    assert set(msg["MessageAttributes"]) == {"Hello", "Help.Me"}
    # Same subset as real SQS recorded: its digest is 83fee93c...
    assert msg["MD5OfMessageAttributes"] == "83fee93c1bcd8b9a5a923ffacdc636c7"
    system = msg["Attributes"]
    assert system["ApproximateReceiveCount"] == "1" and system["SenderId"] == ACCOUNT
    assert system["AWSTraceHeader"] == "Root=1-abc"
    assert abs(int(system["SentTimestamp"]) / 1000 - time.time()) < 60
    assert int(system["ApproximateFirstReceiveTimestamp"]) >= int(system["SentTimestamp"])

    again = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["SentTimestamp"])
    (msg2,) = again["Messages"]
    assert msg2["MessageAttributes"]["Blob"] == {"DataType": "Binary", "BinaryValue": b"\x00\xffbin"}
    assert msg2["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert list(msg2["Attributes"]) == ["SentTimestamp"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=msg2["ReceiptHandle"])
    assert sqs.receive_message(QueueUrl=url)["Messages"] == []
    sqs.delete_queue(QueueUrl=url)


def test_long_poll_returns_as_soon_as_a_message_is_sent(squall: SquallServer, sqs: Any) -> None:
    url = sqs.create_queue(QueueName="poll")["QueueUrl"]
    started = time.monotonic()
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"] == []
    assert time.monotonic() - started >= 0.9

    poller = squall.client("sqs")
    result: dict[str, Any] = {}

    def poll() -> None:
        t0 = time.monotonic()
        result["response"] = poller.receive_message(QueueUrl=url, WaitTimeSeconds=20)
        result["elapsed"] = time.monotonic() - t0

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.5)
    sent_at = time.monotonic()
    sqs.send_message(QueueUrl=url, MessageBody="wake up")
    thread.join(30)
    assert [m["Body"] for m in result["response"]["Messages"]] == ["wake up"]
    assert time.monotonic() - sent_at < 5 and result["elapsed"] < 10
    # The queue's ReceiveMessageWaitTimeSeconds applies when the request does not say.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"ReceiveMessageWaitTimeSeconds": "1"})
    started = time.monotonic()
    assert sqs.receive_message(QueueUrl=url)["Messages"] == []
    assert time.monotonic() - started >= 0.9
    sqs.delete_queue(QueueUrl=url)


def test_visibility_timeout_redelivery_and_change(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="vis", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="again")
    (first,) = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    assert sqs.receive_message(QueueUrl=url)["Messages"] == []
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1" and attrs["ApproximateNumberOfMessages"] == "0"
    # A long poll ends when the visibility timeout does, not at its own deadline.
    started = time.monotonic()
    (second,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10, AttributeNames=["All"])["Messages"]
    assert time.monotonic() - started < 5
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    first_receive = first["Attributes"]["ApproximateFirstReceiveTimestamp"]
    assert second["Attributes"]["ApproximateFirstReceiveTimestamp"] == first_receive

    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0)
    (third,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=60, AttributeNames=["All"])["Messages"]
    assert third["Attributes"]["ApproximateReceiveCount"] == "3"
    code, message, status, _ = error(
        sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=third["ReceiptHandle"], VisibilityTimeout=43201
    )
    assert (code, status) == ("InvalidParameterValue", 400) and "VisibilityTimeout" in message
    # An older receipt handle still deletes the message in a standard queue.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"])
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0" and attrs["ApproximateNumberOfMessages"] == "0"
    code, message, status, query_code = error(sqs.delete_message, QueueUrl=url, ReceiptHandle="not-a-handle")
    assert (code, status, query_code) == ("ReceiptHandleIsInvalid", 400, "ReceiptHandleIsInvalid")
    assert message == 'The input receipt handle "not-a-handle" is not a valid receipt handle.'
    sqs.delete_queue(QueueUrl=url)


def test_delay_seconds(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="delayed")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="soon", DelaySeconds=1)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attrs["Attributes"] == {"ApproximateNumberOfMessagesDelayed": "1"}
    assert sqs.receive_message(QueueUrl=url)["Messages"] == []
    started = time.monotonic()
    (msg,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    assert msg["Body"] == "soon" and time.monotonic() - started < 4
    code, _, _, _ = error(sqs.send_message, QueueUrl=url, MessageBody="x", DelaySeconds=901)
    assert code == "InvalidParameterValue"
    sqs.delete_queue(QueueUrl=url)


def test_dead_letter_queue_redrive(sqs: Any) -> None:
    dlq_url = sqs.create_queue(QueueName="dead")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    url = sqs.create_queue(
        QueueName="source",
        Attributes={"RedrivePolicy": policy, "RedriveAllowPolicy": '{"redrivePermission":"allowAll"}'},
    )["QueueUrl"]
    stored = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy", "RedriveAllowPolicy"])
    assert json.loads(stored["Attributes"]["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}
    assert stored["Attributes"]["RedriveAllowPolicy"] == '{"redrivePermission":"allowAll"}'
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    sqs.send_message(QueueUrl=url, MessageBody="fine")
    for _ in range(2):
        bodies = {
            m["Body"]
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
        }
        assert bodies == {"poison", "fine"}
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"] == []
    moved = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
    assert sorted(m["Body"] for m in moved["Messages"]) == ["fine", "poison"]
    assert all(m["Attributes"]["DeadLetterQueueSourceArn"].endswith(":source") for m in moved["Messages"])
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq_url)["queueUrls"] == [url]

    bad = json.dumps({"deadLetterTargetArn": "dummy", "maxReceiveCount": 42})
    code, message, status, query_code = error(sqs.set_queue_attributes, QueueUrl=url, Attributes={"RedrivePolicy": bad})
    assert (code, status, query_code) == ("InvalidParameterValue", 400, "InvalidParameterValueException")
    assert (
        message == f"Value {bad} for parameter RedrivePolicy is invalid. Reason: Invalid value for deadLetterTargetArn."
    )
    for queue in (url, dlq_url):
        sqs.delete_queue(QueueUrl=queue)


def test_fifo_order_deduplication_and_groups(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="orders.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["FifoQueue"] == "true" and attrs["ContentBasedDeduplication"] == "false"
    sent = [
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=body)
        for body, group in (("a1", "a"), ("b1", "b"), ("a2", "a"), ("a3", "a"))
    ]
    numbers = [int(s["SequenceNumber"]) for s in sent]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4
    duplicate = sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="a", MessageDeduplicationId="a1")
    assert duplicate["MessageId"] == sent[0]["MessageId"]

    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in first] == ["a1", "b1"]
    assert first[0]["Attributes"]["MessageGroupId"] == "a"
    assert first[0]["Attributes"]["MessageDeduplicationId"] == "a1"
    assert first[0]["Attributes"]["SequenceNumber"] == sent[0]["SequenceNumber"]
    # Both groups have a batch in flight: nothing more until they are deleted.
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"] == []
    sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(first)]
    )
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in rest] == ["a2", "a3"]  # the duplicate was never stored

    code, message, _, query_code = error(sqs.send_message, QueueUrl=url, MessageBody="x", MessageGroupId="a")
    assert (code, query_code) == ("InvalidParameterValue", "InvalidParameterValueException")
    assert message == (
        "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly"
    )
    code, message, _, query_code = error(sqs.send_message, QueueUrl=url, MessageBody="x", MessageDeduplicationId="x")
    assert (code, message, query_code) == (
        "MissingParameter",
        "The request must contain the parameter MessageGroupId.",
        "MissingRequiredParameterException",
    )
    code, message, _, _ = error(
        sqs.send_message, QueueUrl=url, MessageBody="x", MessageGroupId="a", MessageDeduplicationId="y", DelaySeconds=2
    )
    assert message == (
        "Value 2 for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid "
        "for this queue type."
    )

    code, message, _, _ = error(
        sqs.send_message_batch,
        QueueUrl=url,
        Entries=[
            {"Id": "1", "MessageBody": "x", "MessageGroupId": "a", "MessageDeduplicationId": "x"},
            {"Id": "2", "MessageBody": "y", "MessageDeduplicationId": "y"},
        ],
    )
    assert (code, message) == ("InvalidParameterValue", "The request must contain the parameter MessageGroupId.")
    batch = sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "d1", "MessageGroupId": "d", "MessageDeduplicationId": "d1"}]
    )
    assert int(batch["Successful"][0]["SequenceNumber"]) > numbers[-1]

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"ContentBasedDeduplication": "true"})
    one = sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="c")
    two = sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="c")
    assert one["MessageId"] == two["MessageId"]
    code, _, _, _ = error(
        sqs.create_queue,
        QueueName="orders.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"},
    )
    assert code == "QueueAlreadyExists"
    code, _, _, _ = error(sqs.create_queue, QueueName="nofifo", Attributes={"FifoQueue": "true"})
    assert code == "InvalidParameterValue"
    # A FIFO receipt handle whose visibility timeout ended has expired.
    (stale,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    handle = stale["ReceiptHandle"]
    code, message, status, query_code = error(sqs.delete_message, QueueUrl=url, ReceiptHandle=handle)
    assert (code, status, query_code) == ("InvalidParameterValue", 400, "InvalidParameterValueException")
    assert message == f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
    sqs.delete_queue(QueueUrl=url)


def test_batches_and_their_errors(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="batch", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    result = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {
                "Id": "ok-1",
                "MessageBody": "one",
                "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}},
            },
            {"Id": "too_big", "MessageBody": "x" * 2000},
            {"Id": "ok-2", "MessageBody": "two", "DelaySeconds": 0},
        ],
    )
    assert [s["Id"] for s in result["Successful"]] == ["ok-1", "ok-2"]
    assert result["Successful"][0]["MD5OfMessageBody"] == hashlib.md5(b"one").hexdigest()
    assert result["Successful"][0]["MD5OfMessageAttributes"] == attributes_md5(
        {"k": {"DataType": "String", "StringValue": "v"}}
    )
    assert result["Failed"] == [
        {
            "Id": "too_big",
            "SenderFault": True,
            "Code": "InvalidParameterValue",
            "Message": "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes.",
        }
    ]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]
    assert sorted(m["Body"] for m in got) == ["one", "two"]
    changed = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "ReceiptHandle": got[0]["ReceiptHandle"], "VisibilityTimeout": 0},
            {"Id": "b", "ReceiptHandle": "bogus", "VisibilityTimeout": 0},
        ],
    )
    assert changed["Successful"] == [{"Id": "a"}]
    assert changed["Failed"][0]["Code"] == "ReceiptHandleIsInvalid" and changed["Failed"][0]["Id"] == "b"
    deleted = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "a", "ReceiptHandle": got[1]["ReceiptHandle"]}, {"Id": "b", "ReceiptHandle": "bogus"}],
    )
    assert deleted["Successful"] == [{"Id": "a"}]
    assert deleted["Failed"] == [
        {
            "Id": "b",
            "SenderFault": True,
            "Code": "ReceiptHandleIsInvalid",
            "Message": 'The input receipt handle "bogus" is not a valid receipt handle.',
        }
    ]

    too_many = [{"Id": str(i), "MessageBody": "m"} for i in range(20)]
    assert error(sqs.send_message_batch, QueueUrl=url, Entries=too_many) == (
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        "Maximum number of entries per request are 10. You have sent 20.",
        400,
        "TooManyEntriesInBatchRequest",
    )
    code, message, _, _ = error(
        sqs.delete_message_batch, QueueUrl=url, Entries=[{"Id": "bad:id", "ReceiptHandle": "x"}]
    )
    assert code == "AWS.SimpleQueueService.InvalidBatchEntryId"
    assert message == (
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
        "It can be at most 80 letters long."
    )
    code, _, _, _ = error(sqs.send_message_batch, QueueUrl=url, Entries=[])
    assert code == "AWS.SimpleQueueService.EmptyBatchRequest"
    twice = [{"Id": "same", "MessageBody": "a"}, {"Id": "same", "MessageBody": "b"}]
    code, _, _, _ = error(sqs.send_message_batch, QueueUrl=url, Entries=twice)
    assert code == "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    sqs.delete_queue(QueueUrl=url)

    url = sqs.create_queue(QueueName="batch-size")["QueueUrl"]
    big = [{"Id": str(i), "MessageBody": "x" * 100_000} for i in range(3)]
    code, message, _, query_code = error(sqs.send_message_batch, QueueUrl=url, Entries=big)
    assert (code, query_code) == ("AWS.SimpleQueueService.BatchRequestTooLong", "BatchRequestTooLong")
    assert message == "Batch requests cannot be longer than 262144 bytes. You have sent 300000 bytes."
    sqs.delete_queue(QueueUrl=url)


def test_message_and_receive_errors(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="errors")["QueueUrl"]
    assert error(sqs.receive_message, QueueUrl=url, MaxNumberOfMessages=11) == (
        "InvalidParameterValue",
        "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.",
        400,
        "InvalidParameterValueException",
    )
    code, _, _, _ = error(sqs.receive_message, QueueUrl=url, WaitTimeSeconds=21)
    assert code == "InvalidParameterValue"
    code, message, _, _ = error(sqs.send_message, QueueUrl=url, MessageBody="x" * 262_145)
    assert (code, message) == (
        "InvalidParameterValue",
        "One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes.",
    )
    code, _, _, _ = error(sqs.send_message, QueueUrl=url, MessageBody="bell \x07")
    assert code == "InvalidMessageContents"
    code, message, _, _ = error(
        sqs.send_message,
        QueueUrl=url,
        MessageBody="x",
        MessageAttributes={"ErrorDetails": {"DataType": "String", "StringValue": ""}},
    )
    assert message == "Message (user) attribute 'ErrorDetails' must contain a non-empty value of type 'String'."
    code, _, _, _ = error(sqs.send_message, QueueUrl=url, MessageBody="x", MessageDeduplicationId="d")
    assert code == "InvalidParameterValue"
    code, _, _, _ = error(sqs.create_queue, QueueName="bad name!")
    assert code == "InvalidParameterValue"
    code, message, _, _ = error(sqs.create_queue, QueueName="attrs", Attributes={"Colour": "red"})
    assert (code, message) == ("InvalidAttributeName", "Unknown Attribute Colour.")
    code, _, _, _ = error(sqs.create_queue, QueueName="attrs", Attributes={"DelaySeconds": "901"})
    assert code == "InvalidAttributeValue"

    sqs.send_message(QueueUrl=url, MessageBody="gone soon")
    sqs.purge_queue(QueueUrl=url)
    assert sqs.receive_message(QueueUrl=url)["Messages"] == []
    assert error(sqs.purge_queue, QueueUrl=url) == (
        "AWS.SimpleQueueService.PurgeQueueInProgress",
        "Only one PurgeQueue operation on errors is allowed every 60 seconds.",
        403,
        "PurgeQueueInProgress",
    )
    sqs.delete_queue(QueueUrl=url)
    code, _, _, _ = error(sqs.send_message, QueueUrl=url, MessageBody="x")
    assert code == "AWS.SimpleQueueService.NonExistentQueue"
    code, _, status, _ = error(sqs.send_message, QueueUrl=url.rsplit("/", 2)[0] + "/", MessageBody="x")
    assert (code, status) == ("InvalidAddress", 400)


@pytest.mark.slow
def test_messages_and_in_flight_state_survive_a_crash(new_server: Any) -> None:
    server = new_server()
    sqs = server.client("sqs")
    url = sqs.create_queue(QueueName="durable")["QueueUrl"]
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    (held,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=600)["Messages"]
    server.stop(signal.SIGKILL)  # a crash: only what was committed before each answer may count
    server.start()
    sqs = server.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "4" and attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert sorted(bodies) == [f"m{i}" for i in range(5) if f"m{i}" != held["Body"]]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=held["ReceiptHandle"])
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "4"


def test_aws_cli_send_and_receive(squall: SquallServer, sqs: Any) -> None:
    from .test_aws_cli import aws_json

    url = aws_json(squall, "sqs", "create-queue", "--queue-name", "cli-queue")["QueueUrl"]
    sent = aws_json(
        squall,
        "sqs",
        "send-message",
        "--queue-url",
        url,
        "--message-body",
        "from the CLI",
        "--message-attributes",
        json.dumps({"origin": {"DataType": "String", "StringValue": "shell"}}),
    )
    assert sent["MD5OfMessageBody"] == hashlib.md5(b"from the CLI").hexdigest()
    got = aws_json(
        squall,
        "sqs",
        "receive-message",
        "--queue-url",
        url,
        "--message-attribute-names",
        "All",
        "--wait-time-seconds",
        "1",
    )
    (msg,) = got["Messages"]
    assert msg["Body"] == "from the CLI" and msg["MessageId"] == sent["MessageId"]
    assert msg["MessageAttributes"]["origin"]["StringValue"] == "shell"
    assert msg["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    sqs.delete_queue(QueueUrl=url)


def test_binary_attribute_md5_is_over_raw_bytes(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="binary")["QueueUrl"]
    attrs = {"attr1": {"DataType": "Binary", "BinaryValue": b"traceparent\x1e00-01"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="test", MessageAttributes=attrs)
    assert sent["MD5OfMessageAttributes"] == attributes_md5(attrs)
    (msg,) = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["attr1"])["Messages"]
    assert msg["MessageAttributes"] == attrs and msg["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    code, message, _, _ = error(
        sqs.send_message,
        QueueUrl=url,
        MessageBody="x",
        MessageAttributes={"b": {"DataType": "Binary", "BinaryValue": b""}},
    )
    assert (code, message) == (
        "InvalidParameterValue",
        "Message (user) attribute 'b' must contain a non-empty value of type 'Binary'.",
    )
    sqs.delete_queue(QueueUrl=url)


def test_boto3_queue_resource(squall: SquallServer) -> None:
    key, secret = squall.credentials()
    resource = boto3.resource(
        "sqs", endpoint_url=squall.url, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret
    )
    queue = resource.create_queue(QueueName="resource")
    assert resource.get_queue_by_name(QueueName="resource").url == queue.url
    assert queue.attributes["VisibilityTimeout"] == "30"
    queue.send_messages(Entries=[{"Id": str(i), "MessageBody": f"r{i}"} for i in range(3)])
    got = queue.receive_messages(MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert sorted(m.body for m in got) == ["r0", "r1", "r2"]
    for message in got:
        message.delete()
    queue.reload()
    assert queue.attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    queue.delete()
    resource.meta.client.close()


def query_call(squall: SquallServer, params: dict[str, str], path: str = "/") -> tuple[int, ET.Element]:
    """A signed query-protocol request, as SDKs from before SQS's JSON protocol send them."""
    key, secret = squall.credentials()
    request = AWSRequest(
        method="POST",
        url=squall.url + path,
        data=urlencode({**params, "Version": "2012-11-05"}),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials(key, secret), "sqs", "us-east-1").add_auth(request)
    prepared = request.prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    outgoing = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(outgoing, timeout=30) as response:
            return response.status, ET.fromstring(response.read())
    except urllib.error.HTTPError as failure:
        return failure.code, ET.fromstring(failure.read())


def test_legacy_query_protocol(squall: SquallServer) -> None:
    ns = {"q": "http://queue.amazonaws.com/doc/2012-11-05/"}
    status, root = query_call(
        squall,
        {
            "Action": "CreateQueue",
            "QueueName": "legacy",
            "Attribute.1.Name": "VisibilityTimeout",
            "Attribute.1.Value": "40",
            "Tag.1.Key": "team",
            "Tag.1.Value": "old",
        },
    )
    assert status == 200 and root.tag == f"{{{ns['q']}}}CreateQueueResponse"
    url = root.findtext("q:CreateQueueResult/q:QueueUrl", namespaces=ns)
    assert url == f"{squall.url}/{ACCOUNT}/legacy"
    status, root = query_call(
        squall,
        {
            "Action": "SendMessage",
            "QueueUrl": url,
            "MessageBody": "from an old SDK",
            "MessageAttribute.1.Name": "kind",
            "MessageAttribute.1.Value.DataType": "String",
            "MessageAttribute.1.Value.StringValue": "legacy",
        },
    )
    assert status == 200
    result = root.find("q:SendMessageResult", ns)
    assert result is not None
    assert result.findtext("q:MD5OfMessageBody", namespaces=ns) == hashlib.md5(b"from an old SDK").hexdigest()
    assert result.findtext("q:MD5OfMessageAttributes", namespaces=ns) == attributes_md5(
        {"kind": {"DataType": "String", "StringValue": "legacy"}}
    )
    # The queue named by the request's path, as query clients may do.
    status, root = query_call(
        squall,
        {"Action": "ReceiveMessage", "AttributeName.1": "All", "MessageAttributeName.1": "All"},
        path=f"/{ACCOUNT}/legacy",
    )
    (message,) = root.findall("q:ReceiveMessageResult/q:Message", ns)
    assert message.findtext("q:Body", namespaces=ns) == "from an old SDK"
    attributes = {
        a.findtext("q:Name", namespaces=ns): a.findtext("q:Value", namespaces=ns)
        for a in message.findall("q:Attribute", ns)
    }
    assert attributes["ApproximateReceiveCount"] == "1"
    assert message.findtext("q:MessageAttribute/q:Value/q:StringValue", namespaces=ns) == "legacy"
    handle = message.findtext("q:ReceiptHandle", namespaces=ns) or ""
    status, root = query_call(
        squall,
        {
            "Action": "DeleteMessageBatch",
            "QueueUrl": url,
            "DeleteMessageBatchRequestEntry.1.Id": "a",
            "DeleteMessageBatchRequestEntry.1.ReceiptHandle": handle,
            "DeleteMessageBatchRequestEntry.2.Id": "b",
            "DeleteMessageBatchRequestEntry.2.ReceiptHandle": "bogus",
        },
    )
    assert root.findtext("q:DeleteMessageBatchResult/q:DeleteMessageBatchResultEntry/q:Id", namespaces=ns) == "a"
    assert root.findtext("q:DeleteMessageBatchResult/q:BatchResultErrorEntry/q:Code", namespaces=ns) == (
        "ReceiptHandleIsInvalid"
    )
    status, root = query_call(squall, {"Action": "GetQueueAttributes", "QueueUrl": url, "AttributeName.1": "All"})
    attributes = {
        a.findtext("q:Name", namespaces=ns): a.findtext("q:Value", namespaces=ns)
        for a in root.findall("q:GetQueueAttributesResult/q:Attribute", ns)
    }
    assert attributes["VisibilityTimeout"] == "40" and attributes["ApproximateNumberOfMessages"] == "0"
    status, root = query_call(squall, {"Action": "DeleteQueue", "QueueUrl": url})
    assert status == 200 and root.find("q:ResponseMetadata/q:RequestId", ns) is not None
    status, root = query_call(squall, {"Action": "GetQueueUrl", "QueueName": "legacy"})
    assert status == 400
    assert root.findtext("q:Error/q:Code", namespaces=ns) == "AWS.SimpleQueueService.NonExistentQueue"
    assert root.findtext("q:Error/q:Type", namespaces=ns) == "Sender"
    assert (
        root.findtext("q:Error/q:Message", namespaces=ns) == "The specified queue does not exist for this wsdl version."
    )
