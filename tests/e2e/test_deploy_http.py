"""``squall deploy`` of HTTP APIs: SAM's implicit and explicit HttpApi and plain ApiGatewayV2 resources,
deployed against a live server and called over the gateway port."""

from __future__ import annotations

import http.client
import json
import re
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .conftest import SquallServer, error_of
from .test_cli import DOCS, code_blocks
from .test_deploy import deploy, outputs
from .test_gateway import _Issuer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APPS = Path(__file__).resolve().parents[1] / "templates" / "http"


def app(name: str, tmp_path: Path) -> Path:
    """A copy of one of the test apps, in a folder named after it (the stack's name)."""
    target = tmp_path / name
    shutil.copytree(APPS / name, target)
    return target / "template.yaml"


def call(server: SquallServer, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One request to the gateway port: (status, JSON body or text)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.gateway_port, timeout=60)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    try:
        return response.status, json.loads(text)
    except json.JSONDecodeError:
        return response.status, text


def invocations(server: SquallServer, function: str) -> float:
    """The function's ``squall_invocations_total`` on the server's Prometheus page."""
    with urllib.request.urlopen(f"{server.url}/_squall/metrics", timeout=30) as response:
        text = response.read().decode()
    pattern = re.compile(r"^squall_invocations_total\{([^}]*)\} (\S+)$", re.MULTILINE)
    return sum(float(value) for labels, value in pattern.findall(text) if f'function_name="{function}"' in labels)


def wait_for_invocations(server: SquallServer, function: str, expected: float) -> float:
    """The count once it reaches ``expected`` (or whatever it is when a generous deadline passes)."""
    deadline = time.monotonic() + 30
    count = invocations(server, function)
    while count < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        count = invocations(server, function)
    return count


@pytest.fixture
def token_issuer(request: pytest.FixtureRequest) -> _Issuer:
    """A local OpenID issuer (discovery and JWKS) that signs tokens, as test_gateway.py uses."""
    made = _Issuer()
    request.addfinalizer(made.server.server_close)
    request.addfinalizer(made.server.shutdown)  # finalizers run last-in first: shut down, then close
    return made


def test_implicit_http_api_from_function_events(squall: SquallServer, tmp_path: Path) -> None:
    template = app("implicit", tmp_path)
    first = deploy(squall, template)
    assert first.returncode == 0, first.stderr
    assert "creating ServerlessHttpApi (AWS::ApiGatewayV2::Api)" in first.stderr
    out = outputs(first)
    api_id = out["ApiId"]
    assert out["Endpoint"] == f"http://{api_id}.execute-api.localhost:{squall.gateway_port}"

    status, event = call(squall, "GET", f"/{api_id}/items/42?x=1")
    assert status == 200, event
    assert event == {"version": "2.0", "routeKey": "GET /items/{id}", "rawPath": "/items/42",
                     "pathParameters": {"id": "42"}, "method": "GET"}  # fmt: skip
    host = {"Host": f"{api_id}.execute-api.localhost:{squall.gateway_port}"}
    status, event = call(squall, "DELETE", "/files/a/b.txt", host)
    assert status == 200, event
    assert (event["routeKey"], event["pathParameters"]) == ("ANY /files/{proxy+}", {"proxy": "a/b.txt"})
    assert call(squall, "GET", f"/{api_id}/elsewhere") == (404, {"message": "Not Found"})

    # The API was imported from SAM's OpenAPI body: its routes are real API Gateway v2 routes.
    apigw = squall.client("apigatewayv2")
    routes = sorted(route["RouteKey"] for route in apigw.get_routes(ApiId=api_id)["Items"])
    assert routes == ["ANY /files/{proxy+}", "GET /items/{id}"]
    assert apigw.get_api(ApiId=api_id)["Tags"] == {"httpapi:createdBy": "SAM"}

    # A new event on the function is a reimport of the same API.
    text = template.read_text().replace("            Method: GET\n", "            Method: GET\n        Two:\n"
                                        "          Type: HttpApi\n          Properties:\n            Path: /two\n"
                                        "            Method: POST\n", 1)  # fmt: skip
    template.write_text(text)
    second = deploy(squall, template)
    assert second.returncode == 0, second.stderr
    assert "updating ServerlessHttpApi" in second.stderr and outputs(second)["ApiId"] == api_id
    assert call(squall, "POST", f"/{api_id}/two")[1]["routeKey"] == "POST /two"

    gone = deploy(squall, template, "--delete")
    assert gone.returncode == 0, gone.stderr
    assert error_of(apigw.get_api, ApiId=api_id)[0] == "NotFoundException"
    assert call(squall, "GET", f"/{api_id}/items/42")[0] == 404


