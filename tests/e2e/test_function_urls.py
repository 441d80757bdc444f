"""Function URLs against a live server: their configs through boto3, requests over HTTP on the gateway port."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from aws_lambda_powertools.utilities.parser.models import LambdaFunctionUrlModel
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conftest import make_zip

from .conftest import SquallServer, error_of

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "events" / "aws-lambda-go"

ECHO = """
import base64, json

def handler(event, context):
    path = event["rawPath"]
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/binary":
        body = event["body"] if event["isBase64Encoded"] else base64.b64encode(event["body"].encode()).decode()
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": body, "isBase64Encoded": True}
    if path == "/made":
        return {"statusCode": 201, "headers": {"My-Custom-Header": "Custom Value"},
                "cookies": ["Cookie_1=Value1", "Cookie_2=Value2; Max-Age=78000"], "body": "made"}
    if path == "/infer":
        return {"hello": "world"}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
"""


def shape(value: object) -> object:
    """Keys and value types, recursively: what must match between two events."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def covers(ours: object, sample: object, where: str = "event") -> None:
    """Every member of the sample is in our event, with the same shape."""
    if isinstance(sample, dict):
        assert isinstance(ours, dict), where
        for key, item in sample.items():
            assert key in ours, f"{where}.{key} is missing"
            covers(ours[key], item, f"{where}.{key}")
    else:
        assert ours == sample, where


