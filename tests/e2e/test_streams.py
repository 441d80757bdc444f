"""The Kinesis-compatible stream service through boto3's kinesis client."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import pytest

from .conftest import error_of as aws_error

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def kinesis(squall: Any) -> Any:
    return squall.client("kinesis")


def error(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    return aws_error(call, **kwargs)[:3]


def read_all(kinesis: Any, stream: str, shard: str, kind: str = "TRIM_HORIZON", **kwargs: Any) -> list[dict[str, Any]]:
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType=kind, **kwargs)[
        "ShardIterator"
    ]
    records: list[dict[str, Any]] = []
    while True:
        page = kinesis.get_records(ShardIterator=iterator, Limit=2)
        records += page["Records"]
        iterator = page["NextShardIterator"]
        if not page["Records"]:
            return records


def test_stream_lifecycle_and_shapes(kinesis: Any) -> None:
    kinesis.create_stream(StreamName="life", ShardCount=3)
    kinesis.get_waiter("stream_exists").wait(StreamName="life", WaiterConfig={"Delay": 0.1})
    description = kinesis.describe_stream(StreamName="life")["StreamDescription"]
    assert description["StreamARN"] == "arn:aws:kinesis:us-east-1:000000000000:stream/life"
    assert description["StreamStatus"] == "ACTIVE" and description["RetentionPeriodHours"] == 24
    assert [s["ShardId"] for s in description["Shards"]] == [f"shardId-00000000000{i}" for i in range(3)]
    ranges = [
        (int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
        for s in description["Shards"]
    ]
    assert ranges[0][0] == 0 and ranges[-1][1] == 2**128 - 1
    assert all(ranges[i][1] + 1 == ranges[i + 1][0] for i in range(2))
    summary = kinesis.describe_stream_summary(StreamName="life")["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 3 and summary["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert "life" in kinesis.list_streams()["StreamNames"]
    assert len(kinesis.list_shards(StreamName="life", MaxResults=2)["Shards"]) == 2
    code, message, status = error(kinesis.create_stream, StreamName="life", ShardCount=1)
    assert (code, status) == ("ResourceInUseException", 400)
    assert message == "Stream life under account 000000000000 already exists."
    kinesis.add_tags_to_stream(StreamName="life", Tags={"team": "data"})
    assert kinesis.list_tags_for_stream(StreamName="life")["Tags"] == [{"Key": "team", "Value": "data"}]
    kinesis.delete_stream(StreamName="life")
    code, message, status = error(kinesis.describe_stream, StreamName="life")
    assert (code, message, status) == (
        "ResourceNotFoundException",
        "Stream life under account 000000000000 not found.",
        400,
    )


def test_records_are_partitioned_by_md5_and_read_in_order(kinesis: Any) -> None:
    kinesis.create_stream(StreamName="orders", ShardCount=4)
    shards = kinesis.describe_stream(StreamName="orders")["StreamDescription"]["Shards"]
    sequence_numbers = []
    for i in range(40):
        key = f"customer-{i % 7}"
        put = kinesis.put_record(StreamName="orders", Data=f"order {i}".encode(), PartitionKey=key)
        digest = int.from_bytes(hashlib.md5(key.encode()).digest(), "big")
        expected = next(
            s["ShardId"]
            for s in shards
            if int(s["HashKeyRange"]["StartingHashKey"]) <= digest <= int(s["HashKeyRange"]["EndingHashKey"])
        )
        assert put["ShardId"] == expected
        sequence_numbers.append(int(put["SequenceNumber"]))
    assert sequence_numbers == sorted(sequence_numbers) and len(set(sequence_numbers)) == 40
    seen = []
    for shard in shards:
        records = read_all(kinesis, "orders", shard["ShardId"])
        numbers = [int(r["SequenceNumber"]) for r in records]
        assert numbers == sorted(numbers)
        seen += [r["Data"].decode() for r in records]
    assert sorted(seen) == sorted(f"order {i}" for i in range(40))
    kinesis.delete_stream(StreamName="orders")


def test_put_records_and_iterator_types(kinesis: Any) -> None:
    kinesis.create_stream(StreamName="batch", ShardCount=1)
    before = time.time()
    result = kinesis.put_records(
        StreamName="batch", Records=[{"Data": f"r{i}".encode(), "PartitionKey": "k"} for i in range(10)]
    )
    assert result["FailedRecordCount"] == 0 and len(result["Records"]) == 10
    numbers = [r["SequenceNumber"] for r in result["Records"]]
    shard = result["Records"][0]["ShardId"]
    at = read_all(kinesis, "batch", shard, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=numbers[3])
    assert [r["Data"] for r in at] == [f"r{i}".encode() for i in range(3, 10)]
    after = read_all(kinesis, "batch", shard, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=numbers[3])
    assert [r["Data"] for r in after] == [f"r{i}".encode() for i in range(4, 10)]
    stamped = read_all(kinesis, "batch", shard, "AT_TIMESTAMP", Timestamp=before - 1)
    assert len(stamped) == 10 and stamped[0]["ApproximateArrivalTimestamp"].timestamp() >= before - 1
    latest = kinesis.get_shard_iterator(StreamName="batch", ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    assert kinesis.get_records(ShardIterator=latest)["Records"] == []
    kinesis.put_record(StreamName="batch", Data=b"new", PartitionKey="k")
    page = kinesis.get_records(ShardIterator=latest)
    assert [r["Data"] for r in page["Records"]] == [b"new"] and page["MillisBehindLatest"] == 0
    first = kinesis.get_records(
        ShardIterator=kinesis.get_shard_iterator(StreamName="batch", ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ],
        Limit=1,
    )
    assert first["MillisBehindLatest"] >= 0 and len(first["Records"]) == 1
    kinesis.delete_stream(StreamName="batch")


def test_validation_and_limits(kinesis: Any) -> None:
    kinesis.create_stream(StreamName="limits", ShardCount=1)
    code, message, _ = error(
        kinesis.put_records, StreamName="limits", Records=[{"Data": b"x", "PartitionKey": "k"}] * 501
    )
    assert code == "ValidationException" and "less than or equal to 500" in message
    code, message, _ = error(kinesis.put_record, StreamName="limits", Data=b"x" * (1024 * 1024 + 1), PartitionKey="k")
    assert code == "ValidationException" and "1048576" in message
    code, _, _ = error(
        kinesis.put_record, StreamName="limits", Data=b"x", PartitionKey="k", ExplicitHashKey=str(2**128)
    )
    assert code == "InvalidArgumentException"
    code, _, _ = error(
        kinesis.get_shard_iterator, StreamName="limits", ShardId="shardId-000000000009", ShardIteratorType="LATEST"
    )
    assert code == "ResourceNotFoundException"
    code, _, _ = error(kinesis.get_records, ShardIterator="bm90LWFuLWl0ZXJhdG9y.forged")
    assert code == "InvalidArgumentException"
    code, _, _ = error(kinesis.create_stream, StreamName="bad name", ShardCount=1)
    assert code == "ValidationException"
    code, _, _ = error(kinesis.put_record, StreamName="nope", Data=b"x", PartitionKey="k")
    assert code == "ResourceNotFoundException"
    kinesis.delete_stream(StreamName="limits")


def test_on_demand_and_arn_parameters(kinesis: Any) -> None:
    kinesis.create_stream(StreamName="elastic", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    arn = "arn:aws:kinesis:us-east-1:000000000000:stream/elastic"
    summary = kinesis.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]
    assert summary["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"} and summary["OpenShardCount"] == 4
    put = kinesis.put_record(StreamARN=arn, Data=base64.b64decode("aGk="), PartitionKey="p")
    assert put["SequenceNumber"].isdigit()
    kinesis.delete_stream(StreamARN=arn)


def test_records_survive_a_restart(new_server: Any) -> None:
    server = new_server()
    kinesis = server.client("kinesis")
    kinesis.create_stream(StreamName="durable", ShardCount=1)
    put = kinesis.put_record(StreamName="durable", Data=b"kept", PartitionKey="k")
    server.stop()
    server.start()
    kinesis = server.client("kinesis")
    assert [r["Data"] for r in read_all(kinesis, "durable", put["ShardId"])] == [b"kept"]


def test_resharding_keeps_order_through_parents_and_children(kinesis: Any) -> None:
    kinesis.create_stream(StreamName="reshard", ShardCount=2)
    for i in range(6):
        kinesis.put_record(StreamName="reshard", Data=f"before {i}".encode(), PartitionKey=f"k{i}")
    shards = kinesis.list_shards(StreamName="reshard")["Shards"]
    first = shards[0]
    middle = (int(first["HashKeyRange"]["StartingHashKey"]) + int(first["HashKeyRange"]["EndingHashKey"])) // 2
    kinesis.split_shard(StreamName="reshard", ShardToSplit=first["ShardId"], NewStartingHashKey=str(middle))
    after_split = kinesis.list_shards(StreamName="reshard")["Shards"]
    assert len(after_split) == 4
    children = [s for s in after_split if s.get("ParentShardId") == first["ShardId"]]
    assert len(children) == 2
    closed = next(s for s in after_split if s["ShardId"] == first["ShardId"])
    assert "EndingSequenceNumber" in closed["SequenceNumberRange"]
    code, _, _ = error(
        kinesis.split_shard, StreamName="reshard", ShardToSplit=first["ShardId"], NewStartingHashKey=str(middle)
    )
    assert code == "ResourceInUseException"
    # Reading the closed parent to its end hands over to its children.
    iterator = kinesis.get_shard_iterator(
        StreamName="reshard", ShardId=first["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    while True:
        page = kinesis.get_records(ShardIterator=iterator)
        if "NextShardIterator" not in page or page["NextShardIterator"] is None:
            break
        iterator = page["NextShardIterator"]
    assert sorted(c["ShardId"] for c in page["ChildShards"]) == sorted(c["ShardId"] for c in children)
    kinesis.merge_shards(
        StreamName="reshard", ShardToMerge=children[0]["ShardId"], AdjacentShardToMerge=children[1]["ShardId"]
    )
    merged = [s for s in kinesis.list_shards(StreamName="reshard")["Shards"] if s.get("AdjacentParentShardId")]
    assert len(merged) == 1
    update = kinesis.update_shard_count(StreamName="reshard", TargetShardCount=3, ScalingType="UNIFORM_SCALING")
    assert (update["CurrentShardCount"], update["TargetShardCount"]) == (2, 3)
    summary = kinesis.describe_stream_summary(StreamName="reshard")["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 3
    put = kinesis.put_record(StreamName="reshard", Data=b"after", PartitionKey="k1")
    open_ids = [
        s["ShardId"]
        for s in kinesis.list_shards(StreamName="reshard")["Shards"]
        if "EndingSequenceNumber" not in s["SequenceNumberRange"]
    ]
    assert put["ShardId"] in open_ids
    kinesis.delete_stream(StreamName="reshard")


def test_retention_changes(kinesis: Any) -> None:
    kinesis.create_stream(StreamName="retained", ShardCount=1)
    kinesis.increase_stream_retention_period(StreamName="retained", RetentionPeriodHours=48)
    assert (
        kinesis.describe_stream_summary(StreamName="retained")["StreamDescriptionSummary"]["RetentionPeriodHours"] == 48
    )
    code, message, _ = error(kinesis.increase_stream_retention_period, StreamName="retained", RetentionPeriodHours=24)
    assert code == "InvalidArgumentException" and "DecreaseRetentionPeriod" in message
    code, _, _ = error(kinesis.decrease_stream_retention_period, StreamName="retained", RetentionPeriodHours=23)
    assert code == "ValidationException"
    kinesis.decrease_stream_retention_period(StreamName="retained", RetentionPeriodHours=24)
    code, _, _ = error(kinesis.increase_stream_retention_period, StreamName="retained", RetentionPeriodHours=8761)
    assert code == "ValidationException"
    kinesis.delete_stream(StreamName="retained")
