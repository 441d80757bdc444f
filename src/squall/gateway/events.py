"""API Gateway's Lambda proxy events (payload formats 1.0 and 2.0) and the mapping of a function's
answer back to an HTTP response."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from squall.gateway.request import GatewayRequest

#: Content types whose bodies reach the function as text; any other body is base64-encoded.
_TEXT_TYPES = ("text/", "json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "graphql")
#: Headers API Gateway removes from the event (cookies travel in ``cookies`` in payload 2.0).
_V2_DROPPED_HEADERS = ("cookie",)


def encode_body(request: GatewayRequest) -> tuple[str | None, bool]:
    """The event's ``body`` and ``isBase64Encoded``: text stays text, anything else is base64."""
    if not request.body:
        return None, False
    content_type = (request.header("content-type") or "").lower()
    textual = not content_type or any(marker in content_type for marker in _TEXT_TYPES)
    if textual:
        try:
            return request.body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(request.body).decode(), True


def merged_headers(request: GatewayRequest, dropped: tuple[str, ...] = ()) -> dict[str, str]:
    """Headers by name, repeated ones joined with commas, without the ``dropped`` names."""
    merged: dict[str, str] = {}
    for key, value in request.headers:
        if key in dropped:
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    return merged


def _query_parameters(request: GatewayRequest) -> dict[str, list[str]]:
    parameters: dict[str, list[str]] = {}
    for key, value in request.query_pairs():
        parameters.setdefault(key, []).append(value)
    return parameters


def v2_request_context(request: GatewayRequest, route_key: str, authorizer: dict[str, Any] | None) -> dict[str, Any]:
    """``requestContext`` of payload 2.0 (and of 2.0 Lambda authorizer events)."""
    context: dict[str, Any] = {
        "accountId": request.account_id,
        "apiId": request.api_id,
        "domainName": request.domain_name,
        "domainPrefix": request.domain_prefix,
        "http": {
            "method": request.method,
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": request.user_agent,
        },
        "requestId": request.request_id,
        "routeKey": route_key,
        "stage": request.stage,
        "time": request.request_time,
        "timeEpoch": request.time_epoch_ms,
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    return context


def v2_event(
    request: GatewayRequest,
    route_key: str,
    path_parameters: dict[str, str],
    stage_variables: dict[str, str],
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload format 2.0 event; members without a value are left out, as API Gateway does."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    }
    cookies = request.cookies()
    if cookies:
        event["cookies"] = cookies
    event["headers"] = merged_headers(request, _V2_DROPPED_HEADERS)
    query = _query_parameters(request)
    if query:
        event["queryStringParameters"] = {key: ",".join(values) for key, values in query.items()}
    if path_parameters:
        event["pathParameters"] = path_parameters
    if stage_variables:
        event["stageVariables"] = stage_variables
    event["requestContext"] = v2_request_context(request, route_key, authorizer)
    body, encoded = encode_body(request)
    if body is not None:
        event["body"] = body
    event["isBase64Encoded"] = encoded
    return event


def v1_event(
    request: GatewayRequest,
    route_id: str,
    route_key: str,
    path_parameters: dict[str, str],
    stage_variables: dict[str, str],
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload format 1.0 event (the ``apigateway/AwsProxy`` shape)."""
    resource = route_key.partition(" ")[2] or route_key
    multi_headers: dict[str, list[str]] = {}
    for key, value in request.headers:
        multi_headers.setdefault(key, []).append(value)
    query = _query_parameters(request)
    body, encoded = encode_body(request)
    context: dict[str, Any] = {
        "accountId": request.account_id,
        "apiId": request.api_id,
        "domainName": request.domain_name,
        "domainPrefix": request.domain_prefix,
        "extendedRequestId": request.request_id,
        "httpMethod": request.method,
        "identity": {
            "accessKey": None,
            "accountId": None,
            "caller": None,
            "cognitoAmr": None,
            "cognitoAuthenticationProvider": None,
            "cognitoAuthenticationType": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "principalOrgId": None,
            "sourceIp": request.source_ip,
            "user": None,
            "userAgent": request.user_agent,
            "userArn": None,
        },
        "path": request.raw_path,
        "protocol": request.protocol,
        "requestId": request.request_id,
        "requestTime": request.request_time,
        "requestTimeEpoch": request.time_epoch_ms,
        "resourceId": route_id,
        "resourcePath": resource,
        "stage": request.stage,
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {
        "version": "1.0",
        "resource": resource,
        "path": request.raw_path,
        "httpMethod": request.method,
        "headers": {key: values[-1] for key, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {key: values[-1] for key, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "requestContext": context,
        "pathParameters": path_parameters or None,
        "stageVariables": stage_variables or None,
        "body": body,
        "isBase64Encoded": encoded,
    }


class BadResponse(ValueError):
    """The function's answer is not a proxy response API Gateway can map."""


@dataclass
class HttpResponse:
    """A response ready to send: status, headers (repeatable) and body bytes."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def json_response(status: int, message: str) -> HttpResponse:
    """API Gateway's own ``{"message": ...}`` responses."""
    return HttpResponse(
        status, [("content-type", "application/json")], json.dumps({"message": message}, separators=(",", ":")).encode()
    )


def map_response(payload: bytes, version: str) -> HttpResponse:
    """The HTTP response for a function's answer; BadResponse when API Gateway would answer 500/502."""
    try:
        value = json.loads(payload)
    except ValueError:
        raise BadResponse("the function's answer is not JSON") from None
    if version == "2.0" and not (isinstance(value, dict) and "statusCode" in value):
        # Payload 2.0's inference: any JSON without a statusCode is a 200 with that JSON as body.
        return HttpResponse(200, [("content-type", "application/json")], payload)
    if not isinstance(value, dict):
        raise BadResponse("the function's answer is not an object")
    return _structured(value, version)


def _structured(value: dict[str, Any], version: str) -> HttpResponse:
    status = value.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise BadResponse("statusCode is missing or invalid")
    headers: list[tuple[str, str]] = []
    single = value.get("headers") or {}
    multi = value.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise BadResponse("headers must be objects")
    for key, item in single.items():
        if key in multi:
            continue
        headers.append((str(key), _text(item)))
    for key, items in multi.items():
        if not isinstance(items, list):
            raise BadResponse("multiValueHeaders values must be lists")
        headers.extend((str(key), _text(item)) for item in items)
    if version == "2.0":
        cookies = value.get("cookies") or []
        if not isinstance(cookies, list):
            raise BadResponse("cookies must be a list")
        headers.extend(("set-cookie", str(cookie)) for cookie in cookies)
    body = value.get("body")
    if body is None:
        raw = b""
    elif value.get("isBase64Encoded") is True:
        try:
            raw = base64.b64decode(str(body), validate=True)
        except (binascii.Error, ValueError):
            raise BadResponse("body is not valid base64") from None
    else:
        raw = (body if isinstance(body, str) else json.dumps(body)).encode()
    return HttpResponse(status, headers, raw)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
