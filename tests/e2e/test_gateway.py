"""The HTTP gateway against a live server: API Gateway v2 management through boto3, requests over HTTP."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel, APIGatewayProxyEventV2Model
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import make_zip

from .conftest import ROLE, SquallServer, error_of, free_port
from .test_cli import DOCS, code_blocks

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "events" / "aws-lambda-go"

ECHO = """
import base64, json, time

def handler(event, context):
    path = event.get("rawPath") or event.get("path") or ""
    if path.endswith("/boom"):
        raise RuntimeError("boom")
    if path.endswith("/slow"):
        time.sleep(2.5)
    if path.endswith("/infer"):
        return {"hello": "world"}
    if path.endswith("/binary"):
        body = event["body"] if event["isBase64Encoded"] else base64.b64encode(event["body"].encode()).decode()
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": body, "isBase64Encoded": True}
    if path.endswith("/cookies"):
        return {"statusCode": 201, "cookies": ["a=1", "b=2"], "headers": {"x-one": "1"}, "body": "made"}
    if path.endswith("/multi"):
        return {"statusCode": 200, "headers": {"x-single": "s"}, "multiValueHeaders": {"x-many": ["1", "2"]},
                "body": "ok"}
    if path.endswith("/framing"):
        return {"statusCode": 200, "headers": {"content-length": "999", "transfer-encoding": "chunked"}, "body": "abc"}
    if path.endswith("/cors"):
        return {"statusCode": 200, "headers": {"access-control-allow-origin": "https://evil.example"}, "body": "c"}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
"""

AUTHORIZER = """
import uuid

def simple(event, context):
    token = event["identitySource"][0]
    if token == "deny":
        return {"isAuthorized": False}
    return {"isAuthorized": True, "context": {"call": str(uuid.uuid4()), "token": token}}

def policy(event, context):
    source = event["identitySource"]  # a list in payload 2.0, a comma-joined string in 1.0
    token = source[0] if isinstance(source, list) else source
    effect = "Deny" if token == "deny" else "Allow"
    arn = event.get("routeArn") or event["methodArn"]
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": arn}
    return {"principalId": "user-1", "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
            "context": {"call": str(uuid.uuid4())}}
"""


@pytest.fixture(scope="module")
def functions(lam: Any) -> Iterator[dict[str, str]]:
    """The echo function and two authorizer functions, by role: their ARNs."""
    specs = {
        "echo": ("gw-echo", ECHO, "app.handler"),
        "simple": ("gw-auth-simple", AUTHORIZER, "app.simple"),
        "policy": ("gw-auth-policy", AUTHORIZER, "app.policy"),
    }
    arns: dict[str, str] = {}
    for role, (name, source, handler) in specs.items():
        created = lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=ROLE,
            Handler=handler,
            Code={"ZipFile": make_zip({"app.py": source})},
            Timeout=5,
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
        arns[role] = created["FunctionArn"]
    yield arns
    for name, _, _ in specs.values():
        lam.delete_function(FunctionName=name)


@pytest.fixture(scope="module")
def apigw(squall: SquallServer) -> Any:
    return squall.client("apigatewayv2")


@pytest.fixture(scope="module")
def http(squall: SquallServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{squall.gateway_port}", timeout=30) as client:
        yield client


def http_api(apigw: Any, target: str, routes: list[str], version: str = "2.0", **api: Any) -> tuple[str, str]:
    """A new HTTP API with a $default stage and ``routes`` to one integration: (api id, integration id)."""
    api_id = apigw.create_api(Name="t", ProtocolType="HTTP", **api)["ApiId"]
    integration = apigw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=target, PayloadFormatVersion=version
    )["IntegrationId"]
    for key in routes:
        apigw.create_route(ApiId=api_id, RouteKey=key, Target=f"integrations/{integration}")
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    return api_id, integration


def shape(value: object) -> object:
    """Keys and value types, recursively."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def assert_shape_covers(ours: object, sample: object, where: str = "event") -> None:
    """Every member of the sample that we send has the sample's type, recursively (nulls aside)."""
    if isinstance(sample, dict):
        assert isinstance(ours, dict), where
        for key, item in sample.items():
            if key in ours and ours[key] is not None:
                assert_shape_covers(ours[key], item, f"{where}.{key}")
    else:
        assert shape(ours) == shape(sample) or shape(sample) == [], (where, shape(ours), shape(sample))


