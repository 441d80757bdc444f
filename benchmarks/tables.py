"""Tables: PutItem, GetItem and Query operations per second through the HTTP API with boto3, next to
what the same boto3 client spends by itself; and change-to-function latency through a table stream.

The client's own cost is measured with the same calls answered inside botocore (a ``before-send``
hook returns a canned 200), so ``server share = 1 - client / through HTTP`` per operation. Latency:
an item stamped with the client's ``time.time()`` is put; the function triggered by the table's
stream prints now minus that stamp; the figures come back through FilterLogEvents.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from benchmarks.harness import ServerProcess, build_zip, create_function
from benchmarks.stats import Summary
from benchmarks.streams import _client, _collect, _wait_enabled

#: Prints, per INSERT record, how long ago (ms) the client stamped it.
LATENCY_SOURCE = """import time


def handler(event, context):
    now = time.time()
    for record in event["Records"]:
        image = record["dynamodb"].get("NewImage") or {}
        if "sent" in image:
            print(f"PUT_TO_HANDLER {image['tag']['S']} {(now - float(image['sent']['N'])) * 1000:.3f}")
"""
ITEMS_PER_QUERY = 20
LATENCY_RATE = 50
LATENCY_WARMUP = 25


def _ops(dynamodb: Any, table: str, count: int) -> dict[str, float]:
    """Operations per second of PutItem, GetItem and Query (20 items each), one client, one at a time."""
    rates: dict[str, float] = {}
    keys = count // ITEMS_PER_QUERY or 1
    began = time.perf_counter()
    for i in range(count):
        dynamodb.put_item(
            TableName=table,
            Item={"pk": {"S": f"p{i % keys}"}, "sk": {"N": str(i)}, "v": {"S": "x" * 100}},
        )
    rates["put_item"] = count / (time.perf_counter() - began)
    began = time.perf_counter()
    for i in range(count):
        dynamodb.get_item(TableName=table, Key={"pk": {"S": f"p{i % keys}"}, "sk": {"N": str(i)}})
    rates["get_item"] = count / (time.perf_counter() - began)
    queries = max(1, count // 5)
    began = time.perf_counter()
    for i in range(queries):
        dynamodb.query(
            TableName=table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"p{i % keys}"}},
        )
    rates["query"] = queries / (time.perf_counter() - began)
    return {k: round(v, 1) for k, v in rates.items()}


def _canned(dynamodb: Any) -> None:
    """Answer every call inside botocore with an empty 200: what is left is the client's own work."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    class Raw:
        def stream(self, **_: Any) -> Any:
            yield b"{}"

    def answer(**_: Any) -> AWSResponse:
        headers = HTTPHeaders()
        headers["content-type"] = "application/x-amz-json-1.0"
        return AWSResponse("http://canned", 200, headers, Raw())

    dynamodb.meta.events.register("before-send.dynamodb.*", answer)


def operations(server: ServerProcess, count: int) -> dict[str, Any]:
    creds = server.credentials()
    dynamodb = _client("dynamodb", server.url, creds.access_key, creds.secret_key)
    table = f"bench-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    through_http = _ops(dynamodb, table, count)
    client_only = _client("dynamodb", server.url, creds.access_key, creds.secret_key)
    _canned(client_only)
    alone = _ops(client_only, table, count)
    dynamodb.delete_table(TableName=table)
    return {
        "operations": count,
        "ops_per_s": through_http,
        "client_alone_ops_per_s": alone,
        # Per-call time through HTTP minus the client's own per-call time, as a share of the former.
        "server_share": {op: round(1 - through_http[op] / alone[op], 3) for op in through_http},
    }


def change_latency(server: ServerProcess, lam: Any, seconds: float) -> dict[str, Any]:
    """Put one stamped item every 1/LATENCY_RATE s into a table with a stream feeding a function."""
    creds = server.credentials()
    dynamodb = _client("dynamodb", server.url, creds.access_key, creds.secret_key)
    logs = _client("logs", server.url, creds.access_key, creds.secret_key)
    tag = uuid.uuid4().hex[:8]
    table = function = f"bench-change-{tag}"
    description = dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]
    create_function(lam, function, build_zip(LATENCY_SOURCE, tag))
    mapping = lam.create_event_source_mapping(
        EventSourceArn=description["LatestStreamArn"], FunctionName=function, StartingPosition="LATEST", BatchSize=100
    )["UUID"]
    _wait_enabled(lam, mapping)
    total = LATENCY_WARMUP + int(seconds * LATENCY_RATE)
    start = time.monotonic()
    for i in range(total):
        delay = start + i / LATENCY_RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        label = "w" if i < LATENCY_WARMUP else "m"
        dynamodb.put_item(
            TableName=table, Item={"id": {"S": str(i)}, "tag": {"S": label}, "sent": {"N": repr(time.time())}}
        )
    samples = _collect(logs, f"/aws/lambda/{function}", total - LATENCY_WARMUP)
    lam.delete_event_source_mapping(UUID=mapping)
    return {"rate_per_s": LATENCY_RATE, "items": len(samples), "latency_ms": Summary.of(samples).as_dict()}
