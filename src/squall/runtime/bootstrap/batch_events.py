"""Kinesis batch events, built inside the sandbox from the rows Squall sends.

Every record of a Kinesis event repeats the same keys, ARNs and region around its data: about 500
bytes, five times the data of a 100-byte record. Building and encoding those dicts was most of the
server's work per delivered record, on the one core that also takes every put. So Squall sends a
batch as rows, ``{"Records": [[counter, partitionKey, base64 data, arrival], ...]}`` (plus a tumbling
window's fields), with a frame header ``shape`` saying what they become; the sandbox's bootstrap
builds Lambda's exact event from them here, in the sandbox's own process. The server builds whole
events with the same function where it needs one.

Standard library only: this module runs inside the sandbox interpreter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

KINESIS = "kinesis"


def kinesis_shape(shard_id: str, stream_arn: str, region: str, role_arn: str, sequence_base: int) -> dict[str, Any]:
    """The frame header's ``shape`` for a batch of one shard's records (``sequence_base``: the
    stream's first sequence number, which each row's counter is added to)."""
    return {"kind": KINESIS, "shard": shard_id, "arn": stream_arn, "region": region, "role": role_arn,
            "base": sequence_base}  # fmt: skip


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


def event(shape: dict[str, Any], body: bytes) -> Any:
    """The event a frame's rows stand for, as the handler receives it; ValueError for a body that
    is not such rows."""
    if shape.get("kind") != KINESIS:
        raise ValueError(f"unknown event shape {shape.get('kind')!r}")
    whole = json.loads(body)
    try:
        whole["Records"] = kinesis_records(whole["Records"], shape)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a batch of {KINESIS} rows: {exc}") from exc
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