def test_explicit_http_api_with_jwt_and_lambda_authorizers(
    squall: SquallServer, tmp_path: Path, token_issuer: _Issuer
) -> None:
    template = app("auth", tmp_path)
    issuer = token_issuer
    first = deploy(squall, template, "--parameter", f"Issuer={issuer.url}")
    assert first.returncode == 0, first.stderr
    out = outputs(first)
    api_id, hello = out["ApiId"], out["HelloName"]
    base = f"/{api_id}/v1"
    unauthorized = (401, {"message": "Unauthorized"})

    before = invocations(squall, hello)
    # The JWT authorizer (the API's default): no token, a token for another audience, a forged one.
    assert call(squall, "GET", f"{base}/me") == unauthorized
    assert call(squall, "GET", f"{base}/me", {"Authorization": issuer.token(aud="other")}) == unauthorized
    assert call(squall, "GET", f"{base}/me", {"Authorization": issuer.token()[:-4] + "AAAA"}) == unauthorized
    # The Lambda authorizer (simple responses): no identity is 401, a wrong one 403.
    assert call(squall, "GET", f"{base}/door") == unauthorized
    assert call(squall, "GET", f"{base}/door", {"X-Pass": "wrong"}) == (403, {"message": "Forbidden"})

    status, body = call(squall, "GET", f"{base}/me", {"Authorization": f"Bearer {issuer.token(sub='ada')}"})
    assert status == 200, body
    assert body["route"] == "GET /me" and body["authorizer"]["jwt"]["claims"]["sub"] == "ada"
    # Only the one request that passed reached the function.
    assert wait_for_invocations(squall, hello, before + 1) == before + 1

    status, body = call(squall, "GET", f"{base}/door", {"X-Pass": "open-sesame"})
    assert (status, body["authorizer"]) == (200, {"lambda": {"by": "gate"}})
    assert call(squall, "GET", f"{base}/open")[0] == 200  # Authorizer: NONE
    assert call(squall, "GET", f"/{api_id}/me")[0] == 404  # the stage is v1; there is no $default

    # The API's CORS configuration: the gateway answers the preflight.
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    assert call(squall, "OPTIONS", f"{base}/me", preflight)[0] == 204

    authorizers = squall.client("apigatewayv2").get_authorizers(ApiId=api_id)["Items"]
    assert sorted((a["Name"], a["AuthorizerType"]) for a in authorizers) == [("Gate", "REQUEST"), ("Login", "JWT")]
    assert deploy(squall, template, "--delete").returncode == 0


