"""The event a queue-triggered function receives: Lambda's SQS event shape, exactly.

Keys and value types follow the samples AWS's own libraries ship: attribute values are strings
(timestamps in epoch milliseconds), message attributes use lower-camel keys with empty list members,
and ``md5OfMessageAttributes`` appears only when the message has attributes. The delivery engine
sends a batch as rows (:func:`sqs_batch`, with ``batch_events.sqs_shape``) that the sandbox turns into
this event (:mod:`squall.runtime.bootstrap.batch_events`); :func:`sqs_event` builds it here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from squall.runtime.bootstrap.batch_events import sqs_records, sqs_shape
from squall.services.queues import checksums, messages
from squall.services.queues.models import Received

_ENCODER = msgspec.json.Encoder()


def sqs_row(message: Received) -> tuple[Any, ...]:
    """One message as the row the sandbox builds its record from (see ``batch_events``)."""
    extra: dict[str, str] = {}
    if message.sequence_number is not None:
        extra["SequenceNumber"] = message.sequence_number
    if message.group_id is not None:
        extra["MessageGroupId"] = message.group_id
    if message.dedup_id is not None:
        extra["MessageDeduplicationId"] = message.dedup_id
    if message.dlq_source is not None:
        extra["DeadLetterQueueSourceArn"] = message.dlq_source
    trace = message.system_attributes.get("AWSTraceHeader")
    if trace is not None:
        extra["AWSTraceHeader"] = trace.get("StringValue", "")
    attributes = message.attributes
    return (
        message.message_id,
        message.receipt_handle,
        message.body,
        message.receive_count,
        int(message.sent * 1000),
        message.sender_id,
        int(message.first_receive * 1000),
        extra or None,
        {name: _attribute(value) for name, value in attributes.items()} if attributes else None,
        checksums.md5_of_attributes(messages.decoded(attributes)) if attributes else None,
    )


def sqs_batch(batch: Sequence[Received]) -> bytes:
    """One batch as rows, for the sandbox to build the event from."""
    return _ENCODER.encode({"Records": [sqs_row(m) for m in batch]})


def sqs_record(message: Received, queue_arn: str, region: str) -> dict[str, Any]:
    """One record of an SQS event."""
    return sqs_records([sqs_row(message)], sqs_shape(queue_arn, region))[0]


def _attribute(value: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = value["BinaryValue"]
    return out


def sqs_event(batch: Sequence[Received], queue_arn: str, region: str) -> dict[str, Any]:
    """The ``{"Records": [...]}`` event of one batch from one queue."""
    return {"Records": sqs_records([sqs_row(m) for m in batch], sqs_shape(queue_arn, region))}
