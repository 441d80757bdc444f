"""CloudWatch's two wire formats on Squall's app: JSON 1.0 and RPC v2 CBOR, answers and errors."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import cbor2

from squall.metering.metrics import Metrics
from squall.services.cloudwatch.api import CBOR_PREFIX, CloudWatchApi
from squall.services.cloudwatch.service import CloudWatchService
from squall.stores.sqlite import SqliteMetadataStore


def call(app: CloudWatchApi, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Run one request through the ASGI app as the front door hands it over (body buffered)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "squall.body": body,
        "squall.request_id": "req-1",
    }
    asyncio.run(app(scope, receive, send))
    start, payload = sent
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, payload["body"]


def make_app(tmp_path: Path) -> CloudWatchApi:
    metrics = Metrics()
    metrics.throttled("fn", None)
    return CloudWatchApi(CloudWatchService(SqliteMetadataStore(tmp_path / "squall.db"), metrics))


def test_json_protocol_lists_metrics(tmp_path: Path) -> None:
    status, headers, body = call(
        make_app(tmp_path),
        "/",
        {"X-Amz-Target": "GraniteServiceVersion20100801.ListMetrics", "Content-Type": "application/x-amz-json-1.0"},
        json.dumps({"Namespace": "AWS/Lambda", "MetricName": "Throttles"}).encode(),
    )
    assert status == 200 and headers["content-type"] == "application/x-amz-json-1.0"
    metrics = json.loads(body)["Metrics"]
    assert {
        "Namespace": "AWS/Lambda",
        "MetricName": "Throttles",
        "Dimensions": [{"Name": "FunctionName", "Value": "fn"}],
    } in metrics


def test_json_protocol_error_carries_the_query_code(tmp_path: Path) -> None:
    now = time.time()
    status, headers, body = call(
        make_app(tmp_path),
        "/",
        {"X-Amz-Target": "GraniteServiceVersion20100801.GetMetricStatistics"},
        json.dumps(
            {"Namespace": "AWS/Lambda", "MetricName": "Throttles", "StartTime": now - 60, "EndTime": now, "Period": 60}
        ).encode(),
    )
    assert status == 400
    assert headers["x-amzn-query-error"] == "InvalidParameterCombination;Sender"
    assert json.loads(body)["__type"].endswith("#InvalidParameterCombinationException")


def test_cbor_answers_with_epoch_timestamps(tmp_path: Path) -> None:
    now = time.time()
    request = {
        "Namespace": "AWS/Lambda",
        "MetricName": "Throttles",
        "Dimensions": [{"Name": "FunctionName", "Value": "fn"}],
        "StartTime": cbor2.CBORTag(1, now - 600),
        "EndTime": cbor2.CBORTag(1, now + 60),
        "Period": 60,
        "Statistics": ["Sum"],
    }
    status, headers, body = call(
        make_app(tmp_path),
        f"{CBOR_PREFIX}GetMetricStatistics",
        {"smithy-protocol": "rpc-v2-cbor"},
        cbor2.dumps(request),
    )
    assert status == 200 and headers["smithy-protocol"] == "rpc-v2-cbor"
    (point,) = cbor2.loads(body)["Datapoints"]
    assert point["Sum"] == 1.0 and point["Unit"] == "Count"
    assert abs(point["Timestamp"].timestamp() - now) < 120


def test_cbor_unknown_operation(tmp_path: Path) -> None:
    status, headers, body = call(make_app(tmp_path), f"{CBOR_PREFIX}PutMetricAlarm", {}, cbor2.dumps({}))
    assert status == 400
    assert cbor2.loads(body)["__type"].endswith("#UnknownOperationException")
    assert headers["x-amzn-query-error"].startswith("UnknownOperation;")
