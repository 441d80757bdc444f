"""Change records of table streams: the record builder, the log written with each item, trimming, iterators."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel

from squall.services.tables import changes
from squall.services.tables.errors import (
    ExpiredIterator,
    TableNotFound,
    TransactionCanceled,
    TrimmedDataAccess,
    Validation,
)
from squall.services.tables.expressions import Placeholders, parse_condition
from squall.services.tables.service import TableService, WriteOp
from squall.services.tables.streams import TableStreams
from tests.unit.table_stores import TableServices

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "events"
ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/things/stream/2026-01-01T00:00:00.000"


def create(view: str | None = "NEW_AND_OLD_IMAGES", name: str = "things") -> dict[str, Any]:
    params: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if view is not None:
        params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    return params


@pytest.fixture
def service(table_services: TableServices) -> TableService:
    return table_services.open()


def shape(value: object) -> object:
    """Keys and value types, recursively: what must match between two events."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def put(service: TableService, key: str, **attributes: str) -> None:
    item = {"pk": {"S": key}} | {name: {"S": value} for name, value in attributes.items()}
    service.write(WriteOp(table="things", kind="put", item=item))


def everything(streams: TableStreams, arn: str) -> list[dict[str, Any]]:
    shard = streams.shards(arn)[0].shard_id
    iterator = streams.get_shard_iterator({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"})
    return list(streams.get_records({"ShardIterator": iterator["ShardIterator"]})["Records"])


# --- the record builder ------------------------------------------------------------------------------------
def test_event_names_and_no_op_writes() -> None:
    item = {"pk": {"S": "a"}, "tags": {"SS": ["x", "y"]}}
    assert changes.event_name(None, item) == "INSERT"
    assert changes.event_name(item, None) == "REMOVE"
    assert changes.event_name(item, item | {"n": {"N": "1"}}) == "MODIFY"
    assert changes.event_name(item, dict(item)) is None
    assert changes.event_name(item, {"pk": {"S": "a"}, "tags": {"SS": ["y", "x"]}}) is None  # sets are unordered
    assert changes.event_name(None, None) is None


@pytest.mark.parametrize(
    ("view", "images"),
    [
        ("KEYS_ONLY", set()),
        ("NEW_IMAGE", {"NewImage"}),
        ("OLD_IMAGE", {"OldImage"}),
        ("NEW_AND_OLD_IMAGES", {"NewImage", "OldImage"}),
    ],
)
def test_view_types_choose_images(view: str, images: set[str]) -> None:
    keys = {"pk": {"S": "a"}}
    record = changes.change_record(
        "MODIFY", keys, keys | {"v": {"N": "1"}}, keys | {"v": {"N": "2"}}, view, "eu-west-1", 1700000000.7, False
    )
    body = record["dynamodb"]
    assert set(body) == {"ApproximateCreationDateTime", "Keys", "SizeBytes", "StreamViewType"} | images
    assert body["ApproximateCreationDateTime"] == 1700000000 and body["StreamViewType"] == view
    assert record["eventVersion"] == "1.1" and record["eventSource"] == "aws:dynamodb"
    assert record["awsRegion"] == "eu-west-1" and len(record["eventID"]) == 32
    assert "userIdentity" not in record
    large = keys | {"v": {"S": "x" * 100}}
    bigger = changes.change_record("MODIFY", keys, large, large, view, "r", 0, False)
    assert bigger["dynamodb"]["SizeBytes"] > body["SizeBytes"] + (90 if images else -1)


def test_ttl_removals_carry_the_service_principal_in_both_spellings() -> None:
    keys = {"pk": {"S": "a"}}
    record = changes.change_record("REMOVE", keys, keys, None, "KEYS_ONLY", "us-east-1", 0, True)
    assert record["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    event = changes.lambda_record(record, ARN)
    assert event["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert event["eventSourceARN"] == ARN


def test_sequence_numbers_are_increasing_fixed_width_decimals() -> None:
    numbers = [changes.sequence(n) for n in (1, 2, 10, 999_999)]
    assert numbers == sorted(numbers) and len({len(n) for n in numbers}) == 1 and len(numbers[0]) >= 21
    assert [changes.counter_of(n) for n in numbers] == [1, 2, 10, 999_999]
    assert changes.counter_of("12") is None and changes.counter_of("abc") is None


def test_the_lambda_event_has_the_shape_of_awss_sample_and_parses(service: TableService) -> None:
    if not SAMPLES.is_dir() and not os.environ.get("CI"):
        pytest.skip(f"AWS's sample events are not at {SAMPLES}")
    # Keyed as the sample's table is: "key" (hash) and "val" (range).
    service.create_table(
        create()
        | {
            "KeySchema": [{"AttributeName": "key", "KeyType": "HASH"}, {"AttributeName": "val", "KeyType": "RANGE"}],
            "AttributeDefinitions": [
                {"AttributeName": "key", "AttributeType": "S"},
                {"AttributeName": "val", "AttributeType": "S"},
            ],
        }
    )
    item = {"key": {"S": "binary"}, "val": {"S": "data"}, "asdf1": {"B": "AAEqQQ=="}}
    service.write(WriteOp(table="things", kind="put", item=item))
    arn = service.stream_arn(service.table("things"))
    assert arn is not None
    streams = TableStreams(service)
    rows = streams.read(arn, streams.shards(arn)[0].shard_id, 0, 10)
    event = changes.dynamodb_event([json.loads(r.data) for r in rows], arn)
    sample = json.loads((SAMPLES / "aws-lambda-go" / "dynamodb-event.json").read_text())
    ours, theirs = event["Records"][0], dict(sample["Records"][0])
    theirs.pop("userIdentity")  # only on TTL removals
    theirs["dynamodb"] = {k: v for k, v in theirs["dynamodb"].items() if k != "NewImage"}
    assert set(ours["dynamodb"]["NewImage"]) == {"key", "val", "asdf1"}
    ours = ours | {"dynamodb": {k: v for k, v in ours["dynamodb"].items() if k != "NewImage"}}
    assert shape(ours) == shape(theirs)
    parsed = DynamoDBStreamModel.model_validate(event)
    assert parsed.Records[0].dynamodb.NewImage == {"key": "binary", "val": "data", "asdf1": "AAEqQQ=="}
    assert parsed.Records[0].eventSourceARN == arn


# --- the log, written with the items -------------------------------------------------------------------------
def test_every_kind_of_write_logs_its_change_in_the_same_transaction(service: TableService) -> None:
    service.create_table(create())
    arn = service.stream_arn(service.table("things"))
    assert arn is not None
    streams = TableStreams(service)
    put(service, "a", v="1")
    service.write_many([WriteOp(table="things", kind="put", item={"pk": {"S": f"b{i}"}}) for i in range(2)])
    service.transact(
        [
            WriteOp(table="things", kind="delete", key={"pk": {"S": "b0"}}),
            WriteOp(table="things", kind="put", item={"pk": {"S": "c"}}),
        ]
    )
    condition = parse_condition("attribute_not_exists(pk)", "ConditionExpression", Placeholders({}, {}))
    with pytest.raises(TransactionCanceled):
        service.transact(
            [
                WriteOp(table="things", kind="put", item={"pk": {"S": "d"}}),
                WriteOp(table="things", kind="put", item={"pk": {"S": "a"}}, condition=condition),
            ]
        )
    names = [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in everything(streams, arn)]
    assert names == [("INSERT", "a"), ("INSERT", "b0"), ("INSERT", "b1"), ("REMOVE", "b0"), ("INSERT", "c")]


def test_listeners_hear_of_committed_changes_only(service: TableService) -> None:
    heard: list[str] = []
    service.add_listener(heard.append)
    service.create_table(create())
    service.create_table(create(None, "plain"))
    put(service, "a")
    service.write(WriteOp(table="plain", kind="put", item={"pk": {"S": "a"}}))
    put(service, "a")  # a no-op
    assert heard == [service.stream_arn(service.table("things"))]


def test_ttl_expiry_logs_removals_by_the_service(service: TableService) -> None:
    service.create_table(create("OLD_IMAGE"))
    service.update_ttl("things", True, "ttl")
    service.write(WriteOp(table="things", kind="put", item={"pk": {"S": "a"}, "ttl": {"N": "100"}}))
    assert service.expire(1000) == 1
    arn = service.stream_arn(service.table("things"))
    assert arn is not None
    records = everything(TableStreams(service), arn)
    assert [r["eventName"] for r in records] == ["INSERT", "REMOVE"]
    assert records[1]["userIdentity"]["PrincipalId"] == "dynamodb.amazonaws.com"
    assert records[1]["dynamodb"]["OldImage"]["ttl"] == {"N": "100"}


def test_trimming_after_a_day_and_reading_what_was_trimmed(service: TableService) -> None:
    service.create_table(create("KEYS_ONLY"))
    arn = service.stream_arn(service.table("things"))
    assert arn is not None
    streams = TableStreams(service)
    shard = streams.shards(arn)[0].shard_id
    put(service, "old")
    early = streams.get_shard_iterator({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"})
    first = everything(streams, arn)[0]["dynamodb"]["SequenceNumber"]
    service.trim(time.time() + 2 * 24 * 3600)  # two days on: everything is past retention
    put(service, "new")
    with pytest.raises(TrimmedDataAccess):
        streams.get_records({"ShardIterator": early["ShardIterator"]})
    with pytest.raises(TrimmedDataAccess):
        streams.get_shard_iterator(
            {"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": first}
        )
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in everything(streams, arn)] == ["new"]


def test_disabled_streams_are_forgotten_after_a_day(service: TableService) -> None:
    service.create_table(create("KEYS_ONLY"))
    arn = service.stream_arn(service.table("things"))
    assert arn is not None
    service.delete_table("things")
    streams = TableStreams(service)
    assert streams.describe_stream({"StreamArn": arn})["StreamDescription"]["StreamStatus"] == "DISABLED"
    service.trim(time.time() + 2 * 24 * 3600)
    with pytest.raises(TableNotFound):
        streams.describe_stream({"StreamArn": arn})


def test_iterators_are_signed_and_expire(service: TableService) -> None:
    service.create_table(create("KEYS_ONLY"))
    arn = service.stream_arn(service.table("things"))
    assert arn is not None
    now = [time.time()]
    streams = TableStreams(service, clock=lambda: now[0])
    shard = streams.shards(arn)[0].shard_id
    token = streams.get_shard_iterator({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "LATEST"})
    with pytest.raises(Validation):
        other_key = TableStreams(service, iterator_key=b"another")
        other_key.get_records({"ShardIterator": token["ShardIterator"]})
    streams.get_records({"ShardIterator": token["ShardIterator"]})
    now[0] += 16 * 60
    with pytest.raises(ExpiredIterator):
        streams.get_records({"ShardIterator": token["ShardIterator"]})


def test_reenabling_at_once_still_gives_a_new_stream(service: TableService) -> None:
    service.create_table(create("KEYS_ONLY"))
    first = service.stream_arn(service.table("things"))
    for _ in range(3):
        service.update_table({"TableName": "things", "StreamSpecification": {"StreamEnabled": False}})
        service.update_table(
            {"TableName": "things", "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}}
        )
    arns = [s.arn for s in TableStreams(service).streams("things")]
    assert len(set(arns)) == 4 and arns[0] == first
    assert arns[-1] == service.stream_arn(service.table("things"))