@pytest.fixture(scope="module")
def echo(squall: SquallServer) -> str:
    lam = squall.client("lambda")
    lam.create_function(
        FunctionName="url-echo",
        Runtime="python3.11",
        Role="arn:aws:iam::000000000000:role/any",
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": ECHO})},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="url-echo", WaiterConfig={"Delay": 0.05})
    return "url-echo"


def url_id_of(function_url: str) -> str:
    match = re.fullmatch(r"http://([a-z0-9]{32})\.lambda-url\.us-east-1\.localhost:(\d+)/", function_url)
    assert match, function_url
    return match.group(1)


def by_path(squall: SquallServer, url_id: str, path: str = "/") -> str:
    return f"http://127.0.0.1:{squall.gateway_port}/_lambda-url/{url_id}{path}"


# --- the configs ------------------------------------------------------------------------------------
def test_create_get_update_list_delete(squall: SquallServer, echo: str) -> None:
    lam = squall.client("lambda")
    created = lam.create_function_url_config(FunctionName=echo, AuthType="NONE")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert url_id_of(created["FunctionUrl"])
    assert str(created["FunctionUrl"]).endswith(f":{squall.gateway_port}/")
    assert created["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{echo}"
    assert (created["AuthType"], created["InvokeMode"]) == ("NONE", "BUFFERED")
    assert "LastModifiedTime" not in created and "Cors" not in created
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", created["CreationTime"])

    code, message, status, _ = error_of(lam.create_function_url_config, FunctionName=echo, AuthType="NONE")
    assert (code, status) == ("ResourceConflictException", 409)
    assert message == (
        f"Failed to create function url config for [functionArn = {created['FunctionArn']}]. "
        "Error message:  FunctionUrlConfig exists for this Lambda function"
    )

    got = lam.get_function_url_config(FunctionName=echo)
    assert got["FunctionUrl"] == created["FunctionUrl"]
    assert got["CreationTime"] == created["CreationTime"] == got["LastModifiedTime"]

    cors = {"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"], "MaxAge": 300}
    updated = lam.update_function_url_config(FunctionName=echo, AuthType="AWS_IAM", Cors=cors)
    assert (updated["AuthType"], updated["Cors"]) == ("AWS_IAM", cors)
    assert updated["FunctionUrl"] == created["FunctionUrl"]
    assert updated["LastModifiedTime"] > updated["CreationTime"]
    again = lam.update_function_url_config(FunctionName=echo, InvokeMode="RESPONSE_STREAM")
    assert (again["AuthType"], again["InvokeMode"], again["Cors"]) == ("AWS_IAM", "RESPONSE_STREAM", cors)

    listed = lam.list_function_url_configs(FunctionName=echo)["FunctionUrlConfigs"]
    assert [item["FunctionUrl"] for item in listed] == [created["FunctionUrl"]]

    deleted = lam.delete_function_url_config(FunctionName=echo)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    for call in (lam.get_function_url_config, lam.delete_function_url_config):
        code, message, status, _ = error_of(call, FunctionName=echo)
        assert (code, message, status) == (
            "ResourceNotFoundException",
            "The resource you requested does not exist.",
            404,
        )
    assert lam.list_function_url_configs(FunctionName=echo)["FunctionUrlConfigs"] == []
    code, _, status, _ = error_of(lam.update_function_url_config, FunctionName=echo, AuthType="NONE")
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_alias_urls_and_paging(squall: SquallServer, echo: str) -> None:
    lam = squall.client("lambda")
    version = lam.publish_version(FunctionName=echo)["Version"]
    lam.create_alias(FunctionName=echo, Name="live", FunctionVersion=version)
    try:
        plain = lam.create_function_url_config(FunctionName=echo, AuthType="NONE")
        live = lam.create_function_url_config(FunctionName=echo, Qualifier="live", AuthType="NONE")
        assert live["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{echo}:live"
        assert live["FunctionUrl"] != plain["FunctionUrl"]
        by_arn = lam.get_function_url_config(FunctionName=live["FunctionArn"])
        assert by_arn["FunctionUrl"] == live["FunctionUrl"]
        first = lam.list_function_url_configs(FunctionName=echo, MaxItems=1)
        assert len(first["FunctionUrlConfigs"]) == 1 and first["NextMarker"]
        rest = lam.list_function_url_configs(FunctionName=echo, Marker=first["NextMarker"])
        urls = {c["FunctionUrl"] for c in first["FunctionUrlConfigs"] + rest["FunctionUrlConfigs"]}
        assert urls == {plain["FunctionUrl"], live["FunctionUrl"]}
        assert "NextMarker" not in rest
        answer = httpx.get(by_path(squall, url_id_of(live["FunctionUrl"]), "/x"))
        assert answer.json()["requestContext"]["apiId"] == url_id_of(live["FunctionUrl"])
    finally:
        lam.delete_function_url_config(FunctionName=echo, Qualifier="live")
        lam.delete_function_url_config(FunctionName=echo)
        lam.delete_alias(FunctionName=echo, Name="live")


def test_errors(squall: SquallServer, echo: str) -> None:
    lam = squall.client("lambda")
    code, message, status, _ = error_of(lam.create_function_url_config, FunctionName="url-nope", AuthType="NONE")
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message == "Function not found: arn:aws:lambda:us-east-1:000000000000:function:url-nope"
    code, _, status, _ = error_of(
        lam.create_function_url_config, FunctionName=echo, Qualifier="missing", AuthType="NONE"
    )
    assert (code, status) == ("ResourceNotFoundException", 404)
    for qualifier in ("$LATEST", "1"):
        code, message, status, _ = error_of(
            lam.create_function_url_config, FunctionName=echo, Qualifier=qualifier, AuthType="NONE"
        )
        assert (code, status) == ("ValidationException", 400)
        assert message == (
            f"1 validation error detected: Value '{qualifier}' at 'qualifier' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)"
        )
    code, message, status, _ = error_of(lam.create_function_url_config, FunctionName=echo, AuthType="SECRET")
    assert (code, status) == ("ValidationException", 400)
    assert message == (
        "1 validation error detected: Value 'SECRET' at 'authType' failed to satisfy constraint: "
        "Member must satisfy enum value set: [NONE, AWS_IAM]"
    )
    code, message, status, _ = error_of(
        lam.create_function_url_config, FunctionName=echo, AuthType="NONE", Cors={"MaxAge": 90000}
    )
    assert (code, status) == ("ValidationException", 400)
    assert "at 'cors.maxAge' failed to satisfy constraint: Member must have value less than or equal to 86400" in (
        message
    )
    code, _, status, _ = error_of(lam.list_function_url_configs, FunctionName="url-nope")
    assert (code, status) == ("ResourceNotFoundException", 404)


# --- serving ----------------------------------------------------------------------------------------
@pytest.fixture
def open_url(squall: SquallServer, echo: str) -> Any:
    lam = squall.client("lambda")
    created = lam.create_function_url_config(FunctionName=echo, AuthType="NONE")
    yield url_id_of(created["FunctionUrl"])
    lam.delete_function_url_config(FunctionName=echo)


def test_event_has_the_sample_shape_and_parses(squall: SquallServer, open_url: str) -> None:
    answer = httpx.post(
        by_path(squall, open_url, "/my/path?parameter1=value1&parameter1=value2&parameter2=value"),
        headers={"header1": "value1", "header2": "value1,value2", "cookie": "cookie1; cookie2", "user-agent": "agent"},
        content=b"Hello from client!",
    )
    assert answer.status_code == 200
    event = answer.json()
    sample = json.loads((SAMPLES / "lambda-urls-request.json").read_text())
    ours = shape(event)
    expected = shape(sample)
    assert isinstance(expected, dict) and isinstance(expected["requestContext"], dict)
    del expected["requestContext"]["authorizer"]  # only AWS_IAM URLs carry one
    covers(ours, expected)
    assert event["rawPath"] == "/my/path"
    assert event["rawQueryString"] == "parameter1=value1&parameter1=value2&parameter2=value"
    assert event["queryStringParameters"] == sample["queryStringParameters"]
    assert event["cookies"] == ["cookie1", "cookie2"]
    assert "cookie" not in event["headers"]
    assert (event["headers"]["header1"], event["headers"]["header2"]) == ("value1", "value1,value2")
    assert (event["body"], event["isBase64Encoded"]) == ("Hello from client!", False)
    assert event["routeKey"] == "$default"
    context = event["requestContext"]
    assert (context["apiId"], context["domainPrefix"]) == (open_url, open_url)
    assert context["domainName"] == f"{open_url}.lambda-url.us-east-1.localhost"
    assert context["http"] == {
        "method": "POST",
        "path": "/my/path",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "agent",
    }
    assert (context["routeKey"], context["stage"]) == ("$default", "$default")
    assert re.fullmatch(r"\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000", context["time"])
    parsed = LambdaFunctionUrlModel(**event)
    assert parsed.requestContext.http.method == "POST"


def test_host_form_and_response_mapping(squall: SquallServer, open_url: str) -> None:
    host = {"Host": f"{open_url}.lambda-url.us-east-1.localhost:{squall.gateway_port}"}
    base = f"http://127.0.0.1:{squall.gateway_port}"
    event = httpx.get(f"{base}/hello", headers=host).json()
    assert (event["rawPath"], event["requestContext"]["apiId"]) == ("/hello", open_url)
    made = httpx.get(f"{base}/made", headers=host)
    assert (made.status_code, made.text, made.headers["my-custom-header"]) == (201, "made", "Custom Value")
    assert made.headers.get_list("set-cookie") == ["Cookie_1=Value1", "Cookie_2=Value2; Max-Age=78000"]
    inferred = httpx.get(f"{base}/infer", headers=host)
    assert (inferred.status_code, inferred.json()) == (200, {"hello": "world"})
    failed = httpx.get(f"{base}/boom", headers=host)
    assert (failed.status_code, failed.json()) == (502, {"Message": "Internal Server Error"})
    unknown = httpx.get(by_path(squall, "a" * 32, "/"))
    assert unknown.status_code == 404


def test_binary_bodies(squall: SquallServer, open_url: str) -> None:
    payload = bytes(range(256))
    answer = httpx.post(
        by_path(squall, open_url, "/binary"), content=payload, headers={"content-type": "application/octet-stream"}
    )
    assert (answer.status_code, answer.content) == (200, payload)
    event = httpx.post(
        by_path(squall, open_url, "/echo"), content=payload, headers={"content-type": "image/png"}
    ).json()
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_cors(squall: SquallServer, echo: str, open_url: str) -> None:
    lam = squall.client("lambda")
    lam.update_function_url_config(
        FunctionName=echo,
        Cors={
            "AllowOrigins": ["https://app.example"],
            "AllowMethods": ["POST"],
            "AllowHeaders": ["x-token"],
            "ExposeHeaders": ["x-made"],
            "MaxAge": 60,
        },
    )
    preflight = httpx.options(
        by_path(squall, open_url, "/any"),
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert preflight.headers["access-control-allow-methods"] == "POST"
    assert preflight.headers["access-control-allow-headers"] == "x-token"
    assert preflight.headers["access-control-max-age"] == "60"
    allowed = httpx.get(by_path(squall, open_url, "/x"), headers={"Origin": "https://app.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert allowed.headers["access-control-expose-headers"] == "x-made"
    other = httpx.get(by_path(squall, open_url, "/x"), headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def signed(squall: SquallServer, method: str, url: str, body: bytes = b"", service: str = "lambda") -> dict[str, str]:
    key, secret = squall.credentials()
    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(request)
    return dict(request.headers.items())


def test_aws_iam_auth(squall: SquallServer, echo: str) -> None:
    lam = squall.client("lambda")
    url_id = url_id_of(lam.create_function_url_config(FunctionName=echo, AuthType="AWS_IAM")["FunctionUrl"])
    try:
        target = by_path(squall, url_id, "/secure?a=1")
        unsigned = httpx.post(target, content=b"hi")
        assert (unsigned.status_code, unsigned.json()) == (403, {"Message": "Forbidden"})
        answer = httpx.post(target, content=b"hi", headers=signed(squall, "POST", target, b"hi"))
        assert answer.status_code == 200, answer.text
        event = answer.json()
        key, _ = squall.credentials()
        iam = event["requestContext"]["authorizer"]["iam"]
        assert (iam["accessKey"], iam["accountId"], iam["userArn"]) == (
            key,
            "000000000000",
            "arn:aws:iam::000000000000:root",
        )
        sample = json.loads((SAMPLES / "lambda-urls-request.json").read_text())
        covers(shape(event["requestContext"]["authorizer"]), shape(sample["requestContext"]["authorizer"]))
        assert LambdaFunctionUrlModel(**event).requestContext.authorizer.iam.accessKey == key  # type: ignore[union-attr]
        tampered = httpx.post(target, content=b"changed", headers=signed(squall, "POST", target, b"hi"))
        assert tampered.status_code == 403
        wrong_service = httpx.post(target, content=b"hi", headers=signed(squall, "POST", target, b"hi", "s3"))
        assert wrong_service.status_code == 403
    finally:
        lam.delete_function_url_config(FunctionName=echo)


def test_deleting_the_function_deletes_its_url(squall: SquallServer, make_function: Any) -> None:
    make_function("url-short-lived", make_zip({"app.py": ECHO}))
    lam = squall.client("lambda")
    url_id = url_id_of(lam.create_function_url_config(FunctionName="url-short-lived", AuthType="NONE")["FunctionUrl"])
    assert httpx.get(by_path(squall, url_id, "/")).status_code == 200
    lam.delete_function(FunctionName="url-short-lived")
    assert httpx.get(by_path(squall, url_id, "/")).status_code == 404


@pytest.mark.slow
def test_urls_and_websites_survive_restart(tmp_path: Path) -> None:
    server = SquallServer(tmp_path / "data")
    server.start()
    try:
        lam = server.client("lambda")
        lam.create_function(
            FunctionName="kept",
            Runtime="python3.11",
            Role="arn:aws:iam::000000000000:role/any",
            Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": ECHO})},
        )
        lam.get_waiter("function_active_v2").wait(FunctionName="kept", WaiterConfig={"Delay": 0.05})
        url = lam.create_function_url_config(FunctionName="kept", AuthType="NONE")["FunctionUrl"]
        s3 = server.client("s3")
        s3.create_bucket(Bucket="kept-site")
        s3.put_object(Bucket="kept-site", Key="index.html", Body=b"home", ContentType="text/html")
        s3.put_bucket_website(Bucket="kept-site", WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    finally:
        server.stop()
    server.start()
    try:
        assert server.client("lambda").get_function_url_config(FunctionName="kept")["FunctionUrl"] == url
        answer = httpx.get(by_path(server, url_id_of(url), "/after"))
        assert (answer.status_code, answer.json()["rawPath"]) == (200, "/after")
        home = httpx.get(f"http://127.0.0.1:{server.gateway_port}/_s3-website/kept-site/")
        assert (home.status_code, home.content) == (200, b"home")
    finally:
        server.stop()
