"""Proxy events of payload formats 1.0 and 2.0, and the mapping of a function's answer to HTTP."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel, APIGatewayProxyEventV2Model

from squall.gateway.events import BadResponse, map_response, v1_event, v2_event
from squall.gateway.request import GatewayRequest

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "events" / "aws-lambda-go"


def shape(value: object) -> object:
    """Keys and value types, recursively."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


#: Members whose keys are data (header names, parameters...), compared by their values' type only.
MAPS = {"headers", "queryStringParameters", "pathParameters", "stageVariables", "claims"}


def structure(value: object) -> object:
    """shape(), with data-keyed maps collapsed to one ``*`` member."""
    if isinstance(value, dict):
        return {
            key: {"*": shape(next(iter(item.values())))} if key in MAPS and isinstance(item, dict) else structure(item)
            for key, item in value.items()
        }
    return shape(value)


def request(body: bytes = b'{"a": 1}', content_type: str = "application/json") -> GatewayRequest:
    return GatewayRequest(
        api_id="abcdefghij",
        account_id="000000000000",
        region="us-east-1",
        stage="$default",
        method="POST",
        path="/my/path",
        raw_path="/my/path",
        raw_query="parameter1=value1&parameter1=value2&parameter2=value",
        headers=[
            ("content-type", content_type),
            ("header1", "value1"),
            ("header1", "value2"),
            ("cookie", "cookie1=1; cookie2=2"),
            ("user-agent", "agent"),
        ],
        body=body,
        source_ip="127.0.0.1",
        domain_name="abcdefghij.execute-api.localhost",
        request_id="id",
        time_epoch_ms=1583348638390,
    )


def test_v2_event_matches_the_sample_and_parses() -> None:
    authorizer = {"jwt": {"claims": {"claim1": "value1"}, "scopes": ["scope1"]}}
    event = v2_event(request(), "$default", {"proxy": "hello/world"}, {"stageVariable1": "value1"}, authorizer)
    sample = json.loads((SAMPLES / "apigw-v2-request-jwt-authorizer.json").read_text())
    del sample["requestContext"]["authentication"]  # mutual TLS only
    assert structure(event) == structure(sample)
    assert event["queryStringParameters"] == {"parameter1": "value1,value2", "parameter2": "value"}
    assert event["headers"]["header1"] == "value1,value2"
    assert event["cookies"] == ["cookie1=1", "cookie2=2"]
    assert event["requestContext"]["time"] == "04/Mar/2020:19:03:58 +0000"
    assert event["requestContext"]["domainPrefix"] == "abcdefghij"
    APIGatewayProxyEventV2Model.model_validate(event)


def test_v1_event_matches_the_sample_and_parses() -> None:
    event = v1_event(request(), "r1", "POST /{proxy+}", {"proxy": "hello/world"}, {"stageVariableName": "v"})
    sample = json.loads((SAMPLES / "apigw-request.json").read_text())
    assert set(sample) <= set(event)
    for key in ("headers", "multiValueHeaders", "queryStringParameters", "multiValueQueryStringParameters"):
        assert shape(event[key])[next(iter(event[key]))] == shape(sample[key])[next(iter(sample[key]))]
    assert set(event["requestContext"]) >= set(sample["requestContext"]) - {"authorizer"}
    assert set(event["requestContext"]["identity"]) >= set(sample["requestContext"]["identity"]) - {
        "apiKey",
        "apiKeyId",
        "clientCert",
    }
    assert event["resource"] == "/{proxy+}" and event["requestContext"]["resourcePath"] == "/{proxy+}"
    assert event["multiValueHeaders"]["header1"] == ["value1", "value2"] and event["headers"]["header1"] == "value2"
    assert event["multiValueQueryStringParameters"] == {"parameter1": ["value1", "value2"], "parameter2": ["value"]}
    parsed = APIGatewayProxyEventModel.model_validate(event)
    assert parsed.requestContext.identity.sourceIp is not None