# --- management --------------------------------------------------------------------------------------
def test_api_lifecycle_and_errors(apigw: Any, squall: SquallServer) -> None:
    created = apigw.create_api(
        Name="shop", ProtocolType="HTTP", Description="d", CorsConfiguration={"AllowOrigins": ["*"], "MaxAge": 60}
    )
    api_id = created["ApiId"]
    assert len(api_id) == 10 and api_id.isalnum() and api_id.islower()
    assert created["ApiEndpoint"] == f"http://{api_id}.execute-api.localhost:{squall.gateway_port}"
    assert created["RouteSelectionExpression"] == "$request.method $request.path"
    assert created["ApiKeySelectionExpression"] == "$request.header.x-api-key"
    assert created["CorsConfiguration"] == {"AllowOrigins": ["*"], "MaxAge": 60}
    assert created["CreatedDate"].year >= 2024
    assert apigw.get_api(ApiId=api_id)["Name"] == "shop"
    assert api_id in [item["ApiId"] for item in apigw.get_apis()["Items"]]
    assert apigw.update_api(ApiId=api_id, Name="store")["Name"] == "store"

    code, message, status, _ = error_of(apigw.get_api, ApiId="nosuchapi0")
    assert (code, message, status) == (
        "NotFoundException",
        "Invalid API identifier specified 000000000000:nosuchapi0",
        404,
    )
    code, _, status, _ = error_of(
        apigw.create_integration,
        ApiId=api_id,
        IntegrationType="AWS_PROXY",
        IntegrationUri="x",
        PayloadFormatVersion="2.0",
        TimeoutInMillis=30001,
    )
    assert (code, status) == ("BadRequestException", 400)

    integration = apigw.create_integration(
        ApiId=api_id,
        IntegrationType="AWS_PROXY",
        IntegrationUri="arn:aws:lambda:us-east-1:000000000000:function:f",
        PayloadFormatVersion="1.0",
    )
    assert integration["TimeoutInMillis"] == 30000 and integration["PayloadFormatVersion"] == "1.0"
    assert len(integration["IntegrationId"]) == 7
    target = f"integrations/{integration['IntegrationId']}"
    route = apigw.create_route(ApiId=api_id, RouteKey="GET /users/{id}", Target=target)
    assert route["AuthorizationType"] == "NONE" and route["ApiKeyRequired"] is False
    code, _, status, _ = error_of(apigw.create_route, ApiId=api_id, RouteKey="GET /users/{id}", Target=target)
    assert (code, status) == ("ConflictException", 409)
    code, _, status, _ = error_of(apigw.create_route, ApiId=api_id, RouteKey="FETCH /x")
    assert (code, status) == ("BadRequestException", 400)
    updated = apigw.update_route(ApiId=api_id, RouteId=route["RouteId"], RouteKey="GET /people/{id}")
    assert updated["RouteKey"] == "GET /people/{id}" and updated["Target"] == target
    assert [r["RouteKey"] for r in apigw.get_routes(ApiId=api_id)["Items"]] == ["GET /people/{id}"]
    code, _, _, _ = error_of(apigw.delete_integration, ApiId=api_id, IntegrationId=integration["IntegrationId"])
    assert code == "ConflictException"

    stage = apigw.create_stage(ApiId=api_id, StageName="prod", StageVariables={"v": "1"})
    assert stage["StageName"] == "prod" and stage["AutoDeploy"] is False and stage["StageVariables"] == {"v": "1"}
    assert error_of(apigw.create_stage, ApiId=api_id, StageName="prod")[0] == "ConflictException"
    assert [s["StageName"] for s in apigw.get_stages(ApiId=api_id)["Items"]] == ["prod"]

    authorizer = apigw.create_authorizer(
        ApiId=api_id,
        Name="jwt",
        AuthorizerType="JWT",
        IdentitySource=["$request.header.Authorization"],
        JwtConfiguration={"Issuer": "https://issuer.example", "Audience": ["app"]},
    )
    assert apigw.get_authorizer(ApiId=api_id, AuthorizerId=authorizer["AuthorizerId"])["JwtConfiguration"] == {
        "Audience": ["app"],
        "Issuer": "https://issuer.example",
    }
    assert len(apigw.get_authorizers(ApiId=api_id)["Items"]) == 1

    apigw.delete_route(ApiId=api_id, RouteId=route["RouteId"])
    assert error_of(apigw.get_route, ApiId=api_id, RouteId=route["RouteId"])[0] == "NotFoundException"
    apigw.delete_integration(ApiId=api_id, IntegrationId=integration["IntegrationId"])
    apigw.delete_stage(ApiId=api_id, StageName="prod")
    apigw.delete_authorizer(ApiId=api_id, AuthorizerId=authorizer["AuthorizerId"])
    assert apigw.get_integrations(ApiId=api_id)["Items"] == []
    apigw.delete_api(ApiId=api_id)
    assert error_of(apigw.get_api, ApiId=api_id)[2] == 404
    assert error_of(apigw.get_routes, ApiId=api_id)[0] == "NotFoundException"