def test_plain_cloudformation_http_api(squall: SquallServer, tmp_path: Path) -> None:
    template = app("plain", tmp_path)
    first = deploy(squall, template)
    assert first.returncode == 0, first.stderr
    out = outputs(first)
    api_id, route_id = out["ApiId"], out["RouteId"]
    live = f"/{api_id}/live"
    assert call(squall, "GET", f"{live}/hello", {"x-pass": "yes"}) == (200, "GET /hello /live/hello")
    assert call(squall, "GET", f"{live}/hello") == (401, {"message": "Unauthorized"})
    assert call(squall, "GET", f"{live}/hello", {"x-pass": "no"}) == (403, {"message": "Forbidden"})
    apigw = squall.client("apigatewayv2")
    stage = apigw.get_stage(ApiId=api_id, StageName="live")
    assert stage["StageVariables"] == {"colour": "blue"} and "DeploymentId" not in stage
    assert stage["Tags"] == {"team": "web"}
    assert apigw.get_api(ApiId=api_id)["Description"] == "made by hand"
    # Quick create: the API, its integration, one route and an auto-deployed $default stage in one resource.
    quick = {"Host": outputs(first)["QuickEndpoint"].removeprefix("http://")}
    assert call(squall, "GET", "/quick", quick) == (200, "GET /quick /quick")
    quick_id = quick["Host"].split(".")[0]
    assert apigw.get_api(ApiId=quick_id)["Tags"] == {"team": "web"}

    # A changed route, integration, authorizer and stage are updated in place: same ids, new settings.
    integration_id = apigw.get_integrations(ApiId=api_id)["Items"][0]["IntegrationId"]
    changes = ["RoutePath=/hi", "Colour=green", "TimeoutMs=5000", "CacheSeconds=60", "Team=data"]
    second = deploy(squall, template, *[arg for change in changes for arg in ("--parameter", change)])
    assert second.returncode == 0, second.stderr
    for logical in ("Route", "Integration", "Authorizer", "Stage", "Quick"):
        assert f"updating {logical} " in second.stderr
    assert "creating" not in second.stderr and "deleting" not in second.stderr
    assert outputs(second)["RouteId"] == route_id
    assert outputs(second)["QuickEndpoint"] == outputs(first)["QuickEndpoint"]
    assert apigw.get_api(ApiId=quick_id)["Tags"] == {"team": "data"}  # TagResource: the same API
    assert apigw.get_stage(ApiId=api_id, StageName="live")["Tags"] == {"team": "data"}
    assert apigw.get_integration(ApiId=api_id, IntegrationId=integration_id)["TimeoutInMillis"] == 5000
    assert apigw.get_stage(ApiId=api_id, StageName="live")["StageVariables"] == {"colour": "green"}
    [authorizer] = apigw.get_authorizers(ApiId=api_id)["Items"]
    assert authorizer["AuthorizerResultTtlInSeconds"] == 60 and authorizer["EnableSimpleResponses"] is True
    assert call(squall, "GET", f"{live}/hi", {"x-pass": "yes"}) == (200, "GET /hi /live/hi")
    assert call(squall, "GET", f"{live}/hello", {"x-pass": "yes"}) == (404, {"message": "Not Found"})

    gone = deploy(squall, template, "--delete")
    assert gone.returncode == 0, gone.stderr
    assert error_of(apigw.get_api, ApiId=api_id)[0] == "NotFoundException"
    assert error_of(apigw.get_api, ApiId=quick_id)[0] == "NotFoundException"
    assert call(squall, "GET", f"{live}/hi", {"x-pass": "yes"}) == (404, {"message": "Not Found"})


