"""Batch events, built inside the sandbox from the rows Squall sends.

Every record of a Kinesis or SQS event repeats the same keys, ARNs and region around its data: for a
100-byte record, several times the data. Building and encoding those dicts was most of the server's
work per delivered record, on the one core that also takes every put and send. So Squall sends a
batch as rows, ``{"Records": [[...], ...]}`` (plus a tumbling window's fields), with a frame header
``shape`` saying what they become; the sandbox's bootstrap builds Lambda's exact event from them
here, in the sandbox's own process. The server builds whole events with the same functions where it
needs one.

- Kinesis rows: ``[counter, partitionKey, base64 data, arrival]``.
- SQS rows: ``[messageId, receiptHandle, body, receiveCount, sentMs, senderId, firstReceiveMs,
  extra attributes or null, messageAttributes or null, md5OfMessageAttributes or null]``.

Standard library only: this module runs inside the sandbox interpreter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

KINESIS = "kinesis"
SQS = "sqs"


def kinesis_shape(shard_id: str, stream_arn: str, region: str, role_arn: str, sequence_base: int) -> dict[str, Any]:
    """The frame header's ``shape`` for a batch of one shard's records (``sequence_base``: the
    stream's first sequence number, which each row's counter is added to)."""
    return {
        "kind": KINESIS,
        "shard": shard_id,
        "arn": stream_arn,
        "region": region,
        "role": role_arn,
        "base": sequence_base,
    }


def kinesis_records(rows: Iterable[Sequence[Any]], shape: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``Records`` of a Kinesis event, from (counter, partition key, base64 data, arrival) rows."""
    shard_id, base, role, region, arn = shape["shard"], shape["base"], shape["role"], shape["region"], shape["arn"]
    records = []
    for counter, key, data, arrival in rows:
        number = str(base + counter)
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": key,
                    "sequenceNumber": number,
                    "data": data,
                    "approximateArrivalTimestamp": round(arrival, 3),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{number}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": role,
                "awsRegion": region,
                "eventSourceARN": arn,
            }
        )
    return records


def sqs_shape(queue_arn: str, region: str) -> dict[str, Any]:
    """The frame header's ``shape`` for a batch of one queue's messages."""
    return {"kind": SQS, "arn": queue_arn, "region": region}


def sqs_records(rows: Iterable[Sequence[Any]], shape: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``Records`` of an SQS event, from rows (see the module docstring)."""
    arn, region = shape["arn"], shape["region"]
    records = []
    for message_id, handle, body, count, sent_ms, sender, first_ms, extra, attributes, attributes_md5 in rows:
        system = {
            "ApproximateReceiveCount": str(count),
            "SentTimestamp": str(sent_ms),
            "SenderId": sender,
            "ApproximateFirstReceiveTimestamp": str(first_ms),
        }
        if extra:
            system.update(extra)
        record = {
            "messageId": message_id,
            "receiptHandle": handle,
            "body": body,
            "attributes": system,
            "messageAttributes": attributes or {},
            "md5OfBody": hashlib.md5(body.encode("utf-8")).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": region,
        }
        if attributes_md5 is not None:
            record["md5OfMessageAttributes"] = attributes_md5
        records.append(record)
    return records


_RECORDS = {KINESIS: kinesis_records, SQS: sqs_records}


def event(shape: dict[str, Any], body: bytes) -> Any:
    """The event a frame's rows stand for, as the handler receives it; ValueError for a body that
    is not such rows."""
    build = _RECORDS.get(str(shape.get("kind")))
    if build is None:
        raise ValueError(f"unknown event shape {shape.get('kind')!r}")
    whole = json.loads(body)
    try:
        whole["Records"] = build(whole["Records"], shape)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a batch of {shape['kind']} rows: {exc}") from exc
    return whole


def event_of(shape: dict[str, Any] | None, body: bytes) -> Any:
    """The handler's event: built from rows when the frame has a ``shape``, else the body's JSON
    (None for an empty body); ValueError when it is neither."""
    if shape:
        return event(shape, body)
    return json.loads(body) if body else None


def event_json(shape: dict[str, Any], body: bytes) -> bytes:
    """:func:`event` as JSON, for a runtime that reads its events over the Runtime API."""
    return json.dumps(event(shape, body), separators=(",", ":"), ensure_ascii=False).encode()