def test_paging(apigw: Any) -> None:
    ids = [apigw.create_api(Name=f"page{i}", ProtocolType="HTTP")["ApiId"] for i in range(3)]
    first = apigw.get_apis(MaxResults="2")
    assert len(first["Items"]) == 2 and "NextToken" in first
    seen = [item["ApiId"] for item in first["Items"]]
    token = first["NextToken"]
    while token:
        page = apigw.get_apis(MaxResults="2", NextToken=token)
        seen += [item["ApiId"] for item in page["Items"]]
        token = page.get("NextToken")
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    for api_id in ids:
        apigw.delete_api(ApiId=api_id)


# --- serving -----------------------------------------------------------------------------------------
def test_quick_create_v2_event(apigw: Any, http: httpx.Client, functions: dict[str, str]) -> None:
    created = apigw.create_api(Name="quick", ProtocolType="HTTP", Target=functions["echo"], RouteKey="ANY /items/{id}")
    api_id = created["ApiId"]
    assert [s["StageName"] for s in apigw.get_stages(ApiId=api_id)["Items"]] == ["$default"]
    [route] = apigw.get_routes(ApiId=api_id)["Items"]
    assert route["RouteKey"] == "ANY /items/{id}" and route["ApiGatewayManaged"] is True
    response = http.post(
        f"/{api_id}/items/42?a=1&a=2&b=x",
        content=b'{"n": 1}',
        headers={"content-type": "application/json", "cookie": "c1=v1; c2=v2", "x-custom": "yes"},
    )
    assert response.status_code == 200, response.text
    event = response.json()
    assert event["version"] == "2.0" and event["routeKey"] == "ANY /items/{id}"
    assert event["rawPath"] == "/items/42" and event["rawQueryString"] == "a=1&a=2&b=x"
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x"}
    assert event["cookies"] == ["c1=v1", "c2=v2"] and "cookie" not in event["headers"]
    assert event["headers"]["x-custom"] == "yes"
    assert event["body"] == '{"n": 1}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["apiId"] == api_id and context["stage"] == "$default" and context["accountId"] == "000000000000"
    assert context["http"]["method"] == "POST" and context["http"]["path"] == "/items/42"
    assert "authorizer" not in context
    APIGatewayProxyEventV2Model.model_validate(event)
    sample = json.loads((SAMPLES / "apigw-v2-request-jwt-authorizer.json").read_text())
    assert set(event) == set(sample) - {"stageVariables"}  # no stage variables on this stage
    assert set(event["requestContext"]) == set(sample["requestContext"]) - {"authorizer", "authentication"}
    assert_shape_covers(event, sample)
    assert http.get(f"/{api_id}/items").json() == {"message": "Not Found"}
    assert http.get(f"/{api_id}/items").status_code == 404
    assert http.get("/nosuchapi0/items/1").status_code == 404


