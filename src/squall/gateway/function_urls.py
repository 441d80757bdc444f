"""Serving function URLs on the gateway port.

A request names its URL by host, ``http://<url-id>.lambda-url.<region>.localhost:8991/<path>``,
or by path, ``http://127.0.0.1:8991/_lambda-url/<url-id>/<path>``. Then, as Lambda does: the
``AWS_IAM`` check (a SigV4 signature by one of Squall's keys, service ``lambda``), CORS preflight,
a synchronous invocation with the payload 2.0 event (route key ``$default``), and the answer mapped
back as HTTP APIs map payload 2.0 answers, or, for a ``RESPONSE_STREAM`` URL whose function streams,
sent on as it comes (``url_streaming``). Lambda's own answers are ``{"Message": ...}`` JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from squall.api.sigv4 import SigV4Verifier
from squall.errors import AccessDenied, RequestTooLarge, SquallError, TooManyRequests
from squall.gateway import cors
from squall.gateway.authorizers import Invoke
from squall.gateway.events import BadResponse, HttpResponse, map_response, v2_event
from squall.gateway.request import GatewayRequest
from squall.gateway.url_store import FunctionUrl, FunctionUrlStore
from squall.gateway.url_streaming import streamed_response
from squall.invoke.streaming import ResponseStream

log = logging.getLogger(__name__)

#: A synchronous invocation whose streamed response goes to the stream given (RESPONSE_STREAM URLs).
StreamInvoke = Callable[[str, bytes, ResponseStream], Awaitable[tuple[str | None, bytes]]]
PATH_PREFIX = "/_lambda-url/"
_HOST_URL = re.compile(r"^([a-z0-9]+)\.lambda-url\.", re.IGNORECASE)
#: Lambda's synchronous invocation payload limit applies to a function URL's request.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


def message_response(status: int, message: str) -> HttpResponse:
    """Lambda's own ``{"Message": ...}`` answers on a function URL."""
    body = json.dumps({"Message": message}, separators=(",", ":")).encode()
    return HttpResponse(status, [("content-type", "application/json")], body)


def locate(host: str, path: str) -> tuple[str, str] | None:
    """(URL id, path inside the URL) when a request is addressed to a function URL, else None."""
    by_host = _HOST_URL.match(host)
    if by_host:
        return by_host.group(1).lower(), path or "/"
    if path.startswith(PATH_PREFIX):
        url_id, _, rest = path[len(PATH_PREFIX) :].partition("/")
        return url_id.lower(), "/" + rest
    return None


def _cors_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A function URL's ``Cors`` in the gateway's CORS helper's (HTTP API) member names."""
    return {key[0].lower() + key[1:]: value for key, value in config.items()}


