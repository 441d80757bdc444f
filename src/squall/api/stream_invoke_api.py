"""InvokeWithResponseStream (``POST /2021-11-15/functions/{FunctionName}/response-streaming-invocations``).

The answer is an AWS event stream: a ``PayloadChunk`` event per chunk the function streams, sent
as it arrives, then one ``InvokeComplete`` event (``ErrorCode``, ``ErrorDetails``, ``LogResult``).
A function that answers whole (Python, a buffered Node handler) arrives as one ``PayloadChunk``,
as on Lambda. Errors found before the stream starts (unknown function, bad parameters,
throttling) are Lambda's ordinary error responses; once it has started, an error (a failure
mid-stream, a timeout) ends it through ``InvokeComplete``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Scope, Send

from squall.api import eventstream
from squall.api import lambda_wire as wire
from squall.api.errors import render_error
from squall.errors import SquallError
from squall.invoke.streaming import ResponseStream
from squall.platform import Platform
from squall.platform_api import InvokeOutcome

log = logging.getLogger(__name__)

PATH = re.compile(rb"^/2021-11-15/functions/([^/]+)/response-streaming-invocations$")
CONTENT_TYPE = b"application/vnd.amazon.eventstream"


class StreamInvokeApi:
    """Serves InvokeWithResponseStream over a ``Platform`` (plain ASGI: the answer is sent as it comes)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def __call__(self, scope: Scope, name_in_path: str, send: Send) -> None:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = str(scope.get("squall.request_id", ""))
        body = scope.get("squall.body")
        stream = ResponseStream()
        try:
            name, qualifier, invocation_type, log_type = wire.invoke_parameters(
                name_in_path, query, headers, ["RequestResponse", "DryRun"]
            )
        except SquallError as exc:
            await _send_error(send, exc, request_id)
            return
        running = asyncio.ensure_future(
            self.platform.invoke(
                name,
                qualifier,
                body if isinstance(body, bytes) else b"",
                invocation_type,
                log_type,
                headers.get("x-amz-client-context"),
                stream=stream,
            )
        )
        running.add_done_callback(lambda _: stream.finish())
        opened = asyncio.ensure_future(stream.opened.wait())
        await asyncio.wait({running, opened}, return_when=asyncio.FIRST_COMPLETED)
        opened.cancel()
        failure = running.exception() if running.done() else None
        if isinstance(failure, SquallError):
            await _send_error(send, failure, request_id)
            return
        if failure is not None:
            raise failure
        if running.done() and running.result().status_code == 204:
            outcome = running.result()
            out = [(b"x-amzn-requestid", outcome.request_id.encode()), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 204, "headers": out})
            await send({"type": "http.response.body", "body": b""})
            return
        out = [
            (b"x-amzn-requestid", (stream.request_id or request_id).encode()),
            (b"content-type", CONTENT_TYPE),
        ]
        if stream.executed_version:
            out.append((b"x-amz-executed-version", stream.executed_version.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": out})
        async for chunk in stream.chunks():
            await send(
                {"type": "http.response.body", "body": eventstream.event("PayloadChunk", chunk), "more_body": True}
            )
        try:
            outcome = await running
        except SquallError as exc:
            log.warning("InvokeWithResponseStream %s: %s after the stream started", request_id, exc.code)
            complete: dict[str, Any] = {"ErrorCode": exc.code, "ErrorDetails": exc.message}
            await _send_complete(send, complete)
            return
        if outcome.payload and outcome.function_error is None:
            # A function that answered whole: its response as one chunk.
            await send(
                {
                    "type": "http.response.body",
                    "body": eventstream.event("PayloadChunk", outcome.payload),
                    "more_body": True,
                }
            )
        await _send_complete(send, _completion(outcome))


def _completion(outcome: InvokeOutcome) -> dict[str, Any]:
    """``InvokeComplete``'s members: the error, if any, and the log tail when asked for."""
    complete: dict[str, Any] = {}
    if outcome.function_error is not None:
        # unverified: that ErrorCode is the error's type and ErrorDetails its message (Lambda
        # documents both members only as "an error code" and "the details of any returned error").
        error_type, message = _error_fields(outcome.payload)
        complete["ErrorCode"] = error_type
        complete["ErrorDetails"] = message
    if outcome.log_result is not None:
        complete["LogResult"] = outcome.log_result
    return complete


def _error_fields(payload: bytes) -> tuple[str, str]:
    try:
        parsed = json.loads(payload)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return "Unhandled", payload.decode("utf-8", "replace")
    return str(parsed.get("errorType") or "Unhandled"), str(parsed.get("errorMessage") or "")


async def _send_complete(send: Send, complete: dict[str, Any]) -> None:
    payload = json.dumps(complete, separators=(",", ":")).encode()
    await send({"type": "http.response.body", "body": eventstream.event("InvokeComplete", payload, "application/json")})


async def _send_error(send: Send, exc: SquallError, request_id: str) -> None:
    status, error_headers, error_body = render_error(exc, request_id)
    await send({"type": "http.response.start", "status": status, "headers": error_headers})
    await send({"type": "http.response.body", "body": error_body})
