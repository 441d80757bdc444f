"""The HTTP gateway on ``--gateway-port``: serves the HTTP APIs of the API Gateway v2 API.

A request names its API and stage in one of two ways (see docs/gateway.md):

* by host: ``http://<apiId>.execute-api.localhost:8991/<stage>/<path>``, or ``/<path>`` for the
  ``$default`` stage;
* by path: ``http://127.0.0.1:8991/<apiId>/<stage>/<path>``, or ``/<apiId>/<path>`` for ``$default``.

Then, as API Gateway does: CORS preflight, route choice, the route's authorizer, the Lambda proxy
event (payload 1.0 or 2.0), a synchronous invocation bounded by the integration's timeout, and the
function's answer mapped back to HTTP. Gateway errors are ``{"message": ...}`` JSON. Stages serve
the API's current routes at once (Squall has no separate deployments).

Requests to a function URL (``function_urls``) or a bucket's website endpoint (``websites``) are
recognised first, by host or by their ``/_lambda-url/`` and ``/_s3-website/`` path prefixes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from starlette.types import Receive, Scope, Send

from squall import ids
from squall.errors import RequestTooLarge, TooManyRequests
from squall.gateway import cors, function_urls, websites
from squall.gateway.authorizers import Denied, Invoke, JwksCache, LambdaAuthorizers, authorize_jwt
from squall.gateway.events import BadResponse, HttpResponse, json_response, map_response, v1_event, v2_event
from squall.gateway.request import GatewayRequest
from squall.gateway.routes import choose
from squall.gateway.store import GatewayStore
from squall.gateway.url_streaming import StreamedHttpResponse

log = logging.getLogger(__name__)

#: API Gateway's request payload limit.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
DEFAULT_TIMEOUT_MS = 30_000
#: Headers of the function's answer the gateway sets itself, from the body it sends.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
_HOST_API = re.compile(r"^([a-z0-9]+)\.execute-api\.", re.IGNORECASE)


class GatewayApp:
    """The gateway's ASGI app."""

    def __init__(
        self,
        store: GatewayStore,
        invoke: Invoke,
        account_id: str,
        region: str,
        urls: function_urls.FunctionUrlGateway | None = None,
        sites: websites.WebsiteServer | None = None,
    ) -> None:
        self._store = store
        self._urls = urls
        self._sites = sites
        self._invoke = invoke
        self._account_id = account_id
        self._region = region
        self._keys = JwksCache()
        self._lambda_authorizers = LambdaAuthorizers(invoke)
        self._pending: set[asyncio.Task[tuple[str | None, bytes]]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request_id = ids.request_id()
        try:
            response = await self._handle(scope, receive, request_id)
        except Exception:
            log.exception("gateway: request %s failed", request_id)
            response = json_response(500, "Internal Server Error")
        headers = [
            (k.lower().encode("latin-1", "replace"), v.encode("latin-1", "replace"))
            for k, v in response.headers
            if k.lower() not in _FRAMING_HEADERS
        ]
        headers.append((b"apigw-requestid", request_id.encode()))
        if isinstance(response, StreamedHttpResponse):
            await _send_streamed(send, response, headers, scope["method"] == "HEAD")
            return
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else response.body})

    async def _handle(self, scope: Scope, receive: Receive, request_id: str) -> HttpResponse:
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        host = next((value for key, value in headers if key == "host"), "")
        url = function_urls.locate(host, scope["path"]) if self._urls is not None else None
        if url is not None and self._urls is not None:
            client = scope.get("client") or ("127.0.0.1", 0)
            raw_path = scope.get("raw_path") or scope["path"].encode()
            return await self._urls.serve(
                *url,
                scope["method"],
                raw_path,
                scope.get("query_string", b""),
                scope["headers"],
                await _read_body(receive),
                client[0],
                request_id,
            )
        site = websites.locate(host, scope["path"]) if self._sites is not None else None
        if site is not None and self._sites is not None:
            return await self._sites.serve(*site, scope["method"], dict(headers), request_id)
        located = self._locate(host, scope["path"])
        if located is None:
            return json_response(404, "Not Found")
        api, stage, raw_path, path = located
        if api.get("disableExecuteApiEndpoint"):
            # unverified: the answer of a disabled default endpoint; the gateway has no other endpoint.
            return json_response(403, "Forbidden")
        body = await _read_body(receive)
        if body is None:
            # unverified: API Gateway's answer to a payload over 10 MB
            return json_response(413, "Request Entity Too Large")
        client = scope.get("client") or ("127.0.0.1", 0)
        request = GatewayRequest(
            api_id=api["apiId"],
            account_id=self._account_id,
            region=self._region,
            stage=stage["stageName"],
            method=scope["method"],
            path=path,
            raw_path=raw_path,
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            source_ip=client[0],
            domain_name=host.split(":", 1)[0] or "localhost",
            request_id=request_id,
        )
        config = api.get("corsConfiguration")
        if config is not None and cors.is_preflight(request):
            return cors.preflight(config, request)
        response = await self._route(api["apiId"], stage, request)
        if config is not None:
            cors.decorate(config, request, response)
        return response

    def _locate(self, host: str, path: str) -> tuple[dict[str, Any], dict[str, Any], str, str] | None:
        """(API, stage, path after the API id, path inside the stage) of a request, or None."""
        by_host = _HOST_API.match(host)
        if by_host:
            api_id, rest = by_host.group(1).lower(), path
        else:
            api_id, _, tail = path.lstrip("/").partition("/")
            rest = "/" + tail
        api = self._store.view("api", "").get(api_id)
        if api is None:
            return None
        stages = self._store.view("stage", api_id)
        first, _, tail = rest.lstrip("/").partition("/")
        if first and first != "$default" and first in stages:
            return api, stages[first], rest, "/" + tail
        if "$default" in stages:
            return api, stages["$default"], rest, rest
        return None

    async def _route(self, api_id: str, stage: dict[str, Any], request: GatewayRequest) -> HttpResponse:
        routes = self._store.view("route", api_id)
        match = choose(((r["routeId"], r["routeKey"]) for r in routes.values()), request.method, request.path)
        if match is None:
            return json_response(404, "Not Found")
        route = routes.get(match.route_id)
        target = str((route or {}).get("target", ""))
        integration = self._store.view("integration", api_id).get(target.partition("/")[2]) if target else None
        if route is None or integration is None:
            return json_response(404, "Not Found")  # unverified: a route without an integration
        stage_variables = dict(stage.get("stageVariables") or {})
        try:
            authorizer = await self._authorize(api_id, route, request, match.path_parameters, stage_variables)
        except Denied as denied:
            refused = json_response(denied.status, denied.message)
            refused.headers += denied.headers
            return refused
        version = integration.get("payloadFormatVersion", "2.0")
        if version == "1.0":
            authorizer = _v1_authorizer(authorizer)
            event = v1_event(
                request, route["routeId"], match.route_key, match.path_parameters, stage_variables, authorizer
            )
        else:
            if authorizer is not None and "lambda" in authorizer:
                authorizer = {"lambda": authorizer["lambda"]}  # the principal id is payload 1.0's
            event = v2_event(request, match.route_key, match.path_parameters, stage_variables, authorizer)
        return await self._call(integration, event, version)

    async def _authorize(
        self,
        api_id: str,
        route: dict[str, Any],
        request: GatewayRequest,
        path_parameters: dict[str, str],
        stage_variables: dict[str, str],
    ) -> dict[str, Any] | None:
        """The ``requestContext.authorizer`` of the event (None without an authorizer); Denied to refuse."""
        kind = route.get("authorizationType", "NONE")
        if kind == "NONE":
            return None
        authorizer = self._store.view("authorizer", api_id).get(str(route.get("authorizerId")))
        if authorizer is None:
            raise Denied(500, "Internal Server Error")
        if kind == "JWT":
            scopes = list(route.get("authorizationScopes") or [])
            return {"jwt": await authorize_jwt(authorizer, request, stage_variables, scopes, self._keys)}
        context, principal = await self._lambda_authorizers.authorize(
            authorizer, request, (route["routeId"], route["routeKey"]), path_parameters, stage_variables
        )
        result: dict[str, Any] = {"lambda": context}
        if principal is not None:
            result["principalId"] = principal
        return result

    async def _call(self, integration: dict[str, Any], event: dict[str, Any], version: str) -> HttpResponse:
        timeout_s = int(integration.get("timeoutInMillis", DEFAULT_TIMEOUT_MS)) / 1000
        task = asyncio.ensure_future(self._invoke(str(integration["integrationUri"]), json.dumps(event).encode()))
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            # The function keeps running to its own timeout, as on AWS; only the caller stops waiting.
            self._pending.add(task)
            task.add_done_callback(_forget(self._pending))
            # 503 on timeout: serverless/serverless#11222; the body wording is unverified.
            return json_response(503, "Service Unavailable")
        try:
            error, payload = task.result()
        except RequestTooLarge:
            return json_response(413, "Request Entity Too Large")  # unverified
        except TooManyRequests:
            return json_response(429, "Too Many Requests")  # unverified: a throttled function
        except Exception as exc:
            log.info("gateway: integration %s failed: %s", integration.get("integrationUri"), exc)
            return json_response(500, "Internal Server Error")
        if error is not None:
            return json_response(502, "Internal Server Error")
        try:
            return map_response(payload, version)
        except BadResponse as exc:
            log.info("gateway: unusable answer from %s: %s", integration.get("integrationUri"), exc)
            return json_response(502, "Internal Server Error")


