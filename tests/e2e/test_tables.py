"""The DynamoDB-compatible table service, driven by real boto3 clients (and the resource layer)."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from tests.e2e.conftest import SquallServer, error_of

pytestmark = pytest.mark.e2e
_names = itertools.count()


@pytest.fixture(scope="module")
def ddb(squall: SquallServer) -> Any:
    return squall.client("dynamodb")


@pytest.fixture(scope="module")
def resource(squall: SquallServer) -> Any:
    key, secret = squall.credentials()
    return boto3.resource(
        "dynamodb",
        endpoint_url=squall.url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def new_table(ddb: Any, range_type: str | None = "S", **extra: Any) -> str:
    name = f"tbl-{next(_names)}"
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    definitions = [{"AttributeName": "pk", "AttributeType": "S"}]
    if range_type:
        keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
        definitions.append({"AttributeName": "sk", "AttributeType": range_type})
    definitions += extra.pop("extra_definitions", [])
    ddb.create_table(
        TableName=name, KeySchema=keys, AttributeDefinitions=definitions, BillingMode="PAY_PER_REQUEST", **extra
    )
    return name


@pytest.fixture
def table(ddb: Any) -> str:
    return new_table(ddb)


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: Any) -> dict[str, str]:
    return {"N": str(value)}


# --- tables -------------------------------------------------------------------------------------------------
def test_create_describe_list_delete(ddb: Any) -> None:
    name = f"lifecycle-{next(_names)}"
    created = ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 3},
    )["TableDescription"]
    assert created["TableName"] == name
    assert created["TableArn"] == f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}"
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert table["ItemCount"] == 0
    assert "BillingModeSummary" not in table
    ddb.put_item(TableName=name, Item={"id": s("a")})
    assert ddb.describe_table(TableName=name)["Table"]["ItemCount"] == 1
    assert name in ddb.list_tables()["TableNames"]
    code, message, status, _ = error_of(ddb.create_table, **_create_args(name))
    assert (code, message, status) == ("ResourceInUseException", f"Table already exists: {name}", 400)
    assert ddb.delete_table(TableName=name)["TableDescription"]["TableStatus"] == "DELETING"
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    code, message, _, _ = error_of(ddb.describe_table, TableName=name)
    assert (code, message) == ("ResourceNotFoundException", f"Requested resource not found: Table: {name} not found")
    code, message, _, _ = error_of(ddb.delete_table, TableName=name)
    assert (code, message) == ("ResourceNotFoundException", "Requested resource not found")


def _create_args(name: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def test_list_tables_pages(ddb: Any) -> None:
    names = sorted(new_table(ddb, None) for _ in range(3))
    first = ddb.list_tables(ExclusiveStartTableName=names[0], Limit=1)
    assert first["TableNames"] == [names[1]]
    assert first["LastEvaluatedTableName"] == names[1]
    code, message, _, _ = error_of(ddb.list_tables, Limit=101)
    assert code == "ValidationException"
    assert message == (
        "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 100"
    )


def test_create_table_validation(ddb: Any) -> None:
    args = _create_args(f"bad-{next(_names)}")
    bad_schema = dict(args, KeySchema=[{"AttributeName": "id", "KeyType": "RANGE"}])
    assert error_of(ddb.create_table, **bad_schema)[1] == (
        "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"
    )
    extra = dict(
        args, AttributeDefinitions=[*args["AttributeDefinitions"], {"AttributeName": "x", "AttributeType": "S"}]
    )
    assert error_of(ddb.create_table, **extra)[1] == (
        "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number "
        "of attributes defined in AttributeDefinitions"
    )
    both = dict(args, ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    assert error_of(ddb.create_table, **both)[1] == (
        "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be "
        "specified when BillingMode is PAY_PER_REQUEST"
    )
    assert error_of(ddb.create_table, **dict(args, TableName="ab"))[1] == (
        "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3"
    )
    lsi = dict(
        args,
        LocalSecondaryIndexes=[
            {
                "IndexName": "byx",
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "x", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        AttributeDefinitions=[*args["AttributeDefinitions"], {"AttributeName": "x", "AttributeType": "S"}],
    )
    assert error_of(ddb.create_table, **lsi)[1] == (
        "One or more parameter values were invalid: Table KeySchema does not have a range key, which is required "
        "when specifying a LocalSecondaryIndex"
    )


def test_error_wire_shape(squall: SquallServer, ddb: Any) -> None:
    _, _, status, response = error_of(ddb.get_item, TableName="missing-table", Key={"pk": s("a")})
    assert status == 400
    assert response["Error"] == {"Code": "ResourceNotFoundException", "Message": "Requested resource not found"}
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.0"


def test_streams_and_gsi_updates(ddb: Any) -> None:
    name = new_table(ddb, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["LatestStreamArn"] == f"{table['TableArn']}/stream/{table['LatestStreamLabel']}"
    ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})
    assert "StreamSpecification" not in ddb.describe_table(TableName=name)["Table"]
    ddb.put_item(TableName=name, Item={"pk": s("a"), "sk": s("1"), "color": s("red")})
    ddb.put_item(TableName=name, Item={"pk": s("b"), "sk": s("1"), "color": s("red")})
    ddb.put_item(TableName=name, Item={"pk": s("c"), "sk": s("1")})
    described = ddb.update_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "color", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "by-color",
                    "KeySchema": [{"AttributeName": "color", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            }
        ],
    )["TableDescription"]
    assert described["GlobalSecondaryIndexes"][0]["IndexStatus"] == "ACTIVE"
    assert described["GlobalSecondaryIndexes"][0]["ItemCount"] == 2
    found = ddb.query(
        TableName=name,
        IndexName="by-color",
        KeyConditionExpression="color = :c",
        ExpressionAttributeValues={":c": s("red")},
    )
    assert sorted(i["pk"]["S"] for i in found["Items"]) == ["a", "b"]
    assert all(set(i) == {"pk", "sk", "color"} for i in found["Items"])
    ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by-color"}}])
    assert "GlobalSecondaryIndexes" not in ddb.describe_table(TableName=name)["Table"]
    code, message, _, _ = error_of(
        ddb.query,
        TableName=name,
        IndexName="by-color",
        KeyConditionExpression="color = :c",
        ExpressionAttributeValues={":c": s("red")},
    )
    assert (code, message) == ("ValidationException", "The table does not have the specified index: by-color")


# --- items ------------------------------------------------------------------------------------------------------
def test_put_get_delete_with_return_values(ddb: Any, table: str) -> None:
    item = {
        "pk": s("p"),
        "sk": s("1"),
        "str": s("héllo"),
        "num": n("1.50"),
        "bin": {"B": b"\x00\x01"},
        "flag": {"BOOL": True},
        "nothing": {"NULL": True},
        "map": {"M": {"a": {"L": [n(1), s("x")]}}},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]},
        "bs": {"BS": [b"a"]},
    }
    assert "Attributes" not in ddb.put_item(TableName=table, Item=item, ReturnValues="ALL_OLD")
    got = ddb.get_item(TableName=table, Key={"pk": s("p"), "sk": s("1")}, ConsistentRead=True)["Item"]
    assert got["num"] == n("1.5")
    assert got["bin"] == {"B": b"\x00\x01"}
    assert got["map"] == item["map"]
    assert set(got["ss"]["SS"]) == {"a", "b"}
    old = ddb.put_item(TableName=table, Item={"pk": s("p"), "sk": s("1"), "v": n(2)}, ReturnValues="ALL_OLD")
    assert old["Attributes"]["str"] == s("héllo")
    projected = ddb.get_item(
        TableName=table,
        Key={"pk": s("p"), "sk": s("1")},
        ProjectionExpression="#v, absent",
        ExpressionAttributeNames={"#v": "v"},
    )
    assert projected["Item"] == {"v": n(2)}
    deleted = ddb.delete_item(TableName=table, Key={"pk": s("p"), "sk": s("1")}, ReturnValues="ALL_OLD")
    assert deleted["Attributes"] == {"pk": s("p"), "sk": s("1"), "v": n(2)}
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": s("p"), "sk": s("1")})
    code, message, _, _ = error_of(
        ddb.put_item, TableName=table, Item={"pk": s("p"), "sk": s("1")}, ReturnValues="ALL_NEW"
    )
    assert (code, message) == ("ValidationException", "ReturnValues can only be ALL_OLD or NONE")


def test_item_validation_messages(ddb: Any, table: str) -> None:
    cases = [
        ({"pk": s("p")}, "One or more parameter values were invalid: Missing the key sk in the item"),
        (
            {"pk": n(1), "sk": s("1")},
            "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
        ),
        (
            {"pk": s(""), "sk": s("1")},
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an "
            "empty string value. Key: pk",
        ),
        (
            {"pk": s("p"), "sk": s("1"), "x": {"SS": []}},
            "One or more parameter values were invalid: An string set  may not be empty",
        ),
        (
            {"pk": s("p"), "sk": s("1"), "x": {"SS": ["a", "a"]}},
            "One or more parameter values were invalid: Input collection [a, a] contains duplicates.",
        ),
        (
            {"pk": s("p"), "sk": s("1"), "x": n("1" * 39)},
            "Attempting to store more than 38 significant digits in a Number",
        ),
        (
            {"pk": s("p"), "sk": s("1"), "x": n("1E+126")},
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
        ),
        ({"pk": s("p"), "sk": s("1"), "x": n("abc")}, "A value provided cannot be converted into a number"),
        ({"pk": s("p"), "sk": s("1"), "x": s("a" * 400 * 1024)}, "Item size has exceeded the maximum allowed size"),
    ]
    for item, expected in cases:
        code, message, status, _ = error_of(ddb.put_item, TableName=table, Item=item)
        assert (code, message, status) == ("ValidationException", expected, 400), item
    for key in ({"pk": s("p")}, {"pk": s("p"), "sk": n(1)}, {"pk": s("p"), "sk": s("1"), "x": s("y")}):
        code, message, _, _ = error_of(ddb.get_item, TableName=table, Key=key)
        assert (code, message) == ("ValidationException", "The provided key element does not match the schema")
    big = {"pk": s("p"), "sk": s("1"), "x": s("a" * (400 * 1024 - 20))}
    ddb.put_item(TableName=table, Item=big)  # just under the limit


def test_conditions(ddb: Any, table: str) -> None:
    key = {"pk": s("c"), "sk": s("1")}
    ddb.put_item(
        TableName=table,
        Item={**key, "n": n(5), "name": s("alpha"), "tags": {"SS": ["x", "y"]}, "lst": {"L": [s("a"), n(1)]}},
    )

    def check(expression: str, values: dict[str, Any] | None = None, names: dict[str, str] | None = None) -> bool:
        params: dict[str, Any] = {"TableName": table, "Key": key, "ConditionExpression": expression}
        if values:
            params["ExpressionAttributeValues"] = values
        if names:
            params["ExpressionAttributeNames"] = names
        params["UpdateExpression"] = "SET touched = :touch"
        params.setdefault("ExpressionAttributeValues", {})[":touch"] = {"BOOL": True}
        try:
            ddb.update_item(**params)
            return True
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False

    assert check("n = :five", {":five": n("5.0")})
    assert not check("n <> :five", {":five": n(5)})
    assert check("n < :six AND n >= :five", {":six": n(6), ":five": n(5)})
    assert check("n BETWEEN :a AND :b", {":a": n(1), ":b": n(5)})
    assert check("n IN (:a, :b)", {":a": n(1), ":b": n(5)})
    assert check("NOT (n > :a) OR #nm = :nm", {":a": n(9), ":nm": s("zzz")}, {"#nm": "name"})
    assert check("attribute_exists(tags) AND attribute_not_exists(nope)")
    assert check("attribute_type(tags, :t)", {":t": s("SS")})
    assert check("begins_with(#nm, :p)", {":p": s("al")}, {"#nm": "name"})
    assert check(
        "contains(tags, :x) AND contains(#nm, :ph) AND contains(lst, :one)",
        {":x": s("x"), ":ph": s("lph"), ":one": n(1)},
        {"#nm": "name"},
    )
    assert check(
        "size(tags) = :two AND size(#nm) > :four AND size(lst[0]) = :one",
        {":two": n(2), ":four": n(4), ":one": n(1)},
        {"#nm": "name"},
    )
    assert not check("absent = :x", {":x": s("x")})
    assert check("absent <> :x", {":x": s("x")})
    assert check("lst[1] = :one", {":one": n(1)})
    # A condition on an item that does not exist sees no attributes.
    failed = ddb.put_item(
        TableName=table, Item={"pk": s("new"), "sk": s("1")}, ConditionExpression="attribute_not_exists(pk)"
    )
    assert failed["ResponseMetadata"]["HTTPStatusCode"] == 200
    code, message, status, response = error_of(
        ddb.delete_item,
        TableName=table,
        Key=key,
        ConditionExpression="n > :n",
        ExpressionAttributeValues={":n": n(100)},
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    assert (code, message, status) == ("ConditionalCheckFailedException", "The conditional request failed", 400)
    assert response["Item"]["name"] == s("alpha")
    assert (
        "Item"
        not in error_of(ddb.delete_item, TableName=table, Key=key, ConditionExpression="attribute_not_exists(n)")[3]
    )


def test_expression_errors(ddb: Any, table: str) -> None:
    key = {"pk": s("e"), "sk": s("1")}

    def message(**params: Any) -> str:
        code, text, status, _ = error_of(ddb.update_item, TableName=table, Key=key, **params)
        assert (code, status) == ("ValidationException", 400)
        return text

    assert message(UpdateExpression="SET a = :v", ExpressionAttributeValues={":v": s("x"), ":w": s("y")}) == (
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}"
    )
    assert message(
        UpdateExpression="SET a = :v", ExpressionAttributeValues={":v": s("x")}, ExpressionAttributeNames={"#u": "u"}
    ) == ("Value provided in ExpressionAttributeNames unused in expressions: keys: {#u}")
    assert message(UpdateExpression="SET a = :nope") == (
        "Invalid UpdateExpression: An expression attribute value used in expression is not defined; "
        "attribute value: :nope"
    )
    assert message(UpdateExpression="SET #a = :v", ExpressionAttributeValues={":v": s("x")}) == (
        "Invalid UpdateExpression: An expression attribute name used in the document path is not defined; "
        "attribute name: #a"
    )
    assert message(UpdateExpression="SET status = :v", ExpressionAttributeValues={":v": s("x")}) == (
        "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status"
    )
    assert message(UpdateExpression="SET a = :v, a = :v", ExpressionAttributeValues={":v": s("x")}) == (
        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these "
        "paths; path one: [a], path two: [a]"
    )
    assert message(UpdateExpression="SET a = :v SET b = :v", ExpressionAttributeValues={":v": s("x")}) == (
        'Invalid UpdateExpression: The "SET" section can only be used once in an update expression;'
    )
    assert message(UpdateExpression="SET a = :v +", ExpressionAttributeValues={":v": n(1)}) == (
        'Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "+"'
    )
    assert message(UpdateExpression="SET a = :v", ExpressionAttributeValues={":v": {"SS": []}}) == (
        "ExpressionAttributeValues contains invalid value: One or more parameter values were invalid: "
        "An string set  may not be empty for key :v"
    )
    assert message(UpdateExpression="SET pk = :v", ExpressionAttributeValues={":v": s("x")}) == (
        "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"
    )
    assert message(UpdateExpression="SET a = b + :one", ExpressionAttributeValues={":one": n(1)}) == (
        "The provided expression refers to an attribute that does not exist in the item"
    )
    assert message(UpdateExpression="SET a.b = :one", ExpressionAttributeValues={":one": n(1)}) == (
        "The document path provided in the update expression is invalid for update"
    )
    assert message(UpdateExpression="SET a = :s + :one", ExpressionAttributeValues={":s": s("x"), ":one": n(1)}) == (
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, "
        "operand type: S"
    )
    assert (
        message(UpdateExpression="SET a = foo(b)") == "Invalid UpdateExpression: Invalid function name; function: foo"
    )
    assert message(UpdateExpression="") == "Invalid UpdateExpression: The expression can not be empty;"
    assert (
        message(UpdateExpression="SET a = :v", ConditionExpression="a = ", ExpressionAttributeValues={":v": s("x")})
        == 'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "="'
    )
    _code, text, _, _ = error_of(ddb.get_item, TableName=table, Key=key, ExpressionAttributeNames={"#a": "a"})
    assert text == "ExpressionAttributeNames can only be specified when using expressions"


def test_update_expressions(ddb: Any, table: str) -> None:
    key = {"pk": s("u"), "sk": s("1")}
    first = ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET #c = if_not_exists(#c, :zero) + :one, "
        "things = list_append(if_not_exists(things, :empty), :l), m = :m ADD tags :t, amount :five",
        ExpressionAttributeNames={"#c": "count"},
        ExpressionAttributeValues={
            ":zero": n(0),
            ":one": n(1),
            ":empty": {"L": []},
            ":l": {"L": [s("a")]},
            ":m": {"M": {"innr": {"M": {}}}},
            ":t": {"SS": ["x"]},
            ":five": n(5),
        },
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert first["count"] == n(1)
    assert first["things"] == {"L": [s("a")]}
    assert first["amount"] == n(5)
    updated = ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET m.innr.deep = :d, things[5] = :b, amount = amount - :half REMOVE things[0] "
        "ADD tags :more DELETE gone :x",
        ExpressionAttributeValues={
            ":d": s("deep"),
            ":b": s("b"),
            ":half": n("0.5"),
            ":more": {"SS": ["y", "z"]},
            ":x": {"SS": ["x"]},
        },
        ReturnValues="UPDATED_NEW",
    )["Attributes"]
    assert updated["m"] == {"M": {"innr": {"M": {"deep": s("deep")}}}}
    assert updated["amount"] == n("4.5")
    assert set(updated["tags"]["SS"]) == {"x", "y", "z"}
    assert "gone" not in updated
    old = ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="REMOVE m",
        ReturnValues="UPDATED_OLD",
    )["Attributes"]
    assert old == {"m": {"M": {"innr": {"M": {"deep": s("deep")}}}}}
    item = ddb.get_item(TableName=table, Key=key)["Item"]
    assert item["things"] == {"L": [s("b")]}
    assert "m" not in item
    everything_old = ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="DELETE tags :all",
        ExpressionAttributeValues={":all": {"SS": ["x", "y", "z"]}},
        ReturnValues="ALL_OLD",
    )["Attributes"]
    assert set(everything_old["tags"]["SS"]) == {"x", "y", "z"}
    assert "tags" not in ddb.get_item(TableName=table, Key=key)["Item"]
    _, text, _, _ = error_of(
        ddb.update_item,
        TableName=table,
        Key=key,
        UpdateExpression="ADD things :one",
        ExpressionAttributeValues={":one": n(1)},
    )
    assert text == "An operand in the update expression has an incorrect data type"
    big = ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET big = :big ADD big2 :small",
        ExpressionAttributeValues={":big": n("9" * 38), ":small": n("1E-100")},
        ReturnValues="UPDATED_NEW",
    )["Attributes"]
    assert big["big"] == n("9" * 38)
    assert big["big2"] == n("0." + "0" * 99 + "1")
    grown = ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET big = big + :one",
        ExpressionAttributeValues={":one": n(1)},
        ReturnValues="UPDATED_NEW",
    )["Attributes"]
    assert grown["big"] == n("1" + "0" * 38)
    _, text, _, _ = error_of(
        ddb.update_item,
        TableName=table,
        Key=key,
        UpdateExpression="SET big = :huge + :huge",
        ExpressionAttributeValues={":huge": n("9.9E+125")},
    )
    assert text == "Number overflow. Attempting to store a number with magnitude larger than supported range"


def test_atomic_counter_with_conditional_flush(ddb: Any, table: str) -> None:
    key = {"pk": s("counter"), "sk": s("1")}
    values = []
    for _ in range(5):
        result = ddb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="ADD hits :one",
            ExpressionAttributeValues={":one": n(1)},
            ReturnValues="UPDATED_NEW",
        )
        values.append(result["Attributes"]["hits"]["N"])
    assert values == ["1", "2", "3", "4", "5"]
    flush = {
        "TableName": table,
        "Key": key,
        "UpdateExpression": "SET flushed = :t",
        "ConditionExpression": "hits >= :limit AND attribute_not_exists(flushed)",
        "ExpressionAttributeValues": {":t": {"BOOL": True}, ":limit": n(5)},
    }
    ddb.update_item(**flush)
    assert error_of(ddb.update_item, **flush)[0] == "ConditionalCheckFailedException"


# --- queries and scans ----------------------------------------------------------------------------------------
def test_query_number_order_paging_and_filters(ddb: Any) -> None:
    table = new_table(ddb, "N")
    numbers = ["-100", "-1.5", "-1", "0", "0.001", "1", "1.5", "2", "10", "100", "1E+20"]
    for value in numbers:
        ddb.put_item(TableName=table, Item={"pk": s("q"), "sk": n(value), "even": {"BOOL": Decimal(value) % 2 == 0}})
    ddb.put_item(TableName=table, Item={"pk": s("other"), "sk": n(1)})
    values = {":p": s("q")}
    result = ddb.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues=values)
    assert [Decimal(i["sk"]["N"]) for i in result["Items"]] == sorted(Decimal(v) for v in numbers)
    assert result["Count"] == result["ScannedCount"] == len(numbers)
    backwards = ddb.query(
        TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues=values, ScanIndexForward=False
    )
    assert [i["sk"]["N"] for i in backwards["Items"]][:2] == ["100000000000000000000", "100"]
    ranged = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi",
        ExpressionAttributeValues={**values, ":lo": n(-1.5), ":hi": n(1)},
    )
    assert [i["sk"]["N"] for i in ranged["Items"]] == ["-1.5", "-1", "0", "0.001", "1"]
    below = ddb.query(
        TableName=table, KeyConditionExpression="pk = :p AND sk < :z", ExpressionAttributeValues={**values, ":z": n(0)}
    )
    assert below["Count"] == 3
    pages, start = [], None
    while True:
        params: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": values,
            "Limit": 4,
        }
        if start:
            params["ExclusiveStartKey"] = start
        page = ddb.query(**params)
        pages.append([i["sk"]["N"] for i in page["Items"]])
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert [len(p) for p in pages] == [4, 4, 3]
    filtered = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        FilterExpression="even = :t",
        ProjectionExpression="sk",
        ExpressionAttributeValues={**values, ":t": {"BOOL": True}},
    )
    assert filtered["ScannedCount"] == len(numbers)
    assert [i["sk"]["N"] for i in filtered["Items"]] == ["-100", "0", "2", "10", "100", "100000000000000000000"]
    assert all(set(i) == {"sk"} for i in filtered["Items"])
    counted = ddb.query(
        TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues=values, Select="COUNT"
    )
    assert counted["Count"] == len(numbers) and "Items" not in counted


def test_query_string_keys_and_errors(ddb: Any, table: str) -> None:
    for sk in ["a", "ab", "abc", "b", "B", "é"]:
        ddb.put_item(TableName=table, Item={"pk": s("k"), "sk": s(sk)})
    values = {":p": s("k"), ":pre": s("ab")}
    result = ddb.query(
        TableName=table, KeyConditionExpression="pk = :p AND begins_with(sk, :pre)", ExpressionAttributeValues=values
    )
    assert [i["sk"]["S"] for i in result["Items"]] == ["ab", "abc"]
    everything = ddb.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": s("k")})
    assert [i["sk"]["S"] for i in everything["Items"]] == ["B", "a", "ab", "abc", "b", "é"]

    def message(expression: str, vals: dict[str, Any], **extra: Any) -> str:
        code, text, _, _ = error_of(
            ddb.query, TableName=table, KeyConditionExpression=expression, ExpressionAttributeValues=vals, **extra
        )
        assert code == "ValidationException"
        return text

    assert message("sk = :p", {":p": s("k")}) == "Query condition missed key schema element: pk"
    assert message("pk = :p OR sk = :p", {":p": s("k")}) == "Invalid operator used in KeyConditionExpression: OR"
    assert message("pk = :n", {":n": n(1)}) == (
        "One or more parameter values were invalid: Condition parameter type does not match schema type"
    )
    _code, text, _, _ = error_of(ddb.query, TableName=table)
    assert text == "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
    assert message("pk = :p", {":p": s("k")}, ExclusiveStartKey={"pk": s("k")}) == (
        "The provided starting key is invalid: The provided key element does not match the schema"
    )


def test_secondary_indexes(ddb: Any) -> None:
    table = new_table(
        ddb,
        "S",
        extra_definitions=[
            {"AttributeName": "score", "AttributeType": "N"},
            {"AttributeName": "team", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-team",
                "KeySchema": [
                    {"AttributeName": "team", "KeyType": "HASH"},
                    {"AttributeName": "score", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["nick"]},
            }
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by-score",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "score", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    players = [("p1", "red", 30), ("p2", "red", 10), ("p3", "blue", 20), ("p4", "red", 20)]
    for sk, team, score in players:
        ddb.put_item(
            TableName=table,
            Item={
                "pk": s("game"),
                "sk": s(sk),
                "team": s(team),
                "score": n(score),
                "nick": s(sk.upper()),
                "extra": s("x"),
            },
        )
    ddb.put_item(TableName=table, Item={"pk": s("game"), "sk": s("p5")})  # not in either index
    red = ddb.query(
        TableName=table,
        IndexName="by-team",
        KeyConditionExpression="team = :t AND score > :min",
        ExpressionAttributeValues={":t": s("red"), ":min": n(10)},
    )
    assert [(i["sk"]["S"], set(i)) for i in red["Items"]] == [
        ("p4", {"pk", "sk", "team", "score", "nick"}),
        ("p1", {"pk", "sk", "team", "score", "nick"}),
    ]
    page = ddb.query(
        TableName=table,
        IndexName="by-team",
        KeyConditionExpression="team = :t",
        ExpressionAttributeValues={":t": s("red")},
        Limit=1,
    )
    assert page["LastEvaluatedKey"] == {"pk": s("game"), "sk": s("p2"), "team": s("red"), "score": n(10)}
    rest = ddb.query(
        TableName=table,
        IndexName="by-team",
        KeyConditionExpression="team = :t",
        ExpressionAttributeValues={":t": s("red")},
        ExclusiveStartKey=page["LastEvaluatedKey"],
    )
    assert [i["sk"]["S"] for i in rest["Items"]] == ["p4", "p1"]
    by_score = ddb.query(
        TableName=table,
        IndexName="by-score",
        KeyConditionExpression="pk = :g",
        ExpressionAttributeValues={":g": s("game")},
        ScanIndexForward=False,
    )
    assert [i["sk"]["S"] for i in by_score["Items"]] == ["p1", "p4", "p3", "p2"] or [
        i["sk"]["S"] for i in by_score["Items"]
    ] == ["p1", "p3", "p4", "p2"]
    assert by_score["Items"][0]["extra"] == s("x")
    code, text, _, _ = error_of(
        ddb.query,
        TableName=table,
        IndexName="by-team",
        KeyConditionExpression="team = :t",
        ExpressionAttributeValues={":t": s("red")},
        ConsistentRead=True,
    )
    assert text == "Consistent reads are not supported on global secondary indexes"
    code, text, _, _ = error_of(ddb.put_item, TableName=table, Item={"pk": s("game"), "sk": s("p9"), "team": n(1)})
    assert code == "ValidationException" and "IndexName: by-team" in text
    scanned = ddb.scan(TableName=table, IndexName="by-team")
    assert scanned["Count"] == 4
    described = ddb.describe_table(TableName=table)["Table"]
    assert described["GlobalSecondaryIndexes"][0]["ItemCount"] == 4
    assert described["LocalSecondaryIndexes"][0]["IndexName"] == "by-score"


def test_scan_segments_paging_and_filter(ddb: Any) -> None:
    table = new_table(ddb, None)
    for i in range(30):
        ddb.put_item(TableName=table, Item={"pk": s(f"item-{i}"), "i": n(i)})
    seen: list[str] = []
    for segment in range(3):
        start = None
        while True:
            params: dict[str, Any] = {"TableName": table, "Segment": segment, "TotalSegments": 3, "Limit": 4}
            if start:
                params["ExclusiveStartKey"] = start
            page = ddb.scan(**params)
            seen += [i["pk"]["S"] for i in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
    assert sorted(seen) == sorted(f"item-{i}" for i in range(30))
    filtered = ddb.scan(TableName=table, FilterExpression="i >= :x", ExpressionAttributeValues={":x": n(25)})
    assert filtered["Count"] == 5 and filtered["ScannedCount"] == 30
    _, text, _, _ = error_of(ddb.scan, TableName=table, TotalSegments=2)
    assert text == (
        "The Segment parameter is required but was not present in the request when parameter TotalSegments is present"
    )
    _code, text, _, _ = error_of(ddb.scan, TableName=table, Segment=2, TotalSegments=2)
    assert text == (
        "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
        "Segment: 2 is not less than TotalSegments: 2"
    )


# --- batches and transactions -----------------------------------------------------------------------------------
def test_batch_write_and_get(ddb: Any, table: str) -> None:
    writes = [{"PutRequest": {"Item": {"pk": s("b"), "sk": s(str(i)), "v": n(i)}}} for i in range(25)]
    assert ddb.batch_write_item(RequestItems={table: writes})["UnprocessedItems"] == {}
    ddb.batch_write_item(RequestItems={table: [{"DeleteRequest": {"Key": {"pk": s("b"), "sk": s("0")}}}]})
    got = ddb.batch_get_item(
        RequestItems={table: {"Keys": [{"pk": s("b"), "sk": s(str(i))} for i in range(3)], "ProjectionExpression": "v"}}
    )
    assert sorted(i["v"]["N"] for i in got["Responses"][table]) == ["1", "2"]
    assert got["UnprocessedKeys"] == {}
    code, text, _, _ = error_of(ddb.batch_write_item, RequestItems={table: [*writes, writes[0]]})
    assert code == "ValidationException"
    assert "Member must have length less than or equal to 25" in text
    code, text, _, _ = error_of(ddb.batch_write_item, RequestItems={table: writes[:2] + writes[:1]})
    assert text == "Provided list of item keys contains duplicates"
    keys = [{"pk": s("b"), "sk": s(str(i))} for i in range(101)]
    code, text, _, _ = error_of(ddb.batch_get_item, RequestItems={table: {"Keys": keys}})
    assert text == "Too many items requested for the BatchGetItem call"
    code, text, _, _ = error_of(ddb.batch_get_item, RequestItems={table: {"Keys": keys[:1] * 2}})
    assert text == "Provided list of item keys contains duplicates"


def test_transactions(ddb: Any, table: str) -> None:
    key_a, key_b = {"pk": s("t"), "sk": s("a")}, {"pk": s("t"), "sk": s("b")}
    ddb.put_item(TableName=table, Item={**key_a, "balance": n(10)})
    ddb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": table,
                    "Key": key_a,
                    "UpdateExpression": "SET balance = balance - :x",
                    "ConditionExpression": "balance >= :x",
                    "ExpressionAttributeValues": {":x": n(4)},
                }
            },
            {"Put": {"TableName": table, "Item": {**key_b, "balance": n(4)}}},
        ]
    )
    code, text, status, response = error_of(
        ddb.transact_write_items,
        TransactItems=[
            {"Put": {"TableName": table, "Item": {**key_b, "balance": n(1000)}}},
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": key_a,
                    "ConditionExpression": "balance > :big",
                    "ExpressionAttributeValues": {":big": n(100)},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ],
    )
    assert (code, status) == ("TransactionCanceledException", 400)
    assert (
        text == "Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[None, ConditionalCheckFailed]"
    )
    reasons = response["CancellationReasons"]
    assert reasons[0] == {"Code": "None"}
    assert reasons[1]["Code"] == "ConditionalCheckFailed"
    assert reasons[1]["Message"] == "The conditional request failed"
    assert reasons[1]["Item"]["balance"] == n(6)
    got = ddb.transact_get_items(
        TransactItems=[
            {"Get": {"TableName": table, "Key": key_a}},
            {"Get": {"TableName": table, "Key": key_b, "ProjectionExpression": "balance"}},
            {"Get": {"TableName": table, "Key": {"pk": s("t"), "sk": s("zz")}}},
        ]
    )["Responses"]
    assert got[0]["Item"]["balance"] == n(6)
    assert got[1] == {"Item": {"balance": n(4)}}  # the cancelled put left it alone
    assert got[2] == {}
    code, text, _, _ = error_of(
        ddb.transact_write_items,
        TransactItems=[
            {"Put": {"TableName": table, "Item": key_a}},
            {"Delete": {"TableName": table, "Key": key_a}},
        ],
    )
    assert (code, text) == ("ValidationException", "Transaction request cannot include multiple operations on one item")


# --- the resource layer --------------------------------------------------------------------------------------
def test_resource_layer(resource: Any, ddb: Any) -> None:
    name = new_table(ddb, "N")
    table = resource.Table(name)
    table.wait_until_exists()
    with table.batch_writer() as batch:
        for i in range(40):
            batch.put_item(
                Item={"pk": "user", "sk": i, "tags": {"a", "b"} if i % 2 else {"c"}, "score": Decimal("0.5") * i}
            )
    result = table.query(
        KeyConditionExpression=Key("pk").eq("user") & Key("sk").between(10, 20),
        FilterExpression=Attr("tags").contains("a") & Attr("score").gt(5),
    )
    assert [item["sk"] for item in result["Items"]] == [11, 13, 15, 17, 19]
    table.update_item(
        Key={"pk": "user", "sk": 1},
        UpdateExpression="SET nested = :m",
        ConditionExpression=Attr("score").exists() & Attr("sk").is_in([1, 2]),
        ExpressionAttributeValues={":m": {"list": [1, "two", None, True]}},
    )
    item = table.get_item(Key={"pk": "user", "sk": 1})["Item"]
    assert item["nested"] == {"list": [1, "two", None, True]}
    with pytest.raises(ClientError) as info:
        table.put_item(Item={"pk": "user", "sk": 1}, ConditionExpression=Attr("pk").not_exists())
    assert info.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    scanned = table.scan(FilterExpression=Attr("score").between(1, 2) | Attr("sk").eq(39))
    assert sorted(i["sk"] for i in scanned["Items"]) == [2, 3, 4, 39]
    table.delete()


def test_request_level_errors(ddb: Any, table: str) -> None:
    stream = {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    ddb.update_table(TableName=table, StreamSpecification=stream)
    code, text, _, _ = error_of(ddb.update_table, TableName=table, StreamSpecification=stream)
    assert (code, text) == ("ValidationException", f"Table already has an enabled stream: TableName: {table}")
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    _, text, _, _ = error_of(ddb.update_table, TableName=table, StreamSpecification={"StreamEnabled": False})
    assert text == f"Table has no stream to disable: TableName: {table}"
    key = {"pk": s("r"), "sk": s("1")}
    _, text, _, _ = error_of(
        ddb.update_item,
        TableName=table,
        Key=key,
        UpdateExpression="SET a = :v",
        ExpressionAttributeValues={"v": s("x")},
    )
    assert text == 'ExpressionAttributeValues contains invalid key: Syntax error; key: "v"'
    _, text, _, _ = error_of(ddb.put_item, TableName=table, Item=key, Expected={"a": {"Exists": False}})
    assert text == "Squall does not support the legacy parameter Expected; use the expression parameters"
    _, text, _, _ = error_of(
        ddb.query,
        TableName=table,
        KeyConditionExpression="pk = :p AND sk <> :p",
        ExpressionAttributeValues={":p": s("r")},
    )
    assert text == "Invalid operator used in KeyConditionExpression: <>"
    _, text, _, _ = error_of(
        ddb.query,
        TableName=table,
        KeyConditionExpression="pk = :p AND colour = :p",
        ExpressionAttributeValues={":p": s("r")},
    )
    assert text == "Query condition missed key schema element: sk"


def test_time_to_live_expires_items(ddb: Any, table: str) -> None:
    assert ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"] == {"TimeToLiveStatus": "DISABLED"}
    now = int(time.time())
    items = {
        "past": n(now - 10),
        "future": n(now + 3600),
        "ancient": n(now - 6 * 365 * 24 * 3600),
        "text": s(str(now - 10)),
    }
    for name, expires in items.items():
        ddb.put_item(TableName=table, Item={"pk": s("ttl"), "sk": s(name), "expires": expires})
    spec = {"Enabled": True, "AttributeName": "expires"}
    assert ddb.update_time_to_live(TableName=table, TimeToLiveSpecification=spec)["TimeToLiveSpecification"] == spec
    assert ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expires",
    }
    _, text, _, _ = error_of(ddb.update_time_to_live, TableName=table, TimeToLiveSpecification=spec)
    assert text == "TimeToLive is already enabled"
    ddb.put_item(TableName=table, Item={"pk": s("ttl"), "sk": s("later-past"), "expires": n(now - 1)})

    def remaining() -> list[str]:
        found = ddb.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": s("ttl")})
        return sorted(i["sk"]["S"] for i in found["Items"])

    deadline = time.monotonic() + 10
    while remaining() != ["ancient", "future", "text"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert remaining() == ["ancient", "future", "text"]
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": False, "AttributeName": "expires"})
    _, text, _, _ = error_of(
        ddb.update_time_to_live, TableName=table, TimeToLiveSpecification={"Enabled": False, "AttributeName": "expires"}
    )
    assert text == "TimeToLive is already disabled"


def test_counter_flushes_once_with_concurrent_writers(squall: SquallServer, ddb: Any, table: str) -> None:
    key = {"pk": s("concurrent"), "sk": s("counter")}
    threshold = 40

    def writer(_: int) -> int:
        client = squall.client("dynamodb")
        flushes = 0
        for _ in range(10):
            client.update_item(
                TableName=table, Key=key, UpdateExpression="ADD hits :one", ExpressionAttributeValues={":one": n(1)}
            )
            try:
                client.update_item(
                    TableName=table,
                    Key=key,
                    UpdateExpression="SET flushed = :t",
                    ConditionExpression="hits >= :limit AND attribute_not_exists(flushed)",
                    ExpressionAttributeValues={":t": {"BOOL": True}, ":limit": n(threshold)},
                )
                flushes += 1
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
        return flushes

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(writer, range(8))) == 1
    assert ddb.get_item(TableName=table, Key=key)["Item"]["hits"] == n(80)
