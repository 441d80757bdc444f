"""The API Gateway v2 service over a real gateway.db: validation, quick create, durability."""

from __future__ import annotations

from pathlib import Path

import pytest

from squall.gateway.authorizers import Denied, _policy_allows
from squall.gateway.store import GatewayStore
from squall.services.apigateway.errors import BadRequest, Conflict, NotFound
from squall.services.apigateway.service import ApiGatewayService

FUNCTION = "arn:aws:lambda:us-east-1:000000000000:function:f"


def service(path: Path) -> ApiGatewayService:
    return ApiGatewayService(GatewayStore(path / "gateway.db"), "000000000000", "http://{api_id}.execute-api.localhost")


def test_quick_create_and_reopen(tmp_path: Path) -> None:
    first = service(tmp_path)
    api = first.create_api({"name": "q", "protocolType": "HTTP", "target": FUNCTION, "routeKey": "GET /x"})
    api_id = api["apiId"]
    [integration] = first.list_children("integration", api_id)
    assert integration["payloadFormatVersion"] == "2.0" and integration["apiGatewayManaged"] is True
    [route] = first.list_children("route", api_id)
    assert route["target"] == f"integrations/{integration['integrationId']}"
    [stage] = first.list_children("stage", api_id)
    assert stage["stageName"] == "$default" and stage["autoDeploy"] is True
    first.store.close()

    again = service(tmp_path)
    assert again.get_api(api_id)["name"] == "q"
    assert [r["routeKey"] for r in again.list_children("route", api_id)] == ["GET /x"]
    again.delete_api(api_id)
    again.store.close()
    assert service(tmp_path).get_apis() == []


def test_validation(tmp_path: Path) -> None:
    svc = service(tmp_path)
    with pytest.raises(BadRequest):
        svc.create_api({"name": "w", "protocolType": "WEBSOCKET"})
    api_id = svc.create_api({"name": "v", "protocolType": "HTTP"})["apiId"]
    base = {"integrationType": "AWS_PROXY", "integrationUri": FUNCTION, "payloadFormatVersion": "2.0"}
    for bad in ({"timeoutInMillis": 49}, {"timeoutInMillis": 30001}, {"payloadFormatVersion": "3.0"}):
        with pytest.raises(BadRequest):
            svc.create_integration(api_id, {**base, **bad})
    assert svc.create_integration(api_id, {**base, "timeoutInMillis": 50})["timeoutInMillis"] == 50
    with pytest.raises(BadRequest):
        svc.create_route(api_id, {"routeKey": "GET /a", "target": "integrations/nope"})
    with pytest.raises(BadRequest):
        svc.create_route(api_id, {"routeKey": "GET /a", "authorizationType": "JWT"})
    svc.create_route(api_id, {"routeKey": "GET /a"})
    with pytest.raises(Conflict):
        svc.create_route(api_id, {"routeKey": "GET /a"})
    with pytest.raises(BadRequest):
        svc.create_authorizer(api_id, {"name": "j", "authorizerType": "JWT", "jwtConfiguration": {"issuer": "i"}})
    lambda_authorizer = {"name": "l", "authorizerType": "REQUEST", "authorizerUri": FUNCTION}
    with pytest.raises(BadRequest):
        svc.create_authorizer(
            api_id, {**lambda_authorizer, "authorizerPayloadFormatVersion": "1.0", "enableSimpleResponses": True}
        )
    with pytest.raises(BadRequest):
        svc.create_authorizer(
            api_id, {**lambda_authorizer, "authorizerPayloadFormatVersion": "2.0", "authorizerResultTtlInSeconds": 60}
        )
    with pytest.raises(NotFound, match="Invalid API identifier specified 000000000000:missing"):
        svc.get_api("missing")


def test_iam_policy_evaluation() -> None:
    arn = "arn:aws:execute-api:us-east-1:000000000000:abc/$default/GET/pets"

    def policy(*statements: tuple[str, str]) -> dict[str, object]:
        return {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": e, "Resource": r} for e, r in statements],
        }

    assert _policy_allows(policy(("Allow", arn)), arn)
    assert _policy_allows(policy(("Allow", "arn:aws:execute-api:*:*:abc/*")), arn)
    assert not _policy_allows(policy(("Allow", "arn:aws:execute-api:*:*:other/*")), arn)
    assert not _policy_allows(policy(("Allow", "*"), ("Deny", arn)), arn)
    assert not _policy_allows(policy(), arn)
    with pytest.raises(Denied):
        _policy_allows("not a policy", arn)