def test_v1_event_named_stage(apigw: Any, http: httpx.Client, functions: dict[str, str]) -> None:
    api_id, _ = http_api(apigw, functions["echo"], ["POST /things/{proxy+}"], version="1.0")
    apigw.create_stage(ApiId=api_id, StageName="prod", StageVariables={"color": "blue"})
    response = http.post(f"/{api_id}/prod/things/a/b?x=1&x=2", content=b"hi", headers={"content-type": "text/plain"})
    assert response.status_code == 200, response.text
    event = response.json()
    assert event["resource"] == "/things/{proxy+}" and event["path"] == "/prod/things/a/b"
    assert event["httpMethod"] == "POST" and event["pathParameters"] == {"proxy": "a/b"}
    assert event["queryStringParameters"] == {"x": "2"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
    assert event["stageVariables"] == {"color": "blue"} and event["requestContext"]["stage"] == "prod"
    assert event["body"] == "hi" and event["isBase64Encoded"] is False
    assert event["multiValueHeaders"]["content-type"] == ["text/plain"]
    APIGatewayProxyEventModel.model_validate(event)
    sample = json.loads((SAMPLES / "apigw-request.json").read_text())
    assert set(sample) <= set(event)
    assert_shape_covers(event, sample)
    # The same API through the $default stage, and by Host instead of by path.
    host = {"host": f"{api_id}.execute-api.localhost"}
    by_host = http.post("/prod/things/z", content=b"", headers=host)
    assert by_host.json()["requestContext"]["stage"] == "prod"
    assert http.post("/things/z", headers=host).json()["requestContext"]["stage"] == "$default"


def test_route_precedence(apigw: Any, http: httpx.Client, functions: dict[str, str]) -> None:
    keys = ["GET /p/exact", "GET /p/{id}", "ANY /p/{id}", "GET /p/{proxy+}", "ANY /{proxy+}", "$default"]
    api_id, _ = http_api(apigw, functions["echo"], keys)

    def chosen(method: str, path: str) -> tuple[str, dict[str, str] | None]:
        event = http.request(method, f"/{api_id}{path}").json()
        return event["routeKey"], event.get("pathParameters")

    assert chosen("GET", "/p/exact") == ("GET /p/exact", None)
    assert chosen("GET", "/p/7") == ("GET /p/{id}", {"id": "7"})
    assert chosen("DELETE", "/p/7") == ("ANY /p/{id}", {"id": "7"})
    assert chosen("GET", "/p/7/8") == ("GET /p/{proxy+}", {"proxy": "7/8"})
    assert chosen("PUT", "/q/r") == ("ANY /{proxy+}", {"proxy": "q/r"})
    assert chosen("GET", "/") == ("$default", None)
    apigw.update_api(ApiId=api_id, DisableExecuteApiEndpoint=True)
    assert http.get(f"/{api_id}/p/exact").status_code == 403


def test_responses(apigw: Any, http: httpx.Client, functions: dict[str, str]) -> None:
    api_id, _ = http_api(apigw, functions["echo"], ["ANY /{proxy+}"])
    v1_id, _ = http_api(apigw, functions["echo"], ["ANY /{proxy+}"], version="1.0")

    inferred = http.get(f"/{api_id}/infer")
    assert (inferred.status_code, inferred.headers["content-type"]) == (200, "application/json")
    assert inferred.json() == {"hello": "world"}
    made = http.get(f"/{api_id}/cookies")
    assert (made.status_code, made.text, made.headers["x-one"]) == (201, "made", "1")
    assert made.headers.get_list("set-cookie") == ["a=1", "b=2"]
    multi = http.get(f"/{v1_id}/multi")
    assert multi.headers.get_list("x-many") == ["1", "2"] and multi.headers["x-single"] == "s"
    # Payload 1.0 has no inference: an answer without statusCode is the gateway's error.
    assert http.get(f"/{v1_id}/infer").status_code == 502
    boom = http.get(f"/{api_id}/boom")
    assert (boom.status_code, boom.json()) == (502, {"message": "Internal Server Error"})
    assert http.get(f"/{api_id}/anything").headers["apigw-requestid"]
    framed = http.get(f"/{api_id}/framing")  # the function cannot break the HTTP framing
    assert (framed.status_code, framed.text, framed.headers["content-length"]) == (200, "abc", "3")

    payload = bytes(range(256)) * 4
    for target in (api_id, v1_id):
        binary = http.post(f"/{target}/binary", content=payload, headers={"content-type": "application/octet-stream"})
        assert binary.status_code == 200 and binary.content == payload
    seen = http.post(f"/{api_id}/echo", content=payload, headers={"content-type": "image/png"}).json()
    assert seen["isBase64Encoded"] is True and base64.b64decode(seen["body"]) == payload

    too_big = http.post(f"/{api_id}/echo", content=b"x" * (10 * 1024 * 1024 + 1))
    assert too_big.status_code == 413


@pytest.mark.slow
def test_integration_timeout(apigw: Any, http: httpx.Client, functions: dict[str, str]) -> None:
    api_id = apigw.create_api(Name="slow", ProtocolType="HTTP")["ApiId"]
    integration = apigw.create_integration(
        ApiId=api_id,
        IntegrationType="AWS_PROXY",
        IntegrationUri=functions["echo"],
        PayloadFormatVersion="2.0",
        TimeoutInMillis=500,
    )
    apigw.create_route(ApiId=api_id, RouteKey="GET /slow", Target=f"integrations/{integration['IntegrationId']}")
    apigw.create_stage(ApiId=api_id, StageName="$default")
    started = time.monotonic()
    response = http.get(f"/{api_id}/slow")
    assert (response.status_code, response.json()) == (503, {"message": "Service Unavailable"})
    assert time.monotonic() - started < 2.0


def test_cors(apigw: Any, http: httpx.Client, functions: dict[str, str]) -> None:
    cors = {
        "AllowOrigins": ["https://app.example"],
        "AllowMethods": ["GET", "POST"],
        "AllowHeaders": ["content-type", "x-token"],
        "ExposeHeaders": ["x-one"],
        "MaxAge": 300,
        "AllowCredentials": True,
    }
    api_id, _ = http_api(apigw, functions["echo"], ["ANY /{proxy+}"], CorsConfiguration=cors)
    preflight = http.options(
        f"/{api_id}/cors",
        headers={"origin": "https://app.example", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert preflight.headers["access-control-allow-methods"] == "GET,POST"
    assert preflight.headers["access-control-allow-headers"] == "content-type,x-token"
    assert preflight.headers["access-control-max-age"] == "300"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    foreign = http.options(
        f"/{api_id}/cors", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
    )
    assert "access-control-allow-origin" not in foreign.headers
    response = http.get(f"/{api_id}/cors", headers={"origin": "https://app.example"})
    assert response.headers.get_list("access-control-allow-origin") == ["https://app.example"]
    assert response.headers["access-control-expose-headers"] == "x-one"


# --- authorizers -------------------------------------------------------------------------------------
class _Issuer:
    """An OpenID issuer on a local port: discovery document and JWKS, and tokens signed with its key."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        documents = {
            "/.well-known/openid-configuration": {"issuer": self.url, "jwks_uri": f"{self.url}/jwks"},
            "/jwks": {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]},
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(documents.get(self.path, {})).encode()
                self.send_response(200 if self.path in documents else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, **claims: Any) -> str:
        body = {"iss": self.url, "aud": "app", "sub": "u1", "exp": int(time.time()) + 300, **claims}
        body = {key: value for key, value in body.items() if value is not None}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def issuer() -> Iterator[_Issuer]:
    issuer = _Issuer()
    yield issuer
    issuer.server.shutdown()
    issuer.server.server_close()


def jwt_api(apigw: Any, target: str, issuer_url: str, routes: dict[str, list[str]]) -> tuple[str, str]:
    """An API whose ``routes`` (route key: scopes) go to ``target`` behind a JWT authorizer trusting
    ``issuer_url`` for audience ``app``: (api id, authorizer id)."""
    api_id, integration = http_api(apigw, target, [])
    authorizer = apigw.create_authorizer(
        ApiId=api_id,
        Name="jwt",
        AuthorizerType="JWT",
        IdentitySource=["$request.header.Authorization"],
        JwtConfiguration={"Issuer": issuer_url, "Audience": ["app"]},
    )["AuthorizerId"]
    for key, scopes in routes.items():
        apigw.create_route(
            ApiId=api_id,
            RouteKey=key,
            Target=f"integrations/{integration}",
            AuthorizationType="JWT",
            AuthorizerId=authorizer,
            AuthorizationScopes=scopes,
        )
    return api_id, authorizer


def test_jwt_authorizer(apigw: Any, http: httpx.Client, functions: dict[str, str], issuer: _Issuer) -> None:
    api_id, authorizer = jwt_api(apigw, functions["echo"], issuer.url, {"GET /me": [], "GET /admin": ["admin"]})
    unauthorized = (401, {"message": "Unauthorized"})

    def call(path: str, token: str | None) -> tuple[int, Any]:
        response = http.get(f"/{api_id}{path}", headers={"authorization": f"Bearer {token}"} if token else {})
        return response.status_code, response.json()

    assert call("/me", None) == unauthorized
    assert call("/me", "not-a-jwt") == unauthorized
    assert call("/me", issuer.token(aud="other")) == unauthorized
    refused = http.get(f"/{api_id}/me", headers={"authorization": issuer.token(aud="other")})  # no "Bearer ": fine
    assert 'error_description="the token does not have a valid audience"' in refused.headers["www-authenticate"]
    assert call("/me", issuer.token(aud=None, client_id="app"))[0] == 200  # client_id stands in for a missing aud
    assert call("/me", issuer.token(nbf=int(time.time()) + 300)) == unauthorized
    unsigned = jwt.encode(
        {"iss": issuer.url, "aud": "app", "exp": int(time.time()) + 60},
        "s" * 32,
        algorithm="HS256",
        headers={"kid": "k1"},
    )
    assert call("/me", unsigned) == unauthorized  # RSA signatures only
    assert call("/me", issuer.token(exp=int(time.time()) - 10)) == unauthorized
    assert call("/me", issuer.token(iss="https://elsewhere.example")) == unauthorized
    status, event = call("/me", issuer.token(scope="read write", groups=["a", "b"]))
    assert status == 200
    jwt_context = event["requestContext"]["authorizer"]["jwt"]
    assert jwt_context["claims"]["sub"] == "u1" and jwt_context["claims"]["groups"] == "[a b]"
    assert jwt_context["scopes"] == ["read", "write"]
    APIGatewayProxyEventV2Model.model_validate(event)
    sample = json.loads((SAMPLES / "apigw-v2-request-jwt-authorizer.json").read_text())
    assert_shape_covers(event["requestContext"]["authorizer"], sample["requestContext"]["authorizer"])
    assert call("/admin", issuer.token(scope="read")) == (403, {"message": "Forbidden"})
    assert call("/admin", issuer.token(scope="admin"))[0] == 200

    v1_integration = apigw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=functions["echo"], PayloadFormatVersion="1.0"
    )["IntegrationId"]
    apigw.create_route(
        ApiId=api_id,
        RouteKey="GET /v1/me",
        Target=f"integrations/{v1_integration}",
        AuthorizationType="JWT",
        AuthorizerId=authorizer,
    )
    status, event = call("/v1/me", issuer.token())
    assert status == 200 and event["requestContext"]["authorizer"]["claims"]["sub"] == "u1"
    APIGatewayProxyEventModel.model_validate(event)


def test_jwt_issuer_at_a_squall_website_endpoint(
    squall: SquallServer, apigw: Any, http: httpx.Client, functions: dict[str, str], issuer: _Issuer
) -> None:
    """An issuer may publish its discovery document and keys as a bucket's website, at the
    ``*.localhost`` URL Squall gives it: the authorizer reaches such names on the loopback address
    even where the machine's resolver does not know them."""
    s3, bucket = squall.client("s3"), "jwt-issuer-site"
    url = f"http://{bucket}.s3-website-us-east-1.localhost:{squall.gateway_port}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(issuer.key.public_key()))
    documents = {
        ".well-known/openid-configuration": {"issuer": url, "jwks_uri": f"{url}/.well-known/jwks.json"},
        ".well-known/jwks.json": {"keys": [{**jwk, "kid": "site-1", "use": "sig", "alg": "RS256"}]},
    }
    for key, document in documents.items():
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode(), ContentType="application/json")
    api_id, _ = jwt_api(apigw, functions["echo"], url, {"GET /me": []})
    claims = {"iss": url, "aud": "app", "sub": "site-user", "exp": int(time.time()) + 300}
    token = jwt.encode(claims, issuer.key, algorithm="RS256", headers={"kid": "site-1"})
    response = http.get(f"/{api_id}/me", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json()["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] == "site-user"
    forged = jwt.encode(
        claims,
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
        headers={"kid": "site-1"},
    )
    assert http.get(f"/{api_id}/me", headers={"authorization": f"Bearer {forged}"}).status_code == 401


def test_lambda_authorizers_and_caching(apigw: Any, http: httpx.Client, functions: dict[str, str]) -> None:
    api_id, integration = http_api(apigw, functions["echo"], [])
    simple = apigw.create_authorizer(
        ApiId=api_id,
        Name="simple",
        AuthorizerType="REQUEST",
        AuthorizerUri=functions["simple"],
        AuthorizerPayloadFormatVersion="2.0",
        EnableSimpleResponses=True,
        IdentitySource=["$request.header.x-token"],
        AuthorizerResultTtlInSeconds=300,
    )
    assert simple["EnableSimpleResponses"] is True and simple["AuthorizerResultTtlInSeconds"] == 300
    policy = apigw.create_authorizer(
        ApiId=api_id,
        Name="policy",
        AuthorizerType="REQUEST",
        AuthorizerUri=functions["policy"],
        AuthorizerPayloadFormatVersion="2.0",
        IdentitySource=["$request.querystring.key"],
    )
    for key, authorizer in (("GET /simple", simple), ("GET /policy", policy)):
        apigw.create_route(
            ApiId=api_id,
            RouteKey=key,
            Target=f"integrations/{integration}",
            AuthorizationType="CUSTOM",
            AuthorizerId=authorizer["AuthorizerId"],
        )

    def context(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        return dict(response.json()["requestContext"]["authorizer"]["lambda"])

    assert http.get(f"/{api_id}/simple").status_code == 401  # no identity source: the authorizer is not called
    first = context(http.get(f"/{api_id}/simple", headers={"x-token": "t1"}))
    again = context(http.get(f"/{api_id}/simple", headers={"x-token": "t1"}))
    other = context(http.get(f"/{api_id}/simple", headers={"x-token": "t2"}))
    assert first["token"] == "t1" and other["token"] == "t2"
    assert again["call"] == first["call"]  # cached for the same identity: the authorizer ran once
    assert other["call"] != first["call"]
    denied = http.get(f"/{api_id}/simple", headers={"x-token": "deny"})
    assert (denied.status_code, denied.json()) == (403, {"message": "Forbidden"})

    allowed = http.get(f"/{api_id}/policy", params={"key": "k"})
    assert allowed.status_code == 200
    assert set(allowed.json()["requestContext"]["authorizer"]) == {"lambda"}
    uncached = context(http.get(f"/{api_id}/policy", params={"key": "k"}))
    assert uncached["call"] != allowed.json()["requestContext"]["authorizer"]["lambda"]["call"]  # TTL 0: no cache
    assert http.get(f"/{api_id}/policy", params={"key": "deny"}).status_code == 403

    # A payload 1.0 authorizer in front of a payload 1.0 integration.
    v1_integration = apigw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=functions["echo"], PayloadFormatVersion="1.0"
    )["IntegrationId"]
    v1_authorizer = apigw.create_authorizer(
        ApiId=api_id,
        Name="policy-v1",
        AuthorizerType="REQUEST",
        AuthorizerUri=functions["policy"],
        AuthorizerPayloadFormatVersion="1.0",
        IdentitySource=["$request.header.x-key"],
    )["AuthorizerId"]
    apigw.create_route(
        ApiId=api_id,
        RouteKey="GET /v1",
        Target=f"integrations/{v1_integration}",
        AuthorizationType="CUSTOM",
        AuthorizerId=v1_authorizer,
    )
    v1 = http.get(f"/{api_id}/v1", headers={"x-key": "k"})
    assert v1.status_code == 200, v1.text
    event = v1.json()
    assert event["requestContext"]["authorizer"]["principalId"] == "user-1"
    APIGatewayProxyEventModel.model_validate(event)
    assert http.get(f"/{api_id}/v1", headers={"x-key": "deny"}).status_code == 403
    failing = apigw.create_authorizer(
        ApiId=api_id,
        Name="broken",
        AuthorizerType="REQUEST",
        AuthorizerUri=functions["echo"],
        AuthorizerPayloadFormatVersion="2.0",
        EnableSimpleResponses=True,
        IdentitySource=["$request.header.x-key"],
    )["AuthorizerId"]
    apigw.create_route(
        ApiId=api_id,
        RouteKey="GET /broken",
        Target=f"integrations/{integration}",
        AuthorizationType="CUSTOM",
        AuthorizerId=failing,
    )
    broken = http.get(f"/{api_id}/broken", headers={"x-key": "k"})  # the echo's answer is no authorizer answer
    assert (broken.status_code, broken.json()) == (500, {"message": "Internal Server Error"})


# --- durability and docs -----------------------------------------------------------------------------
@pytest.mark.slow
def test_apis_survive_restart(tmp_path: Path) -> None:
    server = SquallServer(tmp_path / "data")
    server.start()
    try:
        api_id = server.client("apigatewayv2").create_api(Name="kept", ProtocolType="HTTP")["ApiId"]
        server.client("apigatewayv2").create_stage(ApiId=api_id, StageName="$default")
    finally:
        server.stop()
    again = SquallServer(tmp_path / "data")
    again.start()
    try:
        apigw = again.client("apigatewayv2")
        assert apigw.get_api(ApiId=api_id)["Name"] == "kept"
        assert [s["StageName"] for s in apigw.get_stages(ApiId=api_id)["Items"]] == ["$default"]
    finally:
        again.stop()


@pytest.mark.slow
def test_docs_gateway_examples_run(squall: SquallServer, tmp_path: Path) -> None:
    page = code_blocks((DOCS / "gateway.md").read_text())
    blocks = [code for language, code in page if language == "python"]
    [output] = [code for language, code in page if language == "text"]
    code = "".join(blocks).replace("http://127.0.0.1:8990", squall.url).replace("8991", str(squall.gateway_port))
    (tmp_path / "session.py").write_text(code)
    env = {**squall.cli_env(), "AWS_ENDPOINT_URL": squall.url}
    result = subprocess.run(
        [sys.executable, str(tmp_path / "session.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == output.splitlines()