UNSUPPORTED = {
    "BodyS3Location": (
        "  Api:\n    Type: AWS::ApiGatewayV2::Api\n    Properties: {BodyS3Location: {Bucket: b, Key: k}}\n",
        "Resource Api (AWS::ApiGatewayV2::Api): Squall does not support the property BodyS3Location",
    ),
    "WebSocket": (
        "  Api:\n    Type: AWS::ApiGatewayV2::Api\n"
        "    Properties: {Name: ws, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}\n",
        "Resource Api (AWS::ApiGatewayV2::Api): Squall does not support the property RouteSelectionExpression",
    ),
    "access logs": (
        "  Api:\n    Type: AWS::ApiGatewayV2::Api\n    Properties: {Name: a, ProtocolType: HTTP}\n"
        "  Stage:\n    Type: AWS::ApiGatewayV2::Stage\n"
        "    Properties: {ApiId: !Ref Api, StageName: s, AccessLogSettings: {DestinationArn: x, Format: y}}\n",
        "Resource Stage (AWS::ApiGatewayV2::Stage): Squall does not support the property AccessLogSettings",
    ),
    "http proxy": (
        "  Api:\n    Type: AWS::ApiGatewayV2::Api\n    Properties:\n      Body:\n"
        "        openapi: 3.0.1\n        info: {title: t}\n        paths:\n          /x:\n            get:\n"
        "              x-amazon-apigateway-integration:\n"
        "                {type: http_proxy, uri: 'https://example.com', payloadFormatVersion: '1.0'}\n",
        "Resource Api (AWS::ApiGatewayV2::Api): property Body: Squall does not support integration type http_proxy",
    ),
    "IAM routes": (
        "  Api:\n    Type: AWS::ApiGatewayV2::Api\n    Properties: {Name: a, ProtocolType: HTTP}\n"
        "  Route:\n    Type: AWS::ApiGatewayV2::Route\n"
        "    Properties: {ApiId: !Ref Api, RouteKey: GET /, AuthorizationType: AWS_IAM}\n",
        "Resource Route (AWS::ApiGatewayV2::Route): Squall does not support the property AuthorizationType",
    ),
    "SAM throttling": (
        "  Api:\n    Type: AWS::Serverless::HttpApi\n"
        "    Properties: {DefaultRouteSettings: {ThrottlingBurstLimit: 5}}\n",
        "Resource ApiApiGatewayDefaultStage (AWS::ApiGatewayV2::Stage): Squall does not support the property "
        "DefaultRouteSettings",
    ),
    "bad route key": (
        "  Api:\n    Type: AWS::ApiGatewayV2::Api\n    Properties: {Name: a, ProtocolType: HTTP}\n"
        "  Route:\n    Type: AWS::ApiGatewayV2::Route\n    Properties: {ApiId: !Ref Api, RouteKey: FETCH /x}\n",
        "Resource Route (AWS::ApiGatewayV2::Route): Invalid route key: FETCH /x",
    ),
    "request validators": (
        "  Api:\n    Type: AWS::ApiGatewayV2::Api\n    Properties:\n      Body:\n"
        "        openapi: 3.0.1\n        info: {title: t}\n        paths: {}\n"
        "        x-amazon-apigateway-request-validators: {all: {validateRequestBody: true}}\n",
        "property Body: Squall does not support x-amazon-apigateway-request-validators (at the document)",
    ),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_what_squall_does_not_honour_is_named(squall: SquallServer, tmp_path: Path, case: str) -> None:
    resources, message = UNSUPPORTED[case]
    template = tmp_path / "refused" / "template.yaml"
    template.parent.mkdir()
    template.write_text("Transform: AWS::Serverless-2016-10-31\nResources:\n" + resources)
    result = deploy(squall, template)
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    deploy(squall, template, "--delete")


def test_import_api_through_boto3(squall: SquallServer, lam: Any) -> None:
    """ImportApi and ReimportApi are the API Gateway v2 operations the deploy uses; boto3 reaches them."""
    apigw = squall.client("apigatewayv2")
    definition = {
        "openapi": "3.0.1",
        "info": {"title": "imported", "version": "7"},
        "servers": [
            {
                "url": "https://example.com/base",
                "x-amazon-apigateway-endpoint-configuration": {"disableExecuteApiEndpoint": True},
            }
        ],
        "paths": {
            "$default": {
                "x-amazon-apigateway-any-method": {
                    "isDefaultRoute": True,
                    "x-amazon-apigateway-integration": {"$ref": "#/components/x-amazon-apigateway-integrations/fn"},
                }
            }
        },
        "components": {
            "x-amazon-apigateway-integrations": {
                "fn": {
                    "type": "aws_proxy",
                    "uri": "arn:aws:lambda:us-east-1:000000000000:function:nothing",
                    "payloadFormatVersion": "2.0",
                    "timeoutInMillis": 5000,
                }
            }
        },
    }
    api = apigw.import_api(Body=json.dumps(definition))
    assert (api["Name"], api["Version"], api["ProtocolType"]) == ("imported", "7", "HTTP")
    assert api["DisableExecuteApiEndpoint"] is True
    routes = apigw.get_routes(ApiId=api["ApiId"])["Items"]
    assert [route["RouteKey"] for route in routes] == ["$default"]
    integration = apigw.get_integrations(ApiId=api["ApiId"])["Items"][0]
    assert (integration["IntegrationType"], integration["TimeoutInMillis"]) == ("AWS_PROXY", 5000)
    assert routes[0]["Target"] == f"integrations/{integration['IntegrationId']}"

    operation = definition["paths"]["$default"]["x-amazon-apigateway-any-method"]
    definition["paths"] = {
        "/a": {"get": {"x-amazon-apigateway-integration": operation["x-amazon-apigateway-integration"]}}
    }
    yaml_text = json.dumps(definition)  # JSON is YAML: ReimportApi reads either
    again = apigw.reimport_api(ApiId=api["ApiId"], Body=yaml_text)
    assert again["ApiId"] == api["ApiId"] and again["DisableExecuteApiEndpoint"] is True
    assert [route["RouteKey"] for route in apigw.get_routes(ApiId=api["ApiId"])["Items"]] == ["GET /a"]
    assert len(apigw.get_integrations(ApiId=api["ApiId"])["Items"]) == 1

    code, message, status, _ = error_of(apigw.import_api, Body=json.dumps({"openapi": "3.0.1", "paths": {}}))
    assert (code, status) == ("BadRequestException", 400) and "info.title" in message
    bad_scheme = {**definition, "security": [{"missing": []}]}
    code, message, _, _ = error_of(apigw.reimport_api, ApiId=api["ApiId"], Body=json.dumps(bad_scheme))
    assert code == "BadRequestException" and "missing" in message
    assert [route["RouteKey"] for route in apigw.get_routes(ApiId=api["ApiId"])["Items"]] == ["GET /a"]
    # A scheme without an authorizer is only documentation until a route uses it (IAM's awsSigv4 here).
    sigv4 = {"type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authtype": "awsSigv4"}
    documented = {**definition, "components": {**definition["components"], "securitySchemes": {"sigv4": sigv4}}}
    assert apigw.reimport_api(ApiId=api["ApiId"], Body=json.dumps(documented))["ApiId"] == api["ApiId"]
    code, message, _, _ = error_of(
        apigw.reimport_api, ApiId=api["ApiId"], Body=json.dumps({**documented, "security": [{"sigv4": []}]})
    )
    assert code == "BadRequestException" and "the security scheme sigv4" in message
    code, message, _, _ = error_of(apigw.import_api, Body=yaml_text, Basepath="prepend")
    assert code == "BadRequestException" and "basepath" in message
    apigw.delete_api(ApiId=api["ApiId"])


def test_docs_deploy_http_examples_run(squall: SquallServer, tmp_path: Path) -> None:
    """docs/deploy-http.md, followed step by step: the template and code, the deploy, the curl calls."""
    blocks = code_blocks((DOCS / "deploy-http.md").read_text())
    template = next(code for language, code in blocks if language == "yaml")
    source = next(code for language, code in blocks if language == "python")
    [deploy_command, curls] = [code.strip() for language, code in blocks if not language]
    [expected] = [code for language, code in blocks if language == "text"]
    folder = tmp_path / "greeter"
    (folder / "src").mkdir(parents=True)
    (folder / "template.yaml").write_text(template)
    (folder / "src" / "app.py").write_text(source)
    assert deploy_command == ".venv/bin/squall deploy template.yaml"
    first = deploy(squall, folder / "template.yaml")
    assert first.returncode == 0, first.stderr
    out = outputs(first)
    assert out["Endpoint"] == f"http://{out['ApiId']}.execute-api.localhost:{squall.gateway_port}"

    printed = []
    for line in curls.splitlines():
        command = line.replace("<apiId>", out["ApiId"]).replace("8991", str(squall.gateway_port))
        result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        printed.append(result.stdout)
    assert "".join(printed).splitlines() == expected.splitlines()
    gone = deploy(squall, folder / "template.yaml", "--delete")
    assert gone.returncode == 0 and "resource(s) deleted" in gone.stdout


def test_update_operations_through_boto3(squall: SquallServer) -> None:
    """UpdateIntegration, UpdateStage and UpdateAuthorizer, which redeploys use, check what they change."""
    apigw = squall.client("apigatewayv2")
    api_id = apigw.create_api(Name="updates", ProtocolType="HTTP")["ApiId"]
    target = "arn:aws:lambda:us-east-1:000000000000:function:nothing"
    integration = apigw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=target, PayloadFormatVersion="2.0"
    )["IntegrationId"]
    changed = apigw.update_integration(ApiId=api_id, IntegrationId=integration, PayloadFormatVersion="1.0")
    assert (changed["PayloadFormatVersion"], changed["IntegrationUri"]) == ("1.0", target)
    code, _, status, _ = error_of(
        apigw.update_integration, ApiId=api_id, IntegrationId=integration, TimeoutInMillis=40_000
    )
    assert (code, status) == ("BadRequestException", 400)

    apigw.create_stage(ApiId=api_id, StageName="prod", StageVariables={"a": "1"})
    stage = apigw.update_stage(ApiId=api_id, StageName="prod", StageVariables={"b": "2"}, Description="d")
    assert (stage["StageVariables"], stage["Description"]) == ({"b": "2"}, "d")
    assert error_of(apigw.update_stage, ApiId=api_id, StageName="nope", Description="x")[0] == "NotFoundException"

    authorizer = apigw.create_authorizer(
        ApiId=api_id,
        Name="jwt",
        AuthorizerType="JWT",
        IdentitySource=["$request.header.Authorization"],
        JwtConfiguration={"Issuer": "https://issuer.example", "Audience": ["a"]},
    )["AuthorizerId"]
    updated = apigw.update_authorizer(
        ApiId=api_id, AuthorizerId=authorizer, JwtConfiguration={"Issuer": "https://other.example", "Audience": ["b"]}
    )
    assert updated["JwtConfiguration"] == {"Issuer": "https://other.example", "Audience": ["b"]}
    code, message, _, _ = error_of(
        apigw.update_authorizer, ApiId=api_id, AuthorizerId=authorizer, JwtConfiguration={"Audience": ["b"]}
    )
    assert code == "BadRequestException" and "Issuer" in message
    apigw.delete_api(ApiId=api_id)


