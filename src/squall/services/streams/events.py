"""The event a stream-triggered function receives: Lambda's Kinesis event shape, exactly.

Keys, nesting and value types follow the samples AWS's own libraries ship (``data`` base64,
``approximateArrivalTimestamp`` epoch seconds as a float, ``eventID`` = ``<shard>:<sequence>``).
The delivery engine sends a batch as rows (:func:`kinesis_batch`) that the sandbox turns into this
event (:mod:`squall.runtime.bootstrap.batch_events`); :func:`kinesis_event` builds it here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from squall.runtime.bootstrap.batch_events import kinesis_records, kinesis_shape
from squall.services.streams.service import StoredRecord
from squall.services.streams.shards import SEQUENCE_BASE

_ENCODER = msgspec.json.Encoder()


def shape(shard_id: str, stream_arn: str, region: str, role_arn: str) -> dict[str, Any]:
    """What a batch's rows stand for: the frame header that has the sandbox build the event."""
    return kinesis_shape(shard_id, stream_arn, region, role_arn, SEQUENCE_BASE)


def kinesis_batch(records: Sequence[StoredRecord], extra: dict[str, Any] | None = None) -> bytes:
    """One batch as rows (msgspec writes the data base64), with ``extra`` top-level event fields."""
    rows = {"Records": [(r.seq, r.partition_key, r.data, r.arrival) for r in records]}
    return _ENCODER.encode(rows | extra if extra else rows)


def kinesis_event(
    records: Sequence[StoredRecord], shard_id: str, stream_arn: str, region: str, role_arn: str
) -> dict[str, Any]:
    """The ``{"Records": [...]}`` event of one batch from one shard."""
    rows = [(r.seq, r.partition_key, base64.b64encode(r.data).decode(), r.arrival) for r in records]
    return {"Records": kinesis_records(rows, shape(shard_id, stream_arn, region, role_arn))}


def record_size(shard_id: str, stream_arn: str, region: str, role_arn: str) -> Callable[[StoredRecord], int]:
    """How many bytes a record adds to a batch's event as JSON (its comma included): exact, but for
    the arrival time, counted at its longest."""
    empty = kinesis_records([(0, "", "", 9_999_999_999.999)], shape(shard_id, stream_arn, region, role_arn))[0]
    overhead = len(_ENCODER.encode(empty)) + 1 - 4  # less the empty key's and data's quotes, counted below
    encode = _ENCODER.encode

    def size(record: StoredRecord) -> int:
        return overhead + 4 * -(-len(record.data) // 3) + 2 + len(encode(record.partition_key))

    return size