class FunctionUrlGateway:
    """Answers the requests addressed to function URLs; ``caller_of`` maps an access key id to the
    (ARN, user id) of its owner, for the ``iam`` authorizer context."""

    def __init__(
        self,
        store: FunctionUrlStore,
        invoke: Invoke,
        verifier: SigV4Verifier,
        account_id: str,
        region: str,
        caller_of: Callable[[str], tuple[str, str]] | None = None,
        stream: StreamInvoke | None = None,
    ) -> None:
        self._store = store
        self._invoke = invoke
        self._stream = stream
        self._verifier = verifier
        self._account_id = account_id
        self._region = region
        self._caller_of = caller_of

    def domain_name(self, url_id: str) -> str:
        return f"{url_id}.lambda-url.{self._region}.localhost"

    async def serve(
        self,
        url_id: str,
        path: str,
        method: str,
        raw_path: bytes,
        query_string: bytes,
        raw_headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        source_ip: str,
        request_id: str,
    ) -> HttpResponse:
        url = self._store.by_id(url_id)
        if url is None:
            # unverified: AWS has no DNS name for an unknown URL id; this is Squall's answer.
            return message_response(404, "Not Found")
        if body is None or len(body) > MAX_PAYLOAD_BYTES:
            # unverified: wording of a function URL's answer to an oversized request
            return message_response(413, "Request Entity Too Large")
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw_headers]
        request = GatewayRequest(
            api_id=url_id,
            account_id=self._account_id,
            region=self._region,
            stage="$default",
            method=method,
            path=path,
            raw_path=path,
            raw_query=query_string.decode("latin-1"),
            headers=headers,
            body=body,
            source_ip=source_ip,
            domain_name=self.domain_name(url_id),
            request_id=request_id,
        )
        config = _cors_config(url.cors) if url.cors else None
        if config is not None and cors.is_preflight(request):
            return cors.preflight(config, request)
        authorizer = None
        if url.auth_type == "AWS_IAM":
            identity = self._iam_identity(method, raw_path, query_string, raw_headers, body)
            if identity is None:
                # Lambda's answer to an unsigned or badly signed request to an AWS_IAM URL.
                return message_response(403, "Forbidden")
            authorizer = {"iam": identity}
        event = v2_event(request, "$default", {}, {}, authorizer)
        if url.invoke_mode == "RESPONSE_STREAM" and self._stream is not None:
            response = await self._call_streaming(url, event)
        else:
            response = await self._call(url, event)
        if config is not None:
            cors.decorate(config, request, response)
        return response

    def _iam_identity(
        self, method: str, raw_path: bytes, query_string: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> dict[str, Any] | None:
        """The event's ``requestContext.authorizer.iam`` of a request signed for ``lambda``, else None."""
        try:
            signed = self._verifier.verify(method, raw_path, query_string, headers, body)
        except (AccessDenied, SquallError):
            return None
        if signed.service != "lambda":
            return None
        if self._caller_of is not None:
            user_arn, user_id = self._caller_of(signed.access_key_id)
        else:
            user_arn, user_id = f"arn:aws:iam::{self._account_id}:root", self._account_id
        return {
            "accessKey": signed.access_key_id,
            "accountId": self._account_id,
            "callerId": user_id,
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": user_arn,
            "userId": user_id,
        }

    async def _call(self, url: FunctionUrl, event: dict[str, Any]) -> HttpResponse:
        return await self._answer(url, self._invoke(url.function_arn, json.dumps(event).encode()))

    async def _call_streaming(self, url: FunctionUrl, event: dict[str, Any]) -> HttpResponse:
        """A RESPONSE_STREAM URL: the body goes out as the function streams it. A function that
        answers whole (Python, a buffered Node handler) is mapped as a BUFFERED URL maps it."""
        assert self._stream is not None
        stream = ResponseStream()
        running = asyncio.ensure_future(self._stream(url.function_arn, json.dumps(event).encode(), stream))
        running.add_done_callback(lambda _: stream.finish())
        await stream.opened.wait()
        if stream.content_type is None:
            return await self._answer(url, running)
        try:
            response = await streamed_response(stream)
        except BadResponse as exc:
            log.info("function URL %s: unusable streamed answer: %s", url.url_id, exc)
            stream.close()
            await asyncio.gather(running, return_exceptions=True)
            return message_response(502, "Internal Server Error")
        response.chunks = _then_wait(response.chunks, running)
        return response

    async def _answer(self, url: FunctionUrl, call: Awaitable[tuple[str | None, bytes]]) -> HttpResponse:
        """The HTTP answer to a whole (buffered) invocation result."""
        try:
            error, payload = await call
        except RequestTooLarge:
            return message_response(413, "Request Entity Too Large")  # unverified
        except TooManyRequests:
            return message_response(429, "Rate Exceeded.")  # unverified
        except Exception as exc:
            log.info("function URL %s: invocation failed: %s", url.url_id, exc)
            return message_response(500, "Internal Server Error")  # unverified
        if error is not None:
            # unverified: a function error on a function URL is a 502 (Lambda's documented status).
            return message_response(502, "Internal Server Error")
        try:
            return map_response(payload, "2.0")
        except BadResponse as exc:
            log.info("function URL %s: unusable answer: %s", url.url_id, exc)
            return message_response(502, "Internal Server Error")


async def _then_wait(
    chunks: AsyncIterator[bytes] | None, running: asyncio.Future[tuple[str | None, bytes]]
) -> AsyncIterator[bytes]:
    """The body's chunks, then the invocation's end (a failure mid-stream just ends the body)."""
    if chunks is not None:
        async for chunk in chunks:
            yield chunk
    try:
        await running
    except Exception as exc:
        log.info("function URL stream ended by a failure: %s", exc)