def _v1_authorizer(authorizer: dict[str, Any] | None) -> dict[str, Any] | None:
    """Payload 1.0 carries JWT claims and scopes, or a Lambda authorizer's context and principal id,
    at the top of ``requestContext.authorizer``, as REST APIs do."""
    # unverified: HTTP APIs' 1.0 layout of a Lambda authorizer's context follows the REST API's.
    if authorizer is None:
        return None
    if "jwt" in authorizer:
        return dict(authorizer["jwt"])
    flattened = dict(authorizer.get("lambda") or {})
    if "principalId" in authorizer:
        flattened["principalId"] = authorizer["principalId"]
    return flattened


def _forget(pending: set[asyncio.Task[tuple[str | None, bytes]]]) -> Any:
    def done(task: asyncio.Task[tuple[str | None, bytes]]) -> None:
        pending.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as never retrieved

    return done


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None when it exceeds MAX_PAYLOAD_BYTES."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_PAYLOAD_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_streamed(
    send: Send, response: StreamedHttpResponse, headers: list[tuple[bytes, bytes]], head: bool
) -> None:
    """A streamed function URL answer: no length, so the server sends it chunked, each chunk at once."""
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    if response.body and not head:
        await send({"type": "http.response.body", "body": response.body, "more_body": True})
    if response.chunks is not None:
        async for chunk in response.chunks:
            if not head:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
