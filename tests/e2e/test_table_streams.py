"""Table change streams: the DynamoDB Streams API through boto3, table-triggered functions, and a crash."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel

from tests.conftest import make_zip
from tests.e2e.conftest import SquallServer, error_of
from tests.e2e.test_stream_triggers import make_stream, sink_notes

pytestmark = pytest.mark.e2e
_names = itertools.count()

#: Copies every event it gets, whole, to the Kinesis stream named by SINK (one shard: order is kept).
#: Records whose NewImage has ``fail`` set fail the batch.
FORWARDER = """
import json, os
import boto3

kinesis = boto3.client("kinesis")

def handler(event, context):
    for record in event["Records"]:
        if "fail" in (record["dynamodb"].get("NewImage") or {}):
            raise ValueError("told to fail")
    kinesis.put_record(StreamName=os.environ["SINK"], Data=json.dumps(event).encode(), PartitionKey="s")
"""

#: An OnFailure destination: copies the failure record it gets to the Kinesis stream named by SINK.
FAILURE_SINK = """
import json, os
import boto3

def handler(event, context):
    boto3.client("kinesis").put_record(StreamName=os.environ["SINK"], Data=json.dumps(event), PartitionKey="f")
"""


@pytest.fixture(scope="module")
def ddb(squall: SquallServer) -> Any:
    return squall.client("dynamodb")


@pytest.fixture(scope="module")
def streams(squall: SquallServer) -> Any:
    return squall.client("dynamodbstreams")


@pytest.fixture(scope="module")
def kinesis(squall: SquallServer) -> Any:
    return squall.client("kinesis")


def s(value: str) -> dict[str, str]:
    return {"S": value}


def new_table(ddb: Any, view: str | None = "NEW_AND_OLD_IMAGES", name: str | None = None) -> tuple[str, str]:
    """A table keyed by ``pk`` (string), with a stream of ``view``: (name, stream ARN or "")."""
    name = name or f"streamed-{next(_names)}"
    extra: dict[str, Any] = {}
    if view is not None:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    created = ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )["TableDescription"]
    return name, str(created.get("LatestStreamArn", ""))


def read_all(streams: Any, arn: str, kind: str = "TRIM_HORIZON") -> list[dict[str, Any]]:
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=kind)["ShardIterator"]
    records: list[dict[str, Any]] = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator)
        records += page["Records"]
        if not page["Records"]:
            break
        iterator = page.get("NextShardIterator")
    return records


def test_streams_api_lists_describes_and_reads_changes(ddb: Any, streams: Any) -> None:
    name, arn = new_table(ddb)
    assert arn.startswith(f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}/stream/20")
    ddb.put_item(TableName=name, Item={"pk": s("a"), "v": {"N": "1"}})
    ddb.put_item(TableName=name, Item={"pk": s("a"), "v": {"N": "1"}})  # identical: no MODIFY
    ddb.update_item(
        TableName=name, Key={"pk": s("a")}, UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"N": "2"}}
    )
    ddb.delete_item(TableName=name, Key={"pk": s("a")})
    ddb.delete_item(TableName=name, Key={"pk": s("missing")})  # nothing deleted: no REMOVE

    listed = streams.list_streams(TableName=name)["Streams"]
    assert listed == [{"StreamArn": arn, "TableName": name, "StreamLabel": arn.rpartition("/")[2]}]
    assert arn in [x["StreamArn"] for x in streams.list_streams()["Streams"]]
    description = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert description["StreamStatus"] == "ENABLED"
    assert description["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert description["TableName"] == name
    assert description["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    (shard,) = description["Shards"]
    assert shard["ShardId"].startswith("shardId-") and len(shard["ShardId"]) >= 28
    assert "EndingSequenceNumber" not in shard["SequenceNumberRange"]

    records = read_all(streams, arn)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    insert, modify, remove = (r["dynamodb"] for r in records)
    assert insert["Keys"] == {"pk": s("a")} and insert["NewImage"] == {"pk": s("a"), "v": {"N": "1"}}
    assert "OldImage" not in insert
    assert modify["OldImage"]["v"] == {"N": "1"} and modify["NewImage"]["v"] == {"N": "2"}
    assert remove["OldImage"]["v"] == {"N": "2"} and "NewImage" not in remove
    for record in records:
        assert record["eventVersion"] == "1.1" and record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == "us-east-1" and record["dynamodb"]["SizeBytes"] > 0
        assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert record["dynamodb"]["ApproximateCreationDateTime"].year >= 2024
        assert "userIdentity" not in record

    first = records[0]["dynamodb"]["SequenceNumber"]
    at = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=first
    )["ShardIterator"]
    assert [r["eventName"] for r in streams.get_records(ShardIterator=at, Limit=2)["Records"]] == ["INSERT", "MODIFY"]
    after = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=first
    )["ShardIterator"]
    assert [r["eventName"] for r in streams.get_records(ShardIterator=after)["Records"]] == ["MODIFY", "REMOVE"]
    latest = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST")
    page = streams.get_records(ShardIterator=latest["ShardIterator"])
    assert page["Records"] == [] and page["NextShardIterator"]
    ddb.put_item(TableName=name, Item={"pk": s("b")})
    assert [r["dynamodb"]["Keys"] for r in streams.get_records(ShardIterator=page["NextShardIterator"])["Records"]] == [
        {"pk": s("b")}
    ]


def test_streams_api_errors(ddb: Any, streams: Any) -> None:
    name, arn = new_table(ddb, "KEYS_ONLY")
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    code, _, status, _ = error_of(streams.describe_stream, StreamArn=arn.replace(name, "no-such-table"))
    assert (code, status) == ("ResourceNotFoundException", 400)
    code, _, _, _ = error_of(
        streams.get_shard_iterator,
        StreamArn=arn,
        ShardId="shardId-00000000000000000000-00000000",
        ShardIteratorType="TRIM_HORIZON",
    )
    assert code == "ResourceNotFoundException"
    code, message, _, _ = error_of(
        streams.get_shard_iterator, StreamArn=arn, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER"
    )
    assert code == "ValidationException"
    code, message, _, _ = error_of(streams.get_shard_iterator, StreamArn=arn, ShardId=shard, ShardIteratorType="NEWEST")
    assert code == "ValidationException" and "shardIteratorType" in message
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    code, message, _, _ = error_of(streams.get_records, ShardIterator=iterator["ShardIterator"], Limit=1001)
    assert code == "ValidationException"
    assert message == (
        "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 1000"
    )
    code, _, _, _ = error_of(streams.get_records, ShardIterator=iterator["ShardIterator"][:-4] + "abcd")
    assert code == "ValidationException"
    code, _, _, _ = error_of(streams.list_streams, TableName="never-created")
    assert code == "ResourceNotFoundException"


def test_view_types_choose_the_images(ddb: Any, streams: Any) -> None:
    expected = {
        "KEYS_ONLY": (set(), set(), set()),
        "NEW_IMAGE": ({"NewImage"}, {"NewImage"}, set()),
        "OLD_IMAGE": (set(), {"OldImage"}, {"OldImage"}),
        "NEW_AND_OLD_IMAGES": ({"NewImage"}, {"NewImage", "OldImage"}, {"OldImage"}),
    }
    for view, images in expected.items():
        name, arn = new_table(ddb, view)
        ddb.put_item(TableName=name, Item={"pk": s("k"), "n": {"N": "1"}})
        ddb.put_item(TableName=name, Item={"pk": s("k"), "n": {"N": "2"}})
        ddb.delete_item(TableName=name, Key={"pk": s("k")})
        records = read_all(streams, arn)
        assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
        for record, wanted in zip(records, images, strict=True):
            assert (
                set(record["dynamodb"])
                - {"ApproximateCreationDateTime", "Keys", "SequenceNumber", "SizeBytes", "StreamViewType"}
                == wanted
            ), view
            assert record["dynamodb"]["Keys"] == {"pk": s("k")}


def test_disabling_and_enabling_gives_a_new_stream(ddb: Any, streams: Any) -> None:
    name, old = new_table(ddb)
    ddb.put_item(TableName=name, Item={"pk": s("before")})
    ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})
    ddb.put_item(TableName=name, Item={"pk": s("unstreamed")})
    described = ddb.update_table(
        TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    )["TableDescription"]
    new = described["LatestStreamArn"]
    assert new != old
    ddb.put_item(TableName=name, Item={"pk": s("after")})
    closed = streams.describe_stream(StreamArn=old)["StreamDescription"]
    assert closed["StreamStatus"] == "DISABLED"
    shard_range = closed["Shards"][0]["SequenceNumberRange"]
    assert int(shard_range["EndingSequenceNumber"]) >= int(shard_range["StartingSequenceNumber"])
    assert [r["dynamodb"]["Keys"] for r in read_all(streams, old)] == [{"pk": s("before")}]
    assert [r["dynamodb"]["Keys"] for r in read_all(streams, new)] == [{"pk": s("after")}]
    assert [x["StreamArn"] for x in streams.list_streams(TableName=name)["Streams"]] == [old, new]
    # Read to its end, a closed shard gives no further iterator.
    shard = closed["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=old, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    page = streams.get_records(ShardIterator=iterator["ShardIterator"])
    assert len(page["Records"]) == 1 and "NextShardIterator" not in page


@pytest.mark.slow
def test_ttl_deletions_are_removes_by_the_service(ddb: Any, streams: Any) -> None:
    name, arn = new_table(ddb, "OLD_IMAGE")
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})
    ddb.put_item(TableName=name, Item={"pk": s("old"), "expires": {"N": str(int(time.time()) - 10)}})
    deadline = time.monotonic() + 15
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(records) < 2:
        records = read_all(streams, arn)
        time.sleep(0.2)
    assert [r["eventName"] for r in records] == ["INSERT", "REMOVE"]
    assert "userIdentity" not in records[0]
    assert records[1]["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    assert records[1]["dynamodb"]["OldImage"]["pk"] == s("old")
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": s("old")})


def events_of(kinesis: Any, sink: str, records: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The events the forwarder copied, once they hold ``records`` records in all."""
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = sink_notes(kinesis, sink, 0, timeout=1)
        if sum(len(e["Records"]) for e in events) >= records:
            break
        time.sleep(0.3)
    return events


