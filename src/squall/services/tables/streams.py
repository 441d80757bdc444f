"""The DynamoDB Streams API (ListStreams, DescribeStream, GetShardIterator, GetRecords) over the change log.

Shard iterators are signed tokens naming a stream, its shard and a position (a change counter); they
expire after 15 minutes, as on AWS. A position at or before the stream's trim point cannot be read.
The signing key is kept in the table store, so an iterator one server hands out is good on every
server sharing the store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from squall.api.validation import Violations
from squall.services.streams.service import Shard, StoredRecord
from squall.services.tables import changes
from squall.services.tables.changes import TableStream
from squall.services.tables.errors import ExpiredIterator, TableNotFound, TrimmedDataAccess, Validation
from squall.services.tables.schema import raise_violations
from squall.services.tables.service import TableService
from squall.stores.sql import Connection

ITERATOR_TTL_S = 15 * 60
MAX_RECORDS = 1000
MAX_STREAMS = 100
ITERATOR_TYPES = ["TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"]


class TableStreams:
    """The streams of one table service: read by the Streams API and by event source mappings."""

    def __init__(
        self, service: TableService, iterator_key: bytes | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.service = service
        self.region = service.region
        self._key = iterator_key or service.secret("stream-iterator")
        self._clock = clock

    # --- lookups ------------------------------------------------------------------------------------------
    def stream(self, arn: str) -> TableStream:
        found = self.service.inspect(lambda conn: changes.stream(conn, arn))
        if found is None:
            # unverified: wording modelled on DynamoDB's "Requested resource not found" messages
            raise TableNotFound(f"Requested resource not found: Stream: {arn} not found")
        return found

    def streams(self, table: str | None = None) -> list[TableStream]:
        return self.service.inspect(lambda conn: changes.streams(conn, table))

    def shards(self, arn: str) -> list[Shard]:
        """The stream's one shard, as the delivery engine sees shards."""
        stream = self.stream(arn)
        return [
            Shard(shard_id=stream.shard_id, start_key=0, end_key=0, start_seq=stream.start_seq, end_seq=stream.end_seq)
        ]

    def latest(self, arn: str) -> int:
        """The stream's last change counter so far: a LATEST reader starts after it."""
        stream = self.stream(arn)
        return self.service.inspect(lambda conn: changes.last_of(conn, stream))

    def rows(self, arn: str, position: int, limit: int) -> list[changes.ChangeRow]:
        return self.service.inspect(lambda conn: changes.read(conn, arn, position, limit))

    def read(self, arn: str, shard_id: str, position: int, limit: int) -> list[StoredRecord]:
        """Records from ``position`` on, as the delivery engine reads them: the record JSON (numbered) as
        data, the item's keys as partition key (lanes keep order per item), creation time as arrival."""
        return [
            StoredRecord(
                seq=row.seq,
                partition_key=row.keys,
                data=json.dumps(changes.numbered(row), separators=(",", ":")).encode(),
                arrival=row.created,
            )
            for row in self.rows(arn, position, limit)
        ]

    def backlog(self, arn: str, position: int) -> int:
        """How many of the stream's records are kept at or after ``position``."""

        def count(conn: Connection) -> int:
            row = conn.execute("SELECT COUNT(*) FROM change_records WHERE arn = ? AND seq >= ?", (arn, position))
            return int(row.fetchone()[0])

        return self.service.inspect(count)

    # --- the Streams API ----------------------------------------------------------------------------------
    def list_streams(self, params: dict[str, Any]) -> dict[str, Any]:
        limit = params.get("Limit")
        v = Violations()
        v.at_least(limit, "limit", 1)
        raise_violations(v)
        table = params.get("TableName")
        found = self.streams(str(table) if table is not None else None)
        if table is not None and not found and str(table) not in self.service.tables():
            # unverified: wording as DescribeTable words it
            raise TableNotFound(f"Requested resource not found: Table: {table} not found")
        start = params.get("ExclusiveStartStreamArn")
        if start is not None:
            arns = [s.arn for s in found]
            found = found[arns.index(start) + 1 :] if start in arns else []
        count = min(int(limit or MAX_STREAMS), MAX_STREAMS)
        page = found[:count]
        result: dict[str, Any] = {
            "Streams": [{"StreamArn": s.arn, "TableName": s.table, "StreamLabel": s.label} for s in page]
        }
        if len(found) > count:
            result["LastEvaluatedStreamArn"] = page[-1].arn
        return result

    def describe_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        limit = params.get("Limit")
        v = Violations()
        v.at_least(limit, "limit", 1)
        raise_violations(v)
        stream = self.stream(_required(params, "StreamArn", "streamArn"))
        shard_range: dict[str, str] = {"StartingSequenceNumber": changes.sequence(stream.start_seq)}
        if stream.end_seq is not None:
            shard_range["EndingSequenceNumber"] = changes.sequence(max(stream.end_seq, stream.start_seq))
        shards = [{"ShardId": stream.shard_id, "SequenceNumberRange": shard_range}]
        if params.get("ExclusiveStartShardId") == stream.shard_id:
            shards = []
        return {
            "StreamDescription": {
                "StreamArn": stream.arn,
                "StreamLabel": stream.label,
                "StreamStatus": "ENABLED" if stream.disabled is None else "DISABLED",
                "StreamViewType": stream.view,
                "CreationRequestDateTime": stream.created,
                "TableName": stream.table,
                "KeySchema": stream.key_schema,
                "Shards": shards,
            }
        }

    def get_shard_iterator(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = _required(params, "StreamArn", "streamArn")
        shard_id = _required(params, "ShardId", "shardId")
        kind = _required(params, "ShardIteratorType", "shardIteratorType")
        v = Violations()
        v.enum(kind, "shardIteratorType", ITERATOR_TYPES)
        raise_violations(v)
        stream = self.stream(arn)
        if shard_id != stream.shard_id:
            # unverified: wording modelled on DynamoDB's "Requested resource not found" messages
            raise TableNotFound(f"Requested resource not found: Shard does not exist: {shard_id}")
        if kind == "TRIM_HORIZON":
            position = max(stream.start_seq, stream.trimmed_seq + 1)
        elif kind == "LATEST":
            position = self.latest(arn) + 1
        else:
            number = params.get("SequenceNumber")
            if number is None:
                # unverified: wording from memory of AWS's message
                raise Validation("Must provide a SequenceNumber for ShardIteratorType " + kind)
            counter = changes.counter_of(str(number))
            end = stream.end_seq if stream.end_seq is not None else self.latest(arn)
            if counter is None or counter < stream.start_seq or counter > end:
                # unverified: wording from memory of AWS's message
                raise Validation(f"Invalid SequenceNumber {number} for shard {shard_id}")
            if counter <= stream.trimmed_seq:
                raise TrimmedDataAccess(_trimmed(arn))
            position = counter if kind == "AT_SEQUENCE_NUMBER" else counter + 1
        return {"ShardIterator": self._make_iterator(arn, shard_id, position)}

    def get_records(self, params: dict[str, Any]) -> dict[str, Any]:
        limit = params.get("Limit")
        v = Violations()
        v.at_least(limit, "limit", 1)
        v.at_most(limit, "limit", MAX_RECORDS)
        raise_violations(v)
        arn, shard_id, position = self._open_iterator(_required(params, "ShardIterator", "shardIterator"))
        stream = self.stream(arn)
        if position <= stream.trimmed_seq:
            raise TrimmedDataAccess(_trimmed(arn))
        rows = self.rows(arn, position, int(limit or MAX_RECORDS))
        result: dict[str, Any] = {"Records": [changes.numbered(r) for r in rows]}
        following = rows[-1].seq + 1 if rows else position
        if stream.end_seq is None or following <= stream.end_seq:
            result["NextShardIterator"] = self._make_iterator(arn, shard_id, following)
        return result

    # --- iterators ----------------------------------------------------------------------------------------
    def _make_iterator(self, arn: str, shard_id: str, position: int) -> str:
        body = base64.urlsafe_b64encode(json.dumps([arn, shard_id, position, self._clock()]).encode()).decode()
        return f"{body}.{self._sign(body)}"

    def _open_iterator(self, token: str) -> tuple[str, str, int]:
        body, _, signature = token.rpartition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            # unverified: wording from memory of AWS's message
            raise Validation("Invalid ShardIterator")
        arn, shard_id, position, created = json.loads(base64.urlsafe_b64decode(body))
        if self._clock() - float(created) > ITERATOR_TTL_S:
            # unverified: DynamoDB Streams' wording is not documented; this is Kinesis's gist
            raise ExpiredIterator("Iterator expired. The iterator was created more than 15 minutes ago.")
        return str(arn), str(shard_id), int(position)

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()[:32]


def _trimmed(arn: str) -> str:
    # unverified: wording modelled on the exception's documentation in botocore's model
    return f"The operation attempted to read past the oldest stream record in a shard of {arn}."


def _required(params: dict[str, Any], member: str, wire_name: str) -> str:
    value = params.get(member)
    if value is None:
        raise Validation(
            f"1 validation error detected: Value null at '{wire_name}' failed to satisfy constraint: "
            "Member must not be null"
        )
    return str(value)
