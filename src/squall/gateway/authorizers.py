"""Route authorizers: JWT (issuer, audience, the issuer's JWKS) and Lambda REQUEST authorizers.

A request an authorizer turns away never reaches the route's function: a missing or invalid token
is 401 ``Unauthorized``; a Lambda authorizer's denial is 403 ``Forbidden``; a failing authorizer is
500. Lambda authorizer results are cached per identity-source values for
``AuthorizerResultTtlInSeconds``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from squall.gateway.events import merged_headers, v1_event, v2_request_context
from squall.gateway.request import GatewayRequest

#: How long an issuer's signing keys are trusted before they are fetched again.
JWKS_TTL_S = 3600.0
#: HTTP APIs' JWT authorizers accept RSA signatures only.
_JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
#: An unknown ``kid`` refetches the issuer's keys (they may have rotated), at most this often.
JWKS_REFETCH_S = 30.0

#: Invokes a function by its ARN with a JSON payload: (function error or None, answer payload).
Invoke = Callable[[str, bytes], Awaitable[tuple[str | None, bytes]]]


class Denied(Exception):
    """The authorizer turned the request away; ``status`` and ``message`` are the gateway's answer."""

    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


def _invalid_token(description: str) -> Denied:
    """A JWT authorizer's 401, with the ``www-authenticate`` header that says why."""
    value = f'Bearer scope="" error="invalid_token" error_description="{description}"'
    return Denied(*UNAUTHORIZED, [("www-authenticate", value)])


UNAUTHORIZED = (401, "Unauthorized")
FORBIDDEN = (403, "Forbidden")
FAILED = (500, "Internal Server Error")


def identity_values(sources: list[str], request: GatewayRequest, stage_variables: dict[str, str]) -> list[str] | None:
    """The values of the identity sources, or None when one is missing (API Gateway's 401)."""
    values: list[str] = []
    for source in sources:
        value: str | None = None
        if source.startswith("$request.header."):
            value = request.header(source.removeprefix("$request.header."))
        elif source.startswith("$request.querystring."):
            value = request.query_value(source.removeprefix("$request.querystring."))
        elif source.startswith("$stageVariables."):
            value = stage_variables.get(source.removeprefix("$stageVariables."))
        elif source.startswith("$context."):
            value = {"stage": request.stage, "apiId": request.api_id, "requestId": request.request_id}.get(
                source.removeprefix("$context.")
            )
        if not value:
            return None
        values.append(value)
    return values


class JwksCache:
    """Signing keys by issuer, discovered from ``<issuer>/.well-known/openid-configuration``."""

    def __init__(self) -> None:
        # issuer -> (fetched at, key set), on the monotonic clock
        self._keys: dict[str, tuple[float, jwt.PyJWKSet]] = {}
        self._lock = asyncio.Lock()

    async def key_for(self, issuer: str, kid: str) -> Any:
        """The public key ``kid`` of the issuer, fetching its JWKS when unknown, stale, or missing
        that key (rotation) and not fetched in the last JWKS_REFETCH_S."""
        async with self._lock:
            cached = self._keys.get(issuer)
            now = time.monotonic()
            stale = cached is None or now - cached[0] > JWKS_TTL_S
            missing = cached is not None and _find(cached[1], kid) is None and now - cached[0] > JWKS_REFETCH_S
            if stale or missing:
                self._keys[issuer] = (now, await _fetch_jwks(issuer))
            key = _find(self._keys[issuer][1], kid)
        if key is None:
            raise jwt.InvalidTokenError("no signing key matches the token")
        return key.key


def _find(keys: jwt.PyJWKSet, kid: str) -> jwt.PyJWK | None:
    return next((key for key in keys.keys if key.key_id == kid), None)


async def _fetch_jwks(issuer: str) -> jwt.PyJWKSet:
    async with httpx.AsyncClient(timeout=5.0) as client:
        discovery = await _get(client, issuer.rstrip("/") + "/.well-known/openid-configuration")
        jwks = await _get(client, str(discovery.json()["jwks_uri"]))
        return jwt.PyJWKSet.from_dict(jwks.json())


async def _get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """GET ``url``; a ``*.localhost`` host is reached on the loopback address with its name as the
    ``Host`` header (RFC 6761, as curl and browsers do), so an issuer can live at one of Squall's own
    URLs (a website endpoint, an API endpoint) on machines whose resolver does not know those names."""
    target = httpx.URL(url)
    headers = {}
    if target.host.endswith(".localhost"):
        headers["host"] = target.netloc.decode("ascii")
        target = target.copy_with(host="127.0.0.1")
    response = await client.get(target, headers=headers)
    response.raise_for_status()
    return response