@pytest.mark.slow
def test_a_table_stream_triggers_a_function_in_order_per_key(
    lam: Any, ddb: Any, kinesis: Any, make_function: Any
) -> None:
    name, arn = new_table(ddb)
    make_stream(kinesis, f"{name}-sink")
    make_function(
        name, make_zip({"app.py": FORWARDER}), Timeout=10, Environment={"Variables": {"SINK": f"{name}-sink"}}
    )
    ddb.put_item(TableName=name, Item={"pk": s("early"), "n": {"N": "0"}})
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName=name,
        StartingPosition="TRIM_HORIZON",
        BatchSize=4,
        ParallelizationFactor=2,
    )
    assert mapping["EventSourceArn"] == arn and mapping["StartingPosition"] == "TRIM_HORIZON"
    for key in ("x", "y", "z"):
        ddb.put_item(TableName=name, Item={"pk": s(key), "n": {"N": "1"}})
    for key in ("x", "y", "z"):
        ddb.update_item(
            TableName=name,
            Key={"pk": s(key)},
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
    for key in ("x", "y", "z"):
        ddb.delete_item(TableName=name, Key={"pk": s(key)})
    events = events_of(kinesis, f"{name}-sink", 10)
    for event in events:
        parsed = DynamoDBStreamModel.model_validate(event)
        assert all(r.eventSourceARN == arn for r in parsed.Records)
    records = [r for e in events for r in e["Records"]]
    assert len(records) == 10 and all(len(e["Records"]) <= 4 for e in events)
    assert [r["eventName"] for r in records if r["dynamodb"]["Keys"] == {"pk": s("early")}] == ["INSERT"]
    for key in ("x", "y", "z"):
        mine = [r for r in records if r["dynamodb"]["Keys"] == {"pk": s(key)}]
        assert [r["eventName"] for r in mine] == ["INSERT", "MODIFY", "REMOVE"]
        assert [r["dynamodb"].get("NewImage", {}).get("n") for r in mine] == [{"N": "1"}, {"N": "2"}, None]
        assert [r["dynamodb"].get("OldImage", {}).get("n") for r in mine] == [None, {"N": "1"}, {"N": "2"}]
        numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in mine]
        assert numbers == sorted(numbers)
    sample = records[0]
    assert sample["eventSourceARN"] == arn and sample["eventVersion"] == "1.1"
    assert sample["eventSource"] == "aws:dynamodb" and sample["awsRegion"] == "us-east-1"
    got = lam.get_event_source_mapping(UUID=mapping["UUID"])
    assert got["State"] == "Enabled" and got["LastProcessingResult"] == "OK"
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


@pytest.mark.slow
def test_ttl_removes_reach_the_function_with_the_service_principal(
    lam: Any, ddb: Any, kinesis: Any, make_function: Any
) -> None:
    name, arn = new_table(ddb, "KEYS_ONLY")
    make_stream(kinesis, f"{name}-sink")
    make_function(
        name, make_zip({"app.py": FORWARDER}), Timeout=10, Environment={"Variables": {"SINK": f"{name}-sink"}}
    )
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="LATEST")
    # LATEST is fixed when the mapping is created: this write comes after it.
    ddb.put_item(TableName=name, Item={"pk": s("gone"), "ttl": {"N": str(int(time.time()) - 5)}})
    records = [r for e in events_of(kinesis, f"{name}-sink", 2) for r in e["Records"]]
    assert [r["eventName"] for r in records] == ["INSERT", "REMOVE"]
    assert "userIdentity" not in records[0]
    assert records[1]["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert DynamoDBStreamModel.model_validate({"Records": records}).Records[1].userIdentity is not None
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


@pytest.mark.slow
def test_failed_batches_go_to_on_failure_with_ddb_batch_info(
    lam: Any, ddb: Any, kinesis: Any, make_function: Any
) -> None:
    name, arn = new_table(ddb, "NEW_IMAGE")
    make_stream(kinesis, f"{name}-failures")
    make_stream(kinesis, f"{name}-sink")
    make_function(
        name, make_zip({"app.py": FORWARDER}), Timeout=10, Environment={"Variables": {"SINK": f"{name}-sink"}}
    )
    sink = make_function(
        f"{name}-dlq", make_zip({"app.py": FAILURE_SINK}), Environment={"Variables": {"SINK": f"{name}-failures"}}
    )
    ddb.put_item(TableName=name, Item={"pk": s("bad"), "fail": {"BOOL": True}})
    ddb.put_item(TableName=name, Item={"pk": s("good")})
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName=name,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": sink["FunctionArn"]}},
    )
    failures = sink_notes(kinesis, f"{name}-failures", 1, timeout=30)
    assert len(failures) == 1
    info = failures[0]["DDBStreamBatchInfo"]
    assert "KinesisBatchInfo" not in failures[0]
    assert info["streamArn"] == arn and info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert info["shardId"].startswith("shardId-")
    assert failures[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    records = [r for e in events_of(kinesis, f"{name}-sink", 1) for r in e["Records"]]
    assert [r["dynamodb"]["Keys"] for r in records] == [{"pk": s("good")}]
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_mappings_on_table_streams_refuse_what_aws_refuses(lam: Any, ddb: Any, make_function: Any) -> None:
    name, arn = new_table(ddb, "KEYS_ONLY")
    make_function(name, make_zip({"app.py": FORWARDER}))
    code, message, _, _ = error_of(
        lam.create_event_source_mapping,
        EventSourceArn=arn,
        FunctionName=name,
        StartingPosition="AT_TIMESTAMP",
        StartingPositionTimestamp=time.time(),
    )
    assert code == "InvalidParameterValueException" and "AT_TIMESTAMP" in message
    code, message, _, _ = error_of(lam.create_event_source_mapping, EventSourceArn=arn, FunctionName=name)
    assert code == "InvalidParameterValueException" and "StartingPosition" in message
    missing = arn.replace(name, "no-such-table")
    code, message, _, _ = error_of(
        lam.create_event_source_mapping, EventSourceArn=missing, FunctionName=name, StartingPosition="LATEST"
    )
    assert code == "InvalidParameterValueException" and missing in message
    code, _, _, _ = error_of(
        lam.create_event_source_mapping,
        EventSourceArn=arn,
        FunctionName=name,
        StartingPosition="TRIM_HORIZON",
        FilterCriteria={"Filters": [{"Pattern": "not json"}]},
    )
    assert code == "InvalidParameterValueException"


@pytest.mark.slow
def test_filters_address_the_dynamodb_record(lam: Any, ddb: Any, kinesis: Any, make_function: Any) -> None:
    name, arn = new_table(ddb)
    make_stream(kinesis, f"{name}-sink")
    make_function(
        name, make_zip({"app.py": FORWARDER}), Timeout=10, Environment={"Variables": {"SINK": f"{name}-sink"}}
    )
    pattern = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"colour": {"S": ["red"]}}}}
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName=name,
        StartingPosition="TRIM_HORIZON",
        FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]},
    )
    ddb.put_item(TableName=name, Item={"pk": s("1"), "colour": s("blue")})
    ddb.put_item(TableName=name, Item={"pk": s("2"), "colour": s("red")})
    ddb.put_item(TableName=name, Item={"pk": s("2"), "colour": s("red"), "more": s("x")})  # a MODIFY: filtered out
    ddb.put_item(TableName=name, Item={"pk": s("3"), "colour": s("red")})
    events_of(kinesis, f"{name}-sink", 2)
    time.sleep(1)
    records = [r for e in events_of(kinesis, f"{name}-sink", 2) for r in e["Records"]]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["2", "3"]
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