def test_empty_members_are_null_in_v1_and_absent_in_v2() -> None:
    bare = request(body=b"")
    bare.raw_query = ""
    bare.headers = []
    v1 = v1_event(bare, "r", "$default", {}, {})
    assert v1["queryStringParameters"] is None and v1["pathParameters"] is None and v1["body"] is None
    assert v1["resource"] == "$default"
    v2 = v2_event(bare, "$default", {}, {})
    for member in ("cookies", "queryStringParameters", "pathParameters", "stageVariables", "body"):
        assert member not in v2
    APIGatewayProxyEventModel.model_validate(v1)
    APIGatewayProxyEventV2Model.model_validate(v2)


@pytest.mark.parametrize(
    ("body", "content_type", "encoded"),
    [
        (b"plain", "text/plain", False),
        (b"\x89PNG\x00\xff", "image/png", True),
        (b"\xff\xfe not utf-8", "application/json", True),
        (b"<a/>", "application/xml", False),
        (b"a=1", "application/x-www-form-urlencoded", False),
    ],
)
def test_binary_bodies_are_base64(body: bytes, content_type: str, encoded: bool) -> None:
    event = v2_event(request(body, content_type), "$default", {}, {})
    assert event["isBase64Encoded"] is encoded
    assert (base64.b64decode(event["body"]) if encoded else event["body"].encode()) == body


def test_v2_inference_without_status_code() -> None:
    for answer in (b'{"hello": "world"}', b'"text"', b"[1, 2]", b"42"):
        response = map_response(answer, "2.0")
        assert (response.status, response.body) == (200, answer)
        assert response.headers == [("content-type", "application/json")]
    with pytest.raises(BadResponse):
        map_response(b'{"hello": "world"}', "1.0")
    with pytest.raises(BadResponse):
        map_response(b"not json", "2.0")


def test_structured_responses() -> None:
    answer = {
        "statusCode": 201,
        "headers": {"x-a": "1", "x-b": True},
        "multiValueHeaders": {"x-a": ["2", "3"]},
        "cookies": ["c=1"],
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }
    v2 = map_response(json.dumps(answer).encode(), "2.0")
    assert v2.status == 201 and v2.body == b"\x00\x01"
    assert v2.headers == [("x-b", "true"), ("x-a", "2"), ("x-a", "3"), ("set-cookie", "c=1")]
    v1 = map_response(json.dumps(answer).encode(), "1.0")
    assert ("set-cookie", "c=1") not in v1.headers  # cookies are payload 2.0's
    assert map_response(b'{"statusCode": 204}', "1.0").body == b""
    for bad in ({"statusCode": "abc"}, {"statusCode": 99}, {"statusCode": 200, "headers": ["x"]}):
        with pytest.raises(BadResponse):
            map_response(json.dumps(bad).encode(), "2.0")
    with pytest.raises(BadResponse):
        map_response(b'{"statusCode": 200, "body": "%%%", "isBase64Encoded": true}', "2.0")


def test_lambda_authorizer_events_parse() -> None:
    from aws_lambda_powertools.utilities.parser.models import ApiGatewayAuthorizerRequest, ApiGatewayAuthorizerRequestV2

    from squall.gateway.authorizers import authorizer_event

    base = {"authorizerId": "a1", "identitySource": ["$request.header.header1"]}
    v2 = authorizer_event(
        {**base, "authorizerPayloadFormatVersion": "2.0"}, request(), ("r1", "POST /my/path"), {}, {}, ["value1,value2"]
    )
    parsed = ApiGatewayAuthorizerRequestV2.model_validate(v2)
    assert parsed.identitySource == ["value1,value2"] and v2["type"] == "REQUEST"
    assert v2["routeArn"] == "arn:aws:execute-api:us-east-1:000000000000:abcdefghij/$default/POST/my/path"
    assert v2["headers"]["header1"] == "value1,value2" and "cookie" not in v2["headers"]
    v1 = authorizer_event(
        {**base, "authorizerPayloadFormatVersion": "1.0"}, request(), ("r1", "POST /my/path"), {}, {}, ["a", "b"]
    )
    assert ApiGatewayAuthorizerRequest.model_validate(v1).methodArn == v2["routeArn"]
    assert v1["identitySource"] == "a,b"
