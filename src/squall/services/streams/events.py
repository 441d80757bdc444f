"""The event a stream-triggered function receives: Lambda's Kinesis event shape, exactly.

Keys, nesting and value types follow the samples AWS's own libraries ship (``data`` base64,
``approximateArrivalTimestamp`` epoch seconds as a float, ``eventID`` = ``<shard>:<sequence>``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from squall.services.streams.service import StoredRecord, sequence


def kinesis_record(record: StoredRecord, shard_id: str, stream_arn: str, region: str, role_arn: str) -> dict[str, Any]:
    """One record of a Kinesis event."""
    number = sequence(record.seq)
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record.partition_key,
            "sequenceNumber": number,
            "data": base64.b64encode(record.data).decode(),
            "approximateArrivalTimestamp": round(record.arrival, 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": role_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def kinesis_event(
    records: Sequence[StoredRecord], shard_id: str, stream_arn: str, region: str, role_arn: str
) -> dict[str, Any]:
    """The ``{"Records": [...]}`` event of one batch from one shard."""
    return {"Records": [kinesis_record(r, shard_id, stream_arn, region, role_arn) for r in records]}
