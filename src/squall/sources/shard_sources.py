"""The seam between the stream delivery engine and what it reads: Kinesis streams or table change streams.

The supervisor and its pollers only see shards, integer positions and :class:`StoredRecord`s; a
``ShardSource`` says how to list a source's shards, read one from a position, spell a position as a
sequence number, show a record to the filters, encode a batch for the function, and name the failure
record's batch info. Records keep their order per ``partition_key`` across lanes: for a table stream
that is the item's keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgspec

from squall.services.streams.events import kinesis_batch, record_size, shape
from squall.services.streams.service import Shard, StoredRecord, StreamService, sequence
from squall.services.tables import changes
from squall.services.tables.streams import TableStreams
from squall.sources.filters import dynamodb_view, kinesis_view


class ShardSource(Protocol):
    """A kind of sharded, ordered source that event source mappings read."""

    region: str
    #: The failure record's member describing the discarded batch.
    batch_info_key: str

    def owns(self, arn: str) -> bool:
        """Whether ``arn`` names a stream of this source."""
        ...

    def wake_key(self, arn: str) -> str:
        """The key ``add_listener``'s callback names when the stream ``arn`` has new records."""
        ...

    def add_listener(self, listener: Callable[[str], None]) -> None: ...

    def shards(self, arn: str) -> list[Shard]:
        """The stream's shards; a LookupError when there is no such stream."""
        ...

    def read(self, arn: str, shard_id: str, position: int, limit: int) -> list[StoredRecord]: ...

    def latest(self, arn: str) -> int:
        """The last position written so far (a LATEST reader starts after it)."""
        ...

    def sequence(self, position: int) -> str: ...

    def view(self, record: StoredRecord) -> dict[str, Any]:
        """What the mapping's filters see of a record."""
        ...

    def sizer(self, shard_id: str, arn: str, role_arn: str) -> Callable[[StoredRecord], int]:
        """How many bytes a record of the shard takes in the function's event (batches stay under 6 MB)."""
        ...

    def payload(
        self, records: Sequence[StoredRecord], shard_id: str, arn: str, role_arn: str, extra: dict[str, Any] | None
    ) -> tuple[bytes, dict[str, Any] | None]:
        """A batch for the function, with ``extra`` top-level event fields (a window's): the body, and
        the ``shape`` the sandbox builds the event from (None: the body is the event itself)."""
        ...


def stream_name(arn: str) -> str:
    return arn.rpartition("stream/")[2]


class KinesisSource:
    """Kinesis-compatible streams."""

    batch_info_key = "KinesisBatchInfo"

    def __init__(self, streams: StreamService) -> None:
        self.streams = streams
        self.region = streams.region

    def owns(self, arn: str) -> bool:
        return arn.startswith("arn:aws:kinesis:")

    def wake_key(self, arn: str) -> str:
        return stream_name(arn)

    def add_listener(self, listener: Callable[[str], None]) -> None:
        self.streams.add_listener(listener)

    def shards(self, arn: str) -> list[Shard]:
        return self.streams.shards(stream_name(arn))

    def read(self, arn: str, shard_id: str, position: int, limit: int) -> list[StoredRecord]:
        return self.streams.read(stream_name(arn), shard_id, position, limit)[0]

    def latest(self, arn: str) -> int:
        return self.streams.latest_counter(stream_name(arn))

    def sequence(self, position: int) -> str:
        return sequence(position)

    def view(self, record: StoredRecord) -> dict[str, Any]:
        return kinesis_view(record.partition_key, record.data)

    def sizer(self, shard_id: str, arn: str, role_arn: str) -> Callable[[StoredRecord], int]:
        return record_size(shard_id, arn, self.region, role_arn)

    def payload(
        self, records: Sequence[StoredRecord], shard_id: str, arn: str, role_arn: str, extra: dict[str, Any] | None
    ) -> tuple[bytes, dict[str, Any] | None]:
        return kinesis_batch(records, extra), shape(shard_id, arn, self.region, role_arn)


class TableStreamSource:
    """DynamoDB-compatible table change streams (records are stored as Streams API JSON)."""

    batch_info_key = "DDBStreamBatchInfo"

    def __init__(self, streams: TableStreams) -> None:
        self.streams = streams
        self.region = streams.region

    def owns(self, arn: str) -> bool:
        return arn.startswith("arn:aws:dynamodb:") and "/stream/" in arn

    def wake_key(self, arn: str) -> str:
        return arn

    def add_listener(self, listener: Callable[[str], None]) -> None:
        self.streams.service.add_listener(listener)

    def shards(self, arn: str) -> list[Shard]:
        return self.streams.shards(arn)

    def read(self, arn: str, shard_id: str, position: int, limit: int) -> list[StoredRecord]:
        return self.streams.read(arn, shard_id, position, limit)

    def latest(self, arn: str) -> int:
        return self.streams.latest(arn)

    def sequence(self, position: int) -> str:
        return changes.sequence(position)

    def view(self, record: StoredRecord) -> dict[str, Any]:
        return dynamodb_view(changes.lambda_record(json.loads(record.data), ""))

    def sizer(self, shard_id: str, arn: str, role_arn: str) -> Callable[[StoredRecord], int]:
        # The stored change record (JSON), plus the source ARN the event adds and a comma.
        overhead = len(msgspec.json.encode({"eventSourceARN": arn})) + 1

        def size(record: StoredRecord) -> int:
            return len(record.data) + overhead

        return size

    def payload(
        self, records: Sequence[StoredRecord], shard_id: str, arn: str, role_arn: str, extra: dict[str, Any] | None
    ) -> tuple[bytes, dict[str, Any] | None]:
        event = changes.dynamodb_event([json.loads(r.data) for r in records], arn)
        return msgspec.json.encode(event | extra if extra else event), None