def test_tags_through_boto3(squall: SquallServer) -> None:
    """TagResource, UntagResource and GetTags on an API and on a stage, by ARN."""
    apigw = squall.client("apigatewayv2")
    api_id = apigw.create_api(Name="tagged", ProtocolType="HTTP", Tags={"a": "1"})["ApiId"]
    apigw.create_stage(ApiId=api_id, StageName="prod")
    api_arn = f"arn:aws:apigateway:us-east-1::/apis/{api_id}"
    stage_arn = f"{api_arn}/stages/prod"
    apigw.tag_resource(ResourceArn=api_arn, Tags={"b": "2"})
    apigw.tag_resource(ResourceArn=stage_arn, Tags={"c": "3"})
    assert apigw.get_tags(ResourceArn=api_arn)["Tags"] == {"a": "1", "b": "2"}
    apigw.untag_resource(ResourceArn=api_arn, TagKeys=["a", "missing"])
    assert apigw.get_api(ApiId=api_id)["Tags"] == {"b": "2"}
    assert apigw.get_stage(ApiId=api_id, StageName="prod")["Tags"] == {"c": "3"}
    missing = f"arn:aws:apigateway:us-east-1::/apis/{api_id}/stages/nope"
    assert error_of(apigw.get_tags, ResourceArn=missing)[:3:2] == ("NotFoundException", 404)
    assert error_of(apigw.get_tags, ResourceArn="arn:aws:sqs:us-east-1:1:q")[0] == "BadRequestException"
    apigw.delete_api(ApiId=api_id)
