"""The checked documents of integrations and authorizers, shared by their Create, Update and Import paths."""

from __future__ import annotations

from typing import Any

from squall.gateway.routes import parse_route_key
from squall.gateway.store import Document
from squall.services.apigateway.errors import BadRequest

MIN_TIMEOUT_MS = 50
MAX_TIMEOUT_MS = 30_000
MAX_AUTHORIZER_TTL_S = 3600
_PAYLOAD_VERSIONS = ("1.0", "2.0")


def drop_none(document: Document) -> Document:
    """The document without its None members (API Gateway leaves unset members out)."""
    return {key: value for key, value in document.items() if value is not None}


def integration_document(body: Document, integration_id: str, managed: bool) -> Document:
    """A checked AWS_PROXY integration, as stored and returned."""
    if body.get("integrationType") != "AWS_PROXY":
        # unverified: Squall integrates Lambda functions only (AWS_PROXY)
        raise BadRequest(f"Unsupported integration type: {body.get('integrationType')}; Squall supports AWS_PROXY")
    if not body.get("integrationUri"):
        raise BadRequest("IntegrationUri is required for AWS_PROXY integrations")  # unverified
    version = body.get("payloadFormatVersion")
    if version not in _PAYLOAD_VERSIONS:
        # unverified: HTTP APIs require PayloadFormatVersion 1.0 or 2.0 for Lambda proxy integrations
        raise BadRequest(f"Invalid payload format version {version}; it must be 1.0 or 2.0")
    timeout = body.get("timeoutInMillis", MAX_TIMEOUT_MS)
    if not isinstance(timeout, int) or not MIN_TIMEOUT_MS <= timeout <= MAX_TIMEOUT_MS:
        # unverified: the documented range of HTTP APIs' integration timeout
        raise BadRequest(f"Timeout must be between {MIN_TIMEOUT_MS} ms and {MAX_TIMEOUT_MS} ms")
    return drop_none(
        {
            "apiGatewayManaged": True if managed else None,
            "connectionType": "INTERNET",
            "description": body.get("description"),
            "integrationId": integration_id,
            "integrationMethod": body.get("integrationMethod", "POST"),
            "integrationType": "AWS_PROXY",
            "integrationUri": body["integrationUri"],
            "payloadFormatVersion": version,
            "requestParameters": body.get("requestParameters"),
            "timeoutInMillis": timeout,
        }
    )


def authorizer_document(body: Document, authorizer_id: str) -> Document:
    """A checked JWT or Lambda REQUEST authorizer, as stored and returned."""
    kind = body.get("authorizerType")
    if not body.get("name"):
        raise BadRequest("Name is required")  # unverified: botocore checks this client-side
    authorizer: Document = {
        "authorizerId": authorizer_id,
        "authorizerType": kind,
        "identitySource": body.get("identitySource", []),
        "name": body["name"],
    }
    if kind == "JWT":
        config = body.get("jwtConfiguration") or {}
        if not config.get("issuer") or not config.get("audience"):
            # unverified: AWS's wording for a JWT authorizer without issuer or audience
            raise BadRequest("JwtConfiguration must specify an Issuer and at least one Audience")
        if not authorizer["identitySource"]:
            authorizer["identitySource"] = ["$request.header.Authorization"]
        authorizer["jwtConfiguration"] = {"audience": list(config["audience"]), "issuer": config["issuer"]}
    elif kind == "REQUEST":
        authorizer.update(_lambda_authorizer(body))
    else:
        raise BadRequest(f"Invalid authorizer type: {kind}")  # unverified: AWS's wording
    return authorizer


def _lambda_authorizer(body: Document) -> Document:
    if not body.get("authorizerUri"):
        raise BadRequest("AuthorizerUri is required for REQUEST authorizers")  # unverified
    version = body.get("authorizerPayloadFormatVersion")
    if version not in _PAYLOAD_VERSIONS:
        # unverified: HTTP APIs require AuthorizerPayloadFormatVersion for REQUEST authorizers
        raise BadRequest("AuthorizerPayloadFormatVersion must be 1.0 or 2.0 for REQUEST authorizers")
    simple = bool(body.get("enableSimpleResponses", False))
    if simple and version != "2.0":
        # unverified: simple responses exist only in payload format 2.0
        raise BadRequest("EnableSimpleResponses is only supported for AuthorizerPayloadFormatVersion 2.0")
    ttl = body.get("authorizerResultTtlInSeconds", 0)
    if not isinstance(ttl, int) or not 0 <= ttl <= MAX_AUTHORIZER_TTL_S:
        raise BadRequest(f"AuthorizerResultTtlInSeconds must be between 0 and {MAX_AUTHORIZER_TTL_S}")  # unverified
    if ttl > 0 and not body.get("identitySource"):
        # unverified: caching needs identity sources to key the cache on
        raise BadRequest("IdentitySource is required when authorizer caching is enabled")
    return drop_none(
        {
            # Stored for the API's callers; Squall does not enforce IAM, so no role is assumed to invoke.
            "authorizerCredentialsArn": body.get("authorizerCredentialsArn"),
            "authorizerPayloadFormatVersion": version,
            "authorizerResultTtlInSeconds": ttl,
            "authorizerUri": body["authorizerUri"],
            "enableSimpleResponses": simple,
        }
    )


def check_route_key(route_key: Any) -> None:
    """BadRequest unless the route key is ``$default`` or a valid ``METHOD /path``."""
    try:
        parse_route_key(str(route_key))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None  # unverified: AWS's wording for a malformed route key
