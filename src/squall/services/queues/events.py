"""The event a queue-triggered function receives: Lambda's SQS event shape, exactly.

Keys and value types follow the samples AWS's own libraries ship: attribute values are strings
(timestamps in epoch milliseconds), message attributes use lower-camel keys with empty list members,
and ``md5OfMessageAttributes`` appears only when the message has attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from squall.services.queues import checksums, messages
from squall.services.queues.models import Received


def sqs_record(message: Received, queue_arn: str, region: str) -> dict[str, Any]:
    """One record of an SQS event."""
    attributes = {
        "ApproximateReceiveCount": str(message.receive_count),
        "SentTimestamp": str(int(message.sent * 1000)),
        "SenderId": message.sender_id,
        "ApproximateFirstReceiveTimestamp": str(int(message.first_receive * 1000)),
    }
    if message.sequence_number is not None:
        attributes["SequenceNumber"] = message.sequence_number
    if message.group_id is not None:
        attributes["MessageGroupId"] = message.group_id
    if message.dedup_id is not None:
        attributes["MessageDeduplicationId"] = message.dedup_id
    if message.dlq_source is not None:
        attributes["DeadLetterQueueSourceArn"] = message.dlq_source
    trace = message.system_attributes.get("AWSTraceHeader")
    if trace is not None:
        attributes["AWSTraceHeader"] = trace.get("StringValue", "")
    record: dict[str, Any] = {
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {name: _attribute(value) for name, value in message.attributes.items()},
        "md5OfBody": checksums.md5_of_body(message.body),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.attributes:
        record["md5OfMessageAttributes"] = checksums.md5_of_attributes(messages.decoded(message.attributes))
    return record


def _attribute(value: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = value["BinaryValue"]
    return out


def sqs_event(batch: Sequence[Received], queue_arn: str, region: str) -> dict[str, Any]:
    """The ``{"Records": [...]}`` event of one batch from one queue."""
    return {"Records": [sqs_record(m, queue_arn, region) for m in batch]}
