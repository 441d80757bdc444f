"""PutRecords' fast path: one typed decode of the request, the model's limits checked over the
decoded records, and the response encoded in one go.

The decode (msgspec) turns each record's base64 ``Data`` into bytes in C instead of a Python call
per record. The fast path only takes requests the general path in ``api.py`` accepts, with the same
outcome; for anything else (a malformed body, an unexpected type, base64 msgspec does not take, a
limit crossed) :func:`decode` returns ``None`` and the caller answers through the general path,
which raises Kinesis's exact error. So errors never depend on which path ran.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from squall.services.streams.shards import HASH_KEY_SPACE, sequence_number

MAX_RECORD_BYTES = 1024 * 1024
MAX_PUT_RECORDS = 500
MAX_PUT_RECORDS_BYTES = 5 * 1024 * 1024
MAX_PARTITION_KEY_LENGTH = 256


class PutEntry(msgspec.Struct):
    """One entry of ``Records``, as boto3 sends it (``Data`` base64)."""

    PartitionKey: str
    Data: bytes = b""
    ExplicitHashKey: str | None = None


class PutRecordsRequest(msgspec.Struct):
    """The PutRecords request body."""

    Records: list[PutEntry]
    StreamName: str | None = None
    StreamARN: str | None = None


class PutResult(msgspec.Struct):
    """One entry of the response's ``Records``."""

    SequenceNumber: str
    ShardId: str


class PutRecordsResponse(msgspec.Struct):
    """The PutRecords response body (every record accepted)."""

    FailedRecordCount: int
    Records: list[PutResult]
    EncryptionType: str = "NONE"


_DECODER = msgspec.json.Decoder(PutRecordsRequest)
_ENCODER = msgspec.json.Encoder()


def decode(body: bytes) -> PutRecordsRequest | None:
    """The request, if it is one the general path would accept as is; else ``None``."""
    try:
        request = _DECODER.decode(body)
    except msgspec.DecodeError:  # also every ValidationError
        return None
    records = request.Records
    if not 1 <= len(records) <= MAX_PUT_RECORDS:
        return None
    total = 0
    for record in records:
        key = record.PartitionKey
        if not 1 <= len(key) <= MAX_PARTITION_KEY_LENGTH or len(record.Data) > MAX_RECORD_BYTES:
            return None
        explicit = record.ExplicitHashKey
        if explicit is not None and not (explicit.isascii() and explicit.isdigit() and int(explicit) < HASH_KEY_SPACE):
            return None
        total += len(record.Data) + len(key.encode())
    if total > MAX_PUT_RECORDS_BYTES:
        return None
    return request


def entries(request: PutRecordsRequest) -> list[tuple[str, bytes, str | None]]:
    """The (partition key, data, explicit hash key) tuples ``StreamService.put`` takes."""
    return [(r.PartitionKey, r.Data, r.ExplicitHashKey) for r in request.Records]


def encode_response(placed: Sequence[tuple[str, int]]) -> bytes:
    """The response body for records placed at (shard id, counter)."""
    results = [PutResult(SequenceNumber=sequence_number(counter), ShardId=shard) for shard, counter in placed]
    return _ENCODER.encode(PutRecordsResponse(FailedRecordCount=0, Records=results))
