"""CloudWatch's wire formats, as boto3 sends them: Smithy RPC v2 CBOR (``POST
/service/GraniteServiceVersion20100801/operation/<Operation>``, what current botocore uses) and
JSON 1.0 (``X-Amz-Target: GraniteServiceVersion20100801.<Operation>``). The service signs as
``monitoring``. The query protocol (``Action=...`` forms, older botocore) is not offered.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import cbor2
from starlette.types import Receive, Scope, Send

from squall.api.errors import REQUEST_ID_HEADER
from squall.errors import SquallError
from squall.services.cloudwatch.errors import (
    CloudWatchError,
    InternalServiceFault,
    InvalidNextToken,
    InvalidParameterValue,
    MissingParameter,
    UnknownOperation,
)
from squall.services.cloudwatch.service import MAX_DATA_DATAPOINTS, CloudWatchService, MetricQuery

SERVICE = "GraniteServiceVersion20100801"
CBOR_PREFIX = f"/service/{SERVICE}/operation/"
SHAPE_NAMESPACE = "com.amazonaws.cloudwatch"

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def _epoch(value: Any, name: str) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if value is None:
        # unverified: the query protocol's MissingParameter wording, recalled.
        raise MissingParameter(f"The parameter {name} is required.")
    raise InvalidParameterValue(f"The parameter {name} must be a timestamp.")


def _required(body: dict[str, Any], name: str) -> Any:
    value = body.get(name)
    if value is None or value == "":
        # unverified: as above.
        raise MissingParameter(f"The parameter {name} is required.")
    return value


def _dimensions(raw: Any) -> dict[str, str]:
    return {str(d["Name"]): str(d["Value"]) for d in raw or ()}


def _period(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        # unverified: wording modelled on the model's "min: 1" constraint.
        raise InvalidParameterValue("The parameter Period must be greater than 0.")
    return value


class CloudWatchApi:
    """The ``monitoring`` service of the API port: GetMetricStatistics, GetMetricData, ListMetrics."""

    def __init__(self, service: CloudWatchService) -> None:
        self.service = service
        self.operations: dict[str, Handler] = {
            "GetMetricStatistics": self.get_metric_statistics,
            "GetMetricData": self.get_metric_data,
            "ListMetrics": self.list_metrics,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id: str = scope.get("squall.request_id", "")
        cbor = path.startswith(CBOR_PREFIX)
        operation = path[len(CBOR_PREFIX) :] if cbor else headers.get("x-amz-target", "").partition(".")[2]
        raw: bytes = scope.get("squall.body", b"")
        try:
            handler = self.operations.get(operation)
            if handler is None:
                raise UnknownOperation(f"Operation {operation or path} is not supported by Squall's CloudWatch.")
            try:
                body = (cbor2.loads(raw) if cbor else json.loads(raw)) if raw else {}
            except ValueError:
                raise InvalidParameterValue("The request body could not be parsed.") from None
            if not isinstance(body, dict):
                raise InvalidParameterValue("The request body must be an object.")
            result = await handler(body)
            await _respond(send, 200, result, cbor, request_id)
        except CloudWatchError as exc:
            await _error(send, exc, cbor, request_id)
        except SquallError as exc:
            await _error(send, InternalServiceFault(exc.message), cbor, request_id)
        except (KeyError, TypeError, AttributeError) as exc:
            await _error(send, InvalidParameterValue(f"Malformed request: {exc}"), cbor, request_id)

    # --- operations ------------------------------------------------------------------------------
    async def get_metric_statistics(self, body: dict[str, Any]) -> dict[str, Any]:
        name = _required(body, "MetricName")
        query = MetricQuery(name, _dimensions(body.get("Dimensions")), _required(body, "Namespace"))
        datapoints = await self.service.get_metric_statistics(
            query,
            _epoch(body.get("StartTime"), "StartTime"),
            _epoch(body.get("EndTime"), "EndTime"),
            _period(_required(body, "Period")),
            list(body.get("Statistics") or ()),
            list(body.get("ExtendedStatistics") or ()),
            body.get("Unit"),
        )
        for point in datapoints:
            point["Timestamp"] = _time(point["Timestamp"])
        return {"Label": name, "Datapoints": datapoints}

    async def get_metric_data(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("NextToken"):
            # Every answer fits in one page, so no token was ever handed out.
            raise InvalidNextToken("The service returned an invalid next token.")  # unverified: wording
        start = _epoch(body.get("StartTime"), "StartTime")
        end = _epoch(body.get("EndTime"), "EndTime")
        if end <= start:
            # unverified: CloudWatch's wording for an empty time range, recalled.
            raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")
        newest_first = body.get("ScanBy", "TimestampDescending") != "TimestampAscending"
        limit = int(body.get("MaxDatapoints") or MAX_DATA_DATAPOINTS)
        queries = _required(body, "MetricDataQueries")
        results = []
        for q in queries:
            if q.get("Expression"):
                raise InvalidParameterValue(
                    f"Query {q.get('Id')}: Squall answers MetricStat queries only; metric math is not supported."
                )
            stat = q.get("MetricStat")
            if stat is None:
                raise MissingParameter(f"The parameter MetricDataQueries.{q.get('Id')}.MetricStat is required.")
            metric = stat["Metric"]
            query = MetricQuery(
                metric["MetricName"], _dimensions(metric.get("Dimensions")), metric.get("Namespace", "")
            )
            stamps, values = await self.service.metric_data(
                query, start, end, _period(stat["Period"]), stat["Stat"], stat.get("Unit"), newest_first, limit
            )
            if q.get("ReturnData", True) is False:
                continue
            results.append(
                {
                    "Id": q["Id"],
                    "Label": q.get("Label") or query.metric_name,
                    "Timestamps": [_time(t) for t in stamps],
                    "Values": values,
                    "StatusCode": "Complete",
                }
            )
        return {"MetricDataResults": results, "Messages": []}

    async def list_metrics(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("NextToken"):
            raise InvalidNextToken("The service returned an invalid next token.")  # unverified: wording
        filters = [(str(d["Name"]), d.get("Value")) for d in body.get("Dimensions") or ()]
        found = await self.service.list_metrics(body.get("Namespace"), body.get("MetricName"), filters)
        return {
            "Metrics": [
                {
                    "Namespace": q.namespace,
                    "MetricName": q.metric_name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in q.dimensions.items()],
                }
                for q in found
            ]
        }


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _encode(data: dict[str, Any], cbor: bool) -> bytes:
    if cbor:
        # Timestamps go out as CBOR tag 1 (epoch seconds), which botocore reads as datetimes.
        return bytes(cbor2.dumps(data, datetime_as_timestamp=True))
    return json.dumps(data, default=lambda t: t.timestamp()).encode()


async def _respond(send: Send, status: int, data: dict[str, Any], cbor: bool, request_id: str, extra: Any = ()) -> None:
    body = _encode(data, cbor)
    headers = [
        (b"content-type", b"application/cbor" if cbor else b"application/x-amz-json-1.0"),
        (b"content-length", str(len(body)).encode()),
        (REQUEST_ID_HEADER, request_id.encode()),
        *extra,
    ]
    if cbor:
        headers.append((b"smithy-protocol", b"rpc-v2-cbor"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _error(send: Send, exc: CloudWatchError, cbor: bool, request_id: str) -> None:
    data = {"__type": f"{SHAPE_NAMESPACE}#{exc.code}", "message": exc.message}
    query_error = (b"x-amzn-query-error", f"{exc.query_code};{exc.fault}".encode())
    await _respond(send, exc.status, data, cbor, request_id, (query_error,))