@pytest.mark.slow
def test_a_crash_never_splits_an_item_from_its_change_record(new_server: Any) -> None:
    server: SquallServer = new_server()
    ddb = server.client("dynamodb")
    name, arn = new_table(ddb, name="crashy")
    acknowledged: list[int] = []
    stop = threading.Event()

    def write_loop() -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            try:
                if i % 3 == 2:
                    ddb.update_item(
                        TableName=name,
                        Key={"pk": s(f"k{i - 1}")},
                        UpdateExpression="SET touched = :i",
                        ExpressionAttributeValues={":i": {"N": str(i)}},
                    )
                else:
                    ddb.put_item(TableName=name, Item={"pk": s(f"k{i}"), "i": {"N": str(i)}})
            except Exception:
                return  # the server is gone
            acknowledged.append(i)

    writer = threading.Thread(target=write_loop)
    writer.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    stop.set()
    writer.join(30)
    assert len(acknowledged) >= 60

    server.start()
    ddb = server.client("dynamodb")
    streams = server.client("dynamodbstreams")
    items: dict[str, dict[str, Any]] = {}
    scan: dict[str, Any] = {"TableName": name}
    while True:
        page = ddb.scan(**scan)
        items.update({item["pk"]["S"]: item for item in page["Items"]})
        if "LastEvaluatedKey" not in page:
            break
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    records = read_all(streams, arn)
    # Replaying the change records rebuilds the table exactly: no write without its record, no record
    # without its write.
    replayed: dict[str, dict[str, Any]] = {}
    for record in records:
        key = record["dynamodb"]["Keys"]["pk"]["S"]
        if record["eventName"] == "REMOVE":
            replayed.pop(key, None)
        else:
            assert record["eventName"] == ("MODIFY" if key in replayed else "INSERT")
            replayed[key] = record["dynamodb"]["NewImage"]
    assert replayed == items
    for i in acknowledged:
        if i % 3 != 2:
            assert f"k{i}" in items
        else:
            assert items[f"k{i - 1}"]["touched"] == {"N": str(i)}


