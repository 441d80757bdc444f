"""The Kinesis wire protocol (JSON 1.1, ``X-Amz-Target: Kinesis_20131202.<Operation>``) as boto3 sends it."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from squall.api.errors import render_error
from squall.api.validation import Violations, json_object
from squall.errors import SquallError, UnknownOperation
from squall.services.streams import puts, shards
from squall.services.streams.errors import (
    InvalidArgument,
    KinesisValidation,
    LimitExceeded,
    StreamInUse,
    StreamNotFound,
)
from squall.services.streams.puts import MAX_PUT_RECORDS, MAX_PUT_RECORDS_BYTES, MAX_RECORD_BYTES
from squall.services.streams.service import (
    ON_DEMAND_SHARDS,
    StreamService,
    counter_of,
    describe_shard,
    sequence,
)

TARGET_PREFIX = "Kinesis_20131202."
CONTENT_TYPE = b"application/x-amz-json-1.1"
MAX_SHARDS = 500
MAX_GET_RECORDS = 10_000
MIN_RETENTION_HOURS = 24
MAX_RETENTION_HOURS = 8760
STREAM_NAME_PATTERN = r"[a-zA-Z0-9_.-]+"
_STREAM_NAME_RE = re.compile(STREAM_NAME_PATTERN)
_ITERATOR_TYPES = ["AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]

Handler = Callable[[dict[str, Any]], dict[str, Any]]
#: Operations whose handler takes the raw body and may answer with an encoded body.
RawHandler = Callable[[bytes], dict[str, Any] | bytes]


class KinesisApi:
    """The ``kinesis`` service of the API port."""

    def __init__(self, service: StreamService) -> None:
        self.service = service
        self.handlers: dict[str, Handler] = {
            "CreateStream": self.create_stream,
            "DeleteStream": self.delete_stream,
            "DescribeStream": self.describe_stream,
            "DescribeStreamSummary": self.describe_stream_summary,
            "ListStreams": self.list_streams,
            "ListShards": self.list_shards,
            "PutRecord": self.put_record,
            "PutRecords": self.put_records,
            "GetShardIterator": self.get_shard_iterator,
            "GetRecords": self.get_records,
            "AddTagsToStream": self.add_tags,
            "RemoveTagsFromStream": self.remove_tags,
            "ListTagsForStream": self.list_tags,
            "IncreaseStreamRetentionPeriod": self.increase_retention,
            "DecreaseStreamRetentionPeriod": self.decrease_retention,
            "SplitShard": self.split_shard,
            "MergeShards": self.merge_shards,
            "UpdateShardCount": self.update_shard_count,
        }
        self.raw_handlers: dict[str, RawHandler] = {"PutRecords": self.put_records_body}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(scope.get("squall.request_id", ""))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        operation = headers.get("x-amz-target", "").removeprefix(TARGET_PREFIX)
        try:
            handler = self.handlers.get(operation)
            if handler is None:
                raise UnknownOperation(f"Operation {operation or '(none)'} is not supported by Squall's Kinesis.")
            body = scope.get("squall.body") or b"{}"
            raw = self.raw_handlers.get(operation)
            if raw is not None:
                result: dict[str, Any] | bytes = await asyncio.to_thread(raw, body)
            else:
                result = await asyncio.to_thread(handler, _params(body))
        except SquallError as exc:
            status, error_headers, error_body = render_error(exc, request_id, "json")
            await send({"type": "http.response.start", "status": status, "headers": error_headers})
            await send({"type": "http.response.body", "body": error_body})
            return
        payload = result if isinstance(result, bytes) else json.dumps(result).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", CONTENT_TYPE), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    # --- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _name(params: dict[str, Any]) -> str:
        name = params.get("StreamName")
        if name is None and params.get("StreamARN"):
            name = str(params["StreamARN"]).rpartition("stream/")[2]
        v = Violations()
        if name is None:
            raise InvalidArgument("Either StreamName or StreamARN should be provided.")
        v.length(name, "streamName", 128, 1)
        v.pattern(name, "streamName", _STREAM_NAME_RE, STREAM_NAME_PATTERN)
        _raise(v)
        return str(name)

    # --- streams ------------------------------------------------------------------------------------
    def create_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        name = self._name(params)
        mode = (params.get("StreamModeDetails") or {}).get("StreamMode", "PROVISIONED")
        v = Violations()
        v.enum(mode, "streamModeDetails.streamMode", ["PROVISIONED", "ON_DEMAND"])
        v.at_least(params.get("ShardCount"), "shardCount", 1)
        _raise(v)
        count = params.get("ShardCount")
        if mode == "ON_DEMAND":
            count = ON_DEMAND_SHARDS if count is None else count
        elif count is None:
            raise InvalidArgument("ShardCount is required for streams in PROVISIONED mode.")
        if count > MAX_SHARDS:
            raise LimitExceeded(
                f"This request would exceed the shard limit for the account {self.service.account_id}"
                f" in {self.service.region}. Current shard count for the account: 0. Limit: "
                f"{MAX_SHARDS}. Number of additional shards that would have resulted from this "
                f"request: {count}."
            )
        self.service.create_stream(name, int(count), mode, dict(params.get("Tags") or {}))
        return {}

    def delete_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        self.service.delete_stream(self._name(params))
        return {}

    def _summary(self, name: str) -> dict[str, Any]:
        stream = self.service.stream(name)
        return {
            "StreamName": stream.name,
            "StreamARN": self.service.arn(stream.name),
            "StreamStatus": stream.status,
            "StreamModeDetails": {"StreamMode": stream.mode},
            "RetentionPeriodHours": stream.retention_hours,
            "StreamCreationTimestamp": stream.created,
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
            "EncryptionType": "NONE",
        }

    def describe_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        name = self._name(params)
        description = self._summary(name)
        all_shards = self.service.shards(name)
        start = params.get("ExclusiveStartShardId")
        if start:
            all_shards = [s for s in all_shards if s.shard_id > start]
        limit = int(params.get("Limit") or 100)
        description["Shards"] = [describe_shard(s) for s in all_shards[:limit]]
        description["HasMoreShards"] = len(all_shards) > limit
        return {"StreamDescription": description}

    def describe_stream_summary(self, params: dict[str, Any]) -> dict[str, Any]:
        name = self._name(params)
        summary = self._summary(name)
        summary["OpenShardCount"] = sum(1 for s in self.service.shards(name) if s.end_seq is None)
        summary["ConsumerCount"] = 0
        return {"StreamDescriptionSummary": summary}

    def list_streams(self, params: dict[str, Any]) -> dict[str, Any]:
        limit = int(params.get("Limit") or 100)
        after = params.get("ExclusiveStartStreamName") or params.get("NextToken")
        streams, more = self.service.list_streams(after, limit)
        result: dict[str, Any] = {
            "StreamNames": [s.name for s in streams],
            "HasMoreStreams": more,
            "StreamSummaries": [
                {
                    "StreamName": s.name,
                    "StreamARN": self.service.arn(s.name),
                    "StreamStatus": s.status,
                    "StreamModeDetails": {"StreamMode": s.mode},
                    "StreamCreationTimestamp": s.created,
                }
                for s in streams
            ],
        }
        if more and streams:
            result["NextToken"] = streams[-1].name
        return result

    def list_shards(self, params: dict[str, Any]) -> dict[str, Any]:
        token = params.get("NextToken")
        if token:
            name, _, after = base64.urlsafe_b64decode(token.encode()).decode().partition("\n")
        else:
            name, after = self._name(params), params.get("ExclusiveStartShardId") or ""
        limit = int(params.get("MaxResults") or 1000)
        remaining = [s for s in self.service.shards(name) if s.shard_id > after]
        result: dict[str, Any] = {"Shards": [describe_shard(s) for s in remaining[:limit]]}
        if len(remaining) > limit:
            result["NextToken"] = base64.urlsafe_b64encode(f"{name}\n{remaining[limit - 1].shard_id}".encode()).decode()
        return result

    def add_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        self.service.change_tags(self._name(params), dict(params.get("Tags") or {}), [])
        return {}

    def remove_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        self.service.change_tags(self._name(params), {}, list(params.get("TagKeys") or []))
        return {}

    def list_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        tags = self.service.stream(self._name(params)).tags
        return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())], "HasMoreTags": False}

    # --- retention and resharding ------------------------------------------------------------------
    def _retention(self, params: dict[str, Any], longer: bool) -> dict[str, Any]:
        name = self._name(params)
        raw: Any = params.get("RetentionPeriodHours")
        v = Violations()
        if raw is None:
            v.add(None, "retentionPeriodHours", "Member must not be null")
            _raise(v)
        hours = int(raw)
        v.at_least(hours, "retentionPeriodHours", MIN_RETENTION_HOURS)
        v.at_most(hours, "retentionPeriodHours", MAX_RETENTION_HOURS)
        _raise(v)
        current = self.service.stream(name).retention_hours
        if longer and hours < current:
            raise InvalidArgument(
                f"Requested retention period ({hours} hours) for stream {name} can not be shorter "
                f"than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
            )
        if not longer and hours > current:
            raise InvalidArgument(
                f"Requested retention period ({hours} hours) for stream {name} can not be longer "
                f"than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
            )
        self.service.set_retention(name, hours)
        return {}

    def increase_retention(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._retention(params, longer=True)

    def decrease_retention(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._retention(params, longer=False)

    def _open_shard(self, name: str, shard_id: str) -> Any:
        shard = next((s for s in self.service.shards(name) if s.shard_id == shard_id), None)
        if shard is None:
            raise StreamNotFound(
                f"Could not find shard {shard_id} in stream {name} under account {self.service.account_id}."
            )
        if shard.end_seq is not None:
            raise StreamInUse(
                f"Shard {shard_id} in stream {name} under account {self.service.account_id} has "
                "already been merged or split, and thus is not eligible for merging or splitting."
            )
        return shard

    def split_shard(self, params: dict[str, Any]) -> dict[str, Any]:
        name = self._name(params)
        shard = self._open_shard(name, str(params.get("ShardToSplit", "")))
        key = str(params.get("NewStartingHashKey", ""))
        if not key.isdigit() or not shard.start_key < int(key) <= shard.end_key:
            raise InvalidArgument(
                f"NewStartingHashKey {key} used in SplitShard() on shard {shard.shard_id} in stream "
                f"{name} under account {self.service.account_id} is not both greater than one plus "
                "the shard's StartingHashKey and less than the shard's EndingHashKey."
            )
        split = int(key)
        self.service.reshard(
            name,
            [shard.shard_id],
            [(shard.start_key, split - 1, shard.shard_id, None), (split, shard.end_key, shard.shard_id, None)],
        )
        return {}

    def merge_shards(self, params: dict[str, Any]) -> dict[str, Any]:
        name = self._name(params)
        first = self._open_shard(name, str(params.get("ShardToMerge", "")))
        second = self._open_shard(name, str(params.get("AdjacentShardToMerge", "")))
        low, high = sorted((first, second), key=lambda s: s.start_key)
        if low.end_key + 1 != high.start_key:
            raise InvalidArgument(
                f"Shards {first.shard_id} and {second.shard_id} in stream {name} under account "
                f"{self.service.account_id} are not an adjacent pair of shards eligible for merging"
            )
        self.service.reshard(
            name, [first.shard_id, second.shard_id], [(low.start_key, high.end_key, first.shard_id, second.shard_id)]
        )
        return {}

    def update_shard_count(self, params: dict[str, Any]) -> dict[str, Any]:
        name = self._name(params)
        raw: Any = params.get("TargetShardCount")
        v = Violations()
        if raw is None:
            v.add(None, "targetShardCount", "Member must not be null")
            _raise(v)
        target = int(raw)
        v.at_least(target, "targetShardCount", 1)
        v.enum(params.get("ScalingType", "UNIFORM_SCALING"), "scalingType", ["UNIFORM_SCALING"])
        _raise(v)
        if target > MAX_SHARDS:
            raise LimitExceeded(f"Target shard count {target} exceeds the shard limit of {MAX_SHARDS}.")
        current = [s for s in self.service.shards(name) if s.end_seq is None]
        children = []
        for start, end in shards.even_ranges(target):
            overlapping = [s.shard_id for s in current if s.start_key <= end and start <= s.end_key]
            children.append((start, end, overlapping[0], overlapping[1] if len(overlapping) > 1 else None))
        self.service.reshard(name, [s.shard_id for s in current], children)
        return {
            "StreamName": name,
            "CurrentShardCount": len(current),
            "TargetShardCount": target,
            "StreamARN": self.service.arn(name),
        }

    # --- records ------------------------------------------------------------------------------------
    @staticmethod
    def _entry(record: dict[str, Any], member: str) -> tuple[str, bytes, str | None]:
        try:
            data = base64.b64decode(record.get("Data", ""), validate=True)
        except (binascii.Error, ValueError):
            raise KinesisValidation(
                f"1 validation error detected: Value at '{member}data' failed to satisfy "
                "constraint: Member must be base64-encoded"
            ) from None
        key = record.get("PartitionKey")
        v = Violations()
        if key is None:
            v.add(None, f"{member}partitionKey", "Member must not be null")
        else:
            v.length(str(key), f"{member}partitionKey", 256, 1)
        if len(data) > MAX_RECORD_BYTES:
            v.items.append(
                f"Value at '{member}data' failed to satisfy constraint: Member must have length less "
                f"than or equal to {MAX_RECORD_BYTES}"
            )
        explicit = record.get("ExplicitHashKey")
        if explicit is not None and (not str(explicit).isdigit() or int(explicit) >= 2**128):
            raise InvalidArgument(
                f"Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. "
                f"Specified value was {explicit}"
            )
        _raise(v)
        return str(key), data, explicit

    def put_record(self, params: dict[str, Any]) -> dict[str, Any]:
        name = self._name(params)
        ((shard_id, counter),) = self.service.put(name, [self._entry(params, "")])
        return {"ShardId": shard_id, "SequenceNumber": sequence(counter), "EncryptionType": "NONE"}

    def put_records(self, params: dict[str, Any]) -> dict[str, Any]:
        name = self._name(params)
        records = params.get("Records") or []
        if not 1 <= len(records) <= MAX_PUT_RECORDS:
            bound = "greater than or equal to 1" if not records else f"less than or equal to {MAX_PUT_RECORDS}"
            raise KinesisValidation(
                f"1 validation error detected: Value at 'records' failed to satisfy constraint: "
                f"Member must have length {bound}"
            )
        entries = [self._entry(r, f"records.{i + 1}.member.") for i, r in enumerate(records)]
        total = sum(len(data) + len(key.encode()) for key, data, _ in entries)
        if total > MAX_PUT_RECORDS_BYTES:
            raise InvalidArgument(f"Records size exceeds 5 MB limit: {total} bytes.")
        placed = self.service.put(name, entries)
        return {
            "FailedRecordCount": 0,
            "Records": [{"SequenceNumber": sequence(c), "ShardId": s} for s, c in placed],
            "EncryptionType": "NONE",
        }

    def put_records_body(self, body: bytes) -> dict[str, Any] | bytes:
        """PutRecords from the raw body: the fast path when it takes the request, else the general one."""
        request = puts.decode(body)
        if request is None:
            return self.put_records(_params(body))
        name = self._name({"StreamName": request.StreamName, "StreamARN": request.StreamARN})
        return puts.encode_response(self.service.put(name, puts.entries(request)))

    def get_shard_iterator(self, params: dict[str, Any]) -> dict[str, Any]:
        name = self._name(params)
        shard_id = str(params.get("ShardId", ""))
        kind = params.get("ShardIteratorType")
        v = Violations()
        v.enum(kind, "shardIteratorType", _ITERATOR_TYPES)
        _raise(v)
        shard = next((s for s in self.service.shards(name) if s.shard_id == shard_id), None)
        if shard is None:
            raise StreamNotFound(
                f"Shard {shard_id} in stream {name} under account {self.service.account_id} does not exist"
            )
        if kind == "TRIM_HORIZON":
            position = shard.start_seq
        elif kind == "LATEST":
            position = self.service.latest_counter(name) + 1
        elif kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            if not params.get("StartingSequenceNumber"):
                raise InvalidArgument(f"StartingSequenceNumber must be specified for {kind}.")
            position = counter_of(str(params["StartingSequenceNumber"])) + (kind == "AFTER_SEQUENCE_NUMBER")
        else:
            stamp = params.get("Timestamp")
            if stamp is None:
                raise InvalidArgument("Must specify timestamp when using AT_TIMESTAMP iterator type.")
            if float(stamp) > time.time():
                raise InvalidArgument("The timestamp provided is in the future.")
            position = self.service.first_counter_at(name, shard_id, float(stamp))
        return {"ShardIterator": self.service.make_iterator(name, shard_id, position)}

    def get_records(self, params: dict[str, Any]) -> dict[str, Any]:
        limit = int(params.get("Limit") or MAX_GET_RECORDS)
        v = Violations()
        v.at_least(limit, "limit", 1)
        v.at_most(limit, "limit", MAX_GET_RECORDS)
        _raise(v)
        name, shard_id, position = self.service.open_iterator(str(params.get("ShardIterator", "")))
        records, behind = self.service.read(name, shard_id, position, limit)
        next_position = records[-1].seq + 1 if records else position
        result: dict[str, Any] = {
            "Records": [
                {
                    "SequenceNumber": sequence(r.seq),
                    "ApproximateArrivalTimestamp": r.arrival,
                    "Data": base64.b64encode(r.data).decode(),
                    "PartitionKey": r.partition_key,
                }
                for r in records
            ],
            "MillisBehindLatest": 0 if behind is None else max(0, int((time.time() - behind) * 1000)),
        }
        every = self.service.shards(name)
        shard = next(s for s in every if s.shard_id == shard_id)
        if shard.end_seq is not None and behind is None:
            # The end of a closed shard: no next iterator; its children carry on from here.
            result["ChildShards"] = [
                {
                    "ShardId": c.shard_id,
                    "ParentShards": [p for p in (c.parent, c.adjacent_parent) if p],
                    "HashKeyRange": describe_shard(c)["HashKeyRange"],
                }
                for c in every
                if shard_id in (c.parent, c.adjacent_parent)
            ]
        else:
            result["NextShardIterator"] = self.service.make_iterator(name, shard_id, next_position)
        return result


def _params(body: bytes) -> dict[str, Any]:
    return json_object(body, KinesisValidation)


def _raise(v: Violations) -> None:
    v.raise_if_any(KinesisValidation)
