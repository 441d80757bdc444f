"""The table service on a real SQLite file and on PostgreSQL: durability across reopen, expiry, index maintenance."""

from __future__ import annotations

import base64

import pytest

from squall.services.tables import reads
from squall.services.tables.errors import ConditionalCheckFailed, TableNotFound
from squall.services.tables.expressions import Placeholders, parse_condition, parse_update
from squall.services.tables.reads import RangeCondition, ReadSpec
from squall.services.tables.service import TableService, WriteOp
from tests.unit.table_stores import TableServices

CREATE = {
    "TableName": "things",
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "kind", "AttributeType": "S"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "by-kind",
            "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
}


@pytest.fixture
def service(table_services: TableServices) -> TableService:
    svc = table_services.open()
    svc.create_table(CREATE)
    return svc


def put(service: TableService, pk: str, **attrs: dict[str, str]) -> None:
    service.write(WriteOp(table="things", kind="put", item={"pk": {"S": pk}, **attrs}))


def test_tables_and_items_survive_reopen(table_services: TableServices, service: TableService) -> None:
    put(service, "a", kind={"S": "x"})
    service.close()
    reopened = table_services.open()
    assert reopened.get_item("things", {"pk": {"S": "a"}}) == {"pk": {"S": "a"}, "kind": {"S": "x"}}
    found = reopened.read(ReadSpec(table="things", index="by-kind", hash_value={"S": "x"}))
    assert [i["pk"] for i in found.items] == [{"S": "a"}]


def test_index_entries_follow_updates_and_deletes(service: TableService) -> None:
    put(service, "a", kind={"S": "x"})
    update = parse_update("SET kind = :y", Placeholders({}, {":y": {"S": "y"}}))
    service.write(WriteOp(table="things", kind="update", key={"pk": {"S": "a"}}, update=update))

    def kinds(kind: str) -> list[str]:
        found = service.read(ReadSpec(table="things", index="by-kind", hash_value={"S": kind}))
        return [i["pk"]["S"] for i in found.items]

    assert kinds("x") == [] and kinds("y") == ["a"]
    service.write(WriteOp(table="things", kind="delete", key={"pk": {"S": "a"}}))
    assert kinds("y") == []


def test_failed_condition_changes_nothing(service: TableService) -> None:
    put(service, "a", n={"N": "1"})
    condition = parse_condition("n > :n", "ConditionExpression", Placeholders({}, {":n": {"N": "5"}}))
    with pytest.raises(ConditionalCheckFailed) as info:
        service.write(
            WriteOp(
                table="things", kind="delete", key={"pk": {"S": "a"}}, condition=condition, return_on_failure="ALL_OLD"
            )
        )
    assert info.value.item == {"pk": {"S": "a"}, "n": {"N": "1"}}
    assert service.get_item("things", {"pk": {"S": "a"}}) is not None


def test_expire_deletes_only_due_items(service: TableService) -> None:
    put(service, "due", ttl={"N": "1000"})
    put(service, "later", ttl={"N": "5000"})
    put(service, "text", ttl={"S": "1000"})
    service.update_ttl("things", True, "ttl")
    put(service, "due-after-enable", ttl={"N": "1500"})
    assert service.expire(2000.0) == 2
    remaining = service.read(ReadSpec(table="things"))
    assert sorted(i["pk"]["S"] for i in remaining.items) == ["later", "text"]
    service.update_ttl("things", False, "ttl")
    assert service.expire(10_000.0) == 0


def test_missing_table(service: TableService) -> None:
    with pytest.raises(TableNotFound) as info:
        service.get_item("nope", {"pk": {"S": "a"}})
    assert info.value.message == "Requested resource not found"


@pytest.mark.parametrize("forward", [True, False])
def test_pages_read_in_chunks_walk_every_item_once(
    service: TableService, monkeypatch: pytest.MonkeyPatch, forward: bool
) -> None:
    for n in range(10):
        put(service, f"p{n}", kind={"S": "red" if n % 2 else "blue"})
    whole = {
        "scan": service.read(ReadSpec(table="things", forward=forward)).items,
        "index scan": service.read(ReadSpec(table="things", index="by-kind", forward=forward)).items,
        "index query": service.read(
            ReadSpec(table="things", index="by-kind", hash_value={"S": "red"}, forward=forward)
        ).items,
    }
    assert [len(items) for items in whole.values()] == [10, 10, 5]
    monkeypatch.setattr(reads, "CHUNK", 3)  # every page now takes several statements
    assert service.read(ReadSpec(table="things", forward=forward)).items == whole["scan"]
    assert service.read(ReadSpec(table="things", index="by-kind", forward=forward)).items == whole["index scan"]
    red = service.read(ReadSpec(table="things", index="by-kind", hash_value={"S": "red"}, forward=forward, limit=4))
    assert red.items == whole["index query"][:4] and red.last_key is not None
    rest = service.read(
        ReadSpec(table="things", index="by-kind", hash_value={"S": "red"}, forward=forward, start_key=red.last_key)
    )
    assert rest.items == whole["index query"][4:] and rest.last_key is None


def test_sort_key_conditions_on_bytes(table_services: TableServices) -> None:
    service = table_services.open()
    service.create_table(
        {
            "TableName": "ranged",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "B"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
        }
    )
    keys = [b"a", b"a\xff", b"a\xff\x00", b"a\xff\xff", b"b", b"\xff", b"\xff\xff\x01"]
    for key in keys:
        item = {"pk": {"S": "p"}, "sk": {"B": base64.b64encode(key).decode()}}
        service.write(WriteOp(table="ranged", kind="put", item=item))

    def found(op: str, *values: bytes) -> list[bytes]:
        condition = RangeCondition(op, [{"B": base64.b64encode(v).decode()} for v in values])
        spec = ReadSpec(table="ranged", hash_value={"S": "p"}, range_condition=condition)
        return [base64.b64decode(i["sk"]["B"]) for i in service.read(spec).items]

    assert found("begins_with", b"a\xff") == [b"a\xff", b"a\xff\x00", b"a\xff\xff"]
    assert found("begins_with", b"\xff") == [b"\xff", b"\xff\xff\x01"]  # no byte string follows the prefix
    assert found("BETWEEN", b"a\xff", b"b") == [b"a\xff", b"a\xff\x00", b"a\xff\xff", b"b"]
    assert found(">", b"b") == [b"\xff", b"\xff\xff\x01"]