def test_squall_tables_lists_tables_streams_and_mappings(
    squall: SquallServer, lam: Any, ddb: Any, make_function: Any
) -> None:
    name, arn = new_table(ddb, "NEW_IMAGE")
    plain, _ = new_table(ddb, None)
    for key in ("a", "b"):
        ddb.put_item(TableName=name, Item={"pk": s(key)})
    make_function(name, make_zip({"app.py": FORWARDER}))
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, StartingPosition="LATEST", Enabled=False
    )
    command = [sys.executable, "-m", "squall", "tables", "--data-dir", str(squall.data_dir)]
    report = json.loads(subprocess.run([*command, "--json"], capture_output=True, text=True, check=True).stdout)
    tables = {t["name"]: t for t in report["tables"]}
    assert tables[plain]["stream"] is None and tables[plain]["items"] == 0
    mine = tables[name]
    assert mine["items"] == 2 and mine["bytes"] > 0
    assert mine["stream"]["arn"] == arn and mine["stream"]["view_type"] == "NEW_IMAGE"
    assert mine["stream"]["records"] == 2
    (reader,) = mine["stream"]["mappings"]
    assert reader["uuid"] == mapping["UUID"] and reader["state"] == "Disabled" and reader["behind"] == 0
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert f"{name}  2 item(s)" in text and f"mapping {mapping['UUID']}" in text
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