def _claim_text(value: Any) -> str:
    """Claims reach the function as strings; lists as ``[a b]``."""
    if isinstance(value, list):
        return "[" + " ".join(_claim_text(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


async def authorize_jwt(
    authorizer: dict[str, Any],
    request: GatewayRequest,
    stage_variables: dict[str, str],
    scopes_required: list[str],
    keys: JwksCache,
) -> dict[str, Any]:
    """The ``jwt`` authorizer context (claims and scopes); Denied with 401 (or 403 for scopes)."""
    values = identity_values(authorizer.get("identitySource") or [], request, stage_variables)
    if not values:
        raise Denied(*UNAUTHORIZED)
    token = values[0]
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    config = authorizer["jwtConfiguration"]
    # The error descriptions are unverified, except the audience's (AWS's JWT troubleshooting page).
    try:
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _invalid_token("the token has no kid")
        key = await keys.key_for(config["issuer"], kid)
        claims = jwt.decode(
            token,
            key,
            algorithms=_JWT_ALGORITHMS,
            issuer=config["issuer"],
            options={"verify_aud": False, "require": ["exp", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise _invalid_token("the token has expired") from None
    except jwt.InvalidIssuerError:
        raise _invalid_token("the token does not have a valid issuer") from None
    except (jwt.PyJWTError, httpx.HTTPError, KeyError, ValueError):
        raise _invalid_token("the token is not valid") from None
    if not _audience_ok(claims, list(config.get("audience") or [])):
        raise _invalid_token("the token does not have a valid audience")
    scope_claim = claims.get("scope") or claims.get("scp")
    scopes = scope_claim.split() if isinstance(scope_claim, str) else list(scope_claim or [])
    if scopes_required and not set(scopes_required) & set(scopes):
        raise Denied(*FORBIDDEN)
    return {"claims": {key: _claim_text(value) for key, value in claims.items()}, "scopes": scopes or None}


def _audience_ok(claims: dict[str, Any], audiences: list[str]) -> bool:
    """API Gateway accepts a token whose ``aud`` (or, without one, ``client_id``) names an audience."""
    aud = claims.get("aud", claims.get("client_id"))
    names = aud if isinstance(aud, list) else [aud]
    return any(name in audiences for name in names if name is not None)


@dataclass
class _Cached:
    expires: float
    answer: dict[str, Any]


class LambdaAuthorizers:
    """Lambda REQUEST authorizers, with their result cache.

    The cache keeps the authorizer's answer, not the decision: an IAM policy is evaluated against
    each request's route ARN, so one cached policy can allow one route and deny another.
    """

    def __init__(self, invoke: Invoke) -> None:
        self._invoke = invoke
        self._cache: dict[tuple[str, str, tuple[str, ...]], _Cached] = {}

    async def authorize(
        self,
        authorizer: dict[str, Any],
        request: GatewayRequest,
        route: tuple[str, str],
        path_parameters: dict[str, str],
        stage_variables: dict[str, str],
    ) -> tuple[dict[str, Any], str | None]:
        """The authorizer's context and principal id (IAM-policy responses) for the function's event;
        Denied when the request may not pass."""
        sources = authorizer.get("identitySource") or []
        values = identity_values(sources, request, stage_variables)
        if values is None:
            raise Denied(*UNAUTHORIZED)
        ttl = int(authorizer.get("authorizerResultTtlInSeconds") or 0)
        key = (request.api_id, authorizer["authorizerId"], tuple(values))
        cached = self._cache.get(key)
        now = time.monotonic()
        if ttl > 0 and cached is not None and cached.expires > now:
            answer = cached.answer
        else:
            event = authorizer_event(authorizer, request, route, path_parameters, stage_variables, values)
            answer = await self._ask(authorizer, event)
            if ttl > 0:
                self._cache = {k: v for k, v in self._cache.items() if v.expires > now}
                self._cache[key] = _Cached(now + ttl, answer)
        return _decide(authorizer, request, answer)

    async def _ask(self, authorizer: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        try:
            error, payload = await self._invoke(authorizer["authorizerUri"], json.dumps(event).encode())
            answer = json.loads(payload)
        except Exception:
            raise Denied(*FAILED) from None
        if error is not None or not isinstance(answer, dict):
            raise Denied(*FAILED)
        return answer


def _decide(
    authorizer: dict[str, Any], request: GatewayRequest, answer: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    context = answer.get("context") or {}
    if not isinstance(context, dict):
        raise Denied(*FAILED)
    if authorizer.get("enableSimpleResponses"):
        allowed = answer.get("isAuthorized")
        if not isinstance(allowed, bool):
            raise Denied(*FAILED)
        if not allowed:
            raise Denied(*FORBIDDEN)
        return context, None
    if not _policy_allows(answer.get("policyDocument"), request.route_arn()):
        raise Denied(*FORBIDDEN)
    principal = answer.get("principalId")
    return context, None if principal is None else str(principal)


def authorizer_event(
    authorizer: dict[str, Any],
    request: GatewayRequest,
    route: tuple[str, str],
    path_parameters: dict[str, str],
    stage_variables: dict[str, str],
    values: list[str],
) -> dict[str, Any]:
    """The event a Lambda REQUEST authorizer gets, in its payload format (1.0 or 2.0)."""
    route_id, route_key = route
    if authorizer["authorizerPayloadFormatVersion"] == "1.0":
        event = v1_event(request, route_id, route_key, path_parameters, stage_variables)
        event.update({"type": "REQUEST", "methodArn": request.route_arn(), "identitySource": ",".join(values)})
        return event
    event = {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": request.route_arn(),
        "identitySource": values,
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "headers": merged_headers(request, ("cookie",)),
        "requestContext": v2_request_context(request, route_key, None),
    }
    cookies = request.cookies()
    if cookies:
        event["cookies"] = cookies
    query = {key: request.query_value(key) for key, _ in request.query_pairs()}
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if stage_variables:
        event["stageVariables"] = stage_variables
    return event


def _policy_allows(policy: Any, arn: str) -> bool:
    """An IAM policy allows ``execute-api:Invoke`` on the route ARN when an Allow matches and no Deny does."""
    if not isinstance(policy, dict):
        raise Denied(*FAILED)
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        actions = statement.get("Action") or []
        resources = statement.get("Resource") or []
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if not any(fnmatch.fnmatchcase("execute-api:Invoke", action) for action in actions):
            continue
        if not any(fnmatch.fnmatchcase(arn, resource) for resource in resources):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed
