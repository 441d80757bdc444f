"""The ASGI app behind the AWS API port: health, request ids, body buffering, SigV4, routing.

One plain ASGI app serves every AWS-compatible service Squall offers, the way one endpoint per
region serves each AWS service. For each request it:

1. gives it a request id (``scope["squall.request_id"]``, echoed as ``x-amzn-RequestId`` on every
   response, including the sub-app's own);
2. answers ``/_squall/health`` itself and hands other ``/_squall/...`` paths, unsigned, to the
   ``"squall"`` admin service;
3. buffers the whole body (``scope["squall.body"]``; over ``MAX_BODY_BYTES`` is refused with 413);
4. verifies the SigV4 signature (skipped when there is no verifier: ``--no-auth``) and puts the
   caller's key in ``scope["squall.access_key"]``;
5. routes by the service in the credential scope or, for unsigned requests, by ``X-Amz-Target``,
   the Lambda API's dated path prefixes or a query-protocol ``Version``;
6. calls the service's ASGI app with a ``receive`` that replays the buffered body, and turns any
   exception that escapes it into an AWS-shaped error instead of a dropped connection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from squall import ids
from squall.api.errors import REQUEST_ID_HEADER, Protocol, send_error
from squall.api.sigv4 import SigV4Verifier, parse_credential_scope
from squall.errors import (
    RequestTooLarge,
    ResourceNotFound,
    ServiceError,
    SquallError,
    UnknownOperation,
)
from squall.services.buckets.errors import s3_auth_error

logger = logging.getLogger(__name__)

#: Bodies above this are refused before any service sees them. Services check their own, smaller
#: limits (Lambda's 6 MB invoke payload; a 50 MB zip, which arrives base64-encoded as ~70 MB of
#: CreateFunction body); this cap only keeps one request from exhausting memory.
MAX_BODY_BYTES = 80 * 1024 * 1024
HEALTH_PATH = "/_squall/health"
ADMIN_PREFIX = "/_squall/"
ADMIN_SERVICE = "squall"

#: The wire protocol of each service, for errors raised before or around its own app.
SERVICE_PROTOCOLS: dict[str, Protocol] = {
    "lambda": "rest-json",
    "apigateway": "rest-json",
    "execute-api": "rest-json",
    "kinesis": "json",
    "dynamodb": "json",
    "sqs": "json",
    "logs": "json",
    "events": "json",
    "states": "json",
    "ssm": "json",
    "secretsmanager": "json",
    "kms": "json",
    "s3": "rest-xml",
    "sns": "query",
    "sts": "query",
    "iam": "query",
}

#: ``X-Amz-Target`` prefixes (the part before the dot) of unsigned JSON-protocol requests.
TARGET_SERVICES = {
    "Kinesis_20131202": "kinesis",
    "DynamoDB_20120810": "dynamodb",
    # DynamoDB Streams signs as "dynamodb" too, so both reach the same service app.
    "DynamoDBStreams_20120810": "dynamodb",
    "AmazonSQS": "sqs",
    "Logs_20140328": "logs",
    "AWSEvents": "events",
    "AWSStepFunctions": "states",
    "AmazonSSM": "ssm",
    "secretsmanager": "secretsmanager",
    "TrentService": "kms",
}

#: The dated path prefixes of the Lambda REST API (functions, event source mappings, layers,
#: tags, code signing, URLs, concurrency...).
LAMBDA_PATH_PREFIXES = tuple(
    f"/{version}/"
    for version in (
        "2015-03-31",
        "2014-11-13",
        "2016-08-19",
        "2017-03-31",
        "2017-10-31",
        "2018-10-31",
        "2019-09-25",
        "2019-09-30",
        "2020-04-22",
        "2020-06-30",
        "2021-10-31",
        "2021-11-15",
    )
)
APIGATEWAY_PATH_PREFIXES = ("/restapis", "/v2/apis")

#: API versions of query-protocol (form-encoded ``Action=...``) services.
QUERY_VERSIONS = {"2010-03-31": "sns", "2012-11-05": "sqs", "2011-06-15": "sts", "2010-05-08": "iam"}

UNROUTABLE = "Unable to determine service/operation name to be authorized"


def build_api_app(
    services: Mapping[str, ASGIApp],
    verifier: SigV4Verifier | None,
    ready: Callable[[], bool],
    *,
    not_ready_status: Callable[[], str] = lambda: "starting",
    max_body_bytes: int = MAX_BODY_BYTES,
) -> ASGIApp:
    """The API port's ASGI app. ``services`` maps SigV4 service names (``lambda``, ``kinesis``...)
    to their apps; ``verifier=None`` turns authentication off; ``ready`` drives the health check
    and ``not_ready_status`` says why it fails (``"starting"`` or ``"draining"``)."""
    return ApiApp(services, verifier, ready, not_ready_status, max_body_bytes)


@dataclass(frozen=True)
class _Route:
    service: str | None
    access_key: str | None
    protocol: Protocol


class ApiApp:
    """Front door of the API port; see the module docstring for what it does per request."""

    def __init__(
        self,
        services: Mapping[str, ASGIApp],
        verifier: SigV4Verifier | None,
        ready: Callable[[], bool],
        not_ready_status: Callable[[], str],
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._services = dict(services)
        self._max_body_bytes = max_body_bytes
        self._verifier = verifier
        self._ready = ready
        self._not_ready_status = not_ready_status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            # No service speaks WebSocket on this port: refuse the handshake.
            await send({"type": "websocket.close", "code": 1008})
            return
        request_id = ids.request_id()
        send = _Responder(send, request_id)
        path: str = scope["path"]
        if path == HEALTH_PATH:
            await self._health(send)
            return

        headers: Sequence[tuple[bytes, bytes]] = scope["headers"]
        query_string: bytes = scope.get("query_string", b"")
        try:
            body = await _read_body(headers, receive, self._max_body_bytes)
        except RequestTooLarge as exc:
            claimed = parse_credential_scope(headers, query_string)
            service = claimed.service if claimed else _unsigned_service(path, headers, b"")
            await send_error(send, exc, request_id, _protocol_for(headers, service))
            return
        if body is None:  # the client went away
            return

        scope = dict(scope)
        scope["squall.request_id"] = request_id
        scope["squall.body"] = body
        if path.startswith(ADMIN_PREFIX):
            scope["squall.access_key"] = None
            scope["squall.service"] = ADMIN_SERVICE
            admin = self._services.get(ADMIN_SERVICE)
            if admin is None:
                await send_error(send, ResourceNotFound(f"No admin endpoint at {path}"), request_id)
                return
            await _call(admin, scope, body, receive, send, request_id, "rest-json")
            return

        route = await self._authenticate(scope, headers, query_string, body, send, request_id)
        if route is None:
            return  # already answered with an authentication error
        app = self._services.get(route.service) if route.service else None
        if app is None:
            # AWS answers a request its endpoint cannot map to an operation with 400
            # UnknownOperationException (what a JSON service returns for an unknown X-Amz-Target).
            # botocore raises it as a ClientError with that code and does not retry it; a 404 would
            # read like "your resource is missing" and a 403 like a signing problem.
            message = UNROUTABLE if route.service is None else f"The '{route.service}' service is not offered here."
            await send_error(send, UnknownOperation(message), request_id, route.protocol)
            return
        scope["squall.access_key"] = route.access_key
        scope["squall.service"] = route.service
        await _call(app, scope, body, receive, send, request_id, route.protocol)

    async def _authenticate(
        self,
        scope: Scope,
        headers: Sequence[tuple[bytes, bytes]],
        query_string: bytes,
        body: bytes,
        send: Send,
        request_id: str,
    ) -> _Route | None:
        """Where a request goes and who sent it, or ``None`` after answering it with an
        authentication error."""
        claimed = parse_credential_scope(headers, query_string)

        def unsigned_service() -> str | None:
            service = _unsigned_service(scope["path"], headers, body)
            if service is None and "s3" in self._services and _header(headers, b"x-amz-target") is None:
                return "s3"  # S3 owns the rest of the path space (bucket names), as on a real S3 endpoint
            return service

        if self._verifier is None:
            if claimed is not None:
                return _Route(claimed.service, claimed.access_key_id, _protocol_for(headers, claimed.service))
            service = unsigned_service()
            return _Route(service, None, _protocol_for(headers, service))
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        try:
            signed = self._verifier.verify(scope["method"], raw_path, query_string, headers, body)
        except SquallError as exc:
            logger.debug("request %s refused: %s %s", request_id, exc.code, exc.message)
            protocol = _protocol_for(headers, claimed.service if claimed else unsigned_service())
            await send_error(send, s3_auth_error(exc) if protocol == "rest-xml" else exc, request_id, protocol)
            return None
        # What the signature names decides, as the claim did before it was checked.
        return _Route(signed.service, signed.access_key_id, _protocol_for(headers, signed.service))

    async def _health(self, send: Send) -> None:
        ok = self._ready()
        body = json.dumps({"status": "ok" if ok else self._not_ready_status()}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200 if ok else 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def _call(
    app: ASGIApp,
    scope: Scope,
    body: bytes,
    receive: Receive,
    send: _Responder,
    request_id: str,
    protocol: Protocol,
) -> None:
    """Run a service app; errors that escape it become AWS-shaped responses when still possible."""
    try:
        await app(scope, _replay(body, receive), send)
    except SquallError as exc:
        if send.started:
            logger.warning("request %s: %s after the response started", request_id, exc.code)
            return
        await send_error(send, exc, request_id, protocol)
    except Exception:
        logger.exception("request %s: unhandled error in the %s service", request_id, scope["squall.service"])
        if not send.started:
            await send_error(send, ServiceError("An internal error occurred."), request_id, protocol)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the buffered body once, then waits on the real one (disconnect)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class _Responder:
    """The ASGI ``send`` of one request: adds ``x-amzn-RequestId`` to a response that does not
    carry one yet, and remembers whether the response has started."""

    __slots__ = ("_request_id", "_send", "started")

    def __init__(self, send: Send, request_id: str) -> None:
        self._send = send
        self._request_id = request_id
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            headers = list(message.get("headers", ()))
            if not any(name.lower() == REQUEST_ID_HEADER for name, _ in headers):
                headers.append((REQUEST_ID_HEADER, self._request_id.encode()))
                message = {**message, "headers": headers}
        await self._send(message)


async def _read_body(headers: Sequence[tuple[bytes, bytes]], receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or ``None`` if the client disconnected first."""
    too_large = RequestTooLarge(f"Request must be smaller than {limit} bytes")
    declared = _header(headers, b"content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise too_large  # refuse before reading a byte of it
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks += message.get("body", b"")
        if len(chunks) > limit:
            raise too_large
        if not message.get("more_body", False):
            return bytes(chunks)


def _unsigned_service(path: str, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> str | None:
    """The service an unsigned request is for, from ``X-Amz-Target``, the path or the body."""
    target = _header(headers, b"x-amz-target")
    if target:
        return TARGET_SERVICES.get(target.split(".", 1)[0])
    if path.startswith(LAMBDA_PATH_PREFIXES):
        return "lambda"
    if path.startswith(APIGATEWAY_PATH_PREFIXES):
        return "apigateway"
    content_type = _header(headers, b"content-type") or ""
    if body and content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode("utf-8", errors="replace"))
        if "Action" in form:
            return QUERY_VERSIONS.get(form.get("Version", [""])[0])
    return None


def _protocol_for(headers: Sequence[tuple[bytes, bytes]], service: str | None) -> Protocol:
    """The wire protocol of ``service``: the one its credential scope names, else the one its
    unsigned request looks like (the error shape a client expects before we know for sure)."""
    if service in SERVICE_PROTOCOLS:
        return SERVICE_PROTOCOLS[service]
    if _header(headers, b"x-amz-target"):
        return "json"
    return "rest-json"


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge startup and shutdown: the platform, not this app, owns the services' lifecycle."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
