"""A function URL's streamed answer (InvokeMode ``RESPONSE_STREAM``).

The body goes to the HTTP client chunk by chunk as the function streams it. A stream of content
type ``application/vnd.awslambda.http-integration-response`` (Node's
``awslambda.HttpResponseStream.from``) starts with a JSON prelude (``statusCode``, ``headers``,
``cookies``) ended by 8 NUL bytes, which becomes the status and headers; any other stream is a
200 with the stream's content type.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from squall.gateway.events import BadResponse, HttpResponse
from squall.invoke.streaming import ResponseStream

PRELUDE_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_END = b"\0" * 8
#: A prelude longer than this is not one: the stream is refused as a bad answer.
# unverified: Lambda's own cap on the prelude's size.
PRELUDE_LIMIT = 1 << 20


@dataclass
class StreamedHttpResponse(HttpResponse):
    """An ``HttpResponse`` whose body arrives as ``chunks`` (``body`` holds what came first)."""

    chunks: AsyncIterator[bytes] | None = field(default=None)


async def streamed_response(stream: ResponseStream) -> StreamedHttpResponse:
    """The status, headers and body stream of a function's opened response stream."""
    chunks = aiter(stream.chunks())
    if stream.content_type != PRELUDE_CONTENT_TYPE:
        return StreamedHttpResponse(
            200, [("content-type", stream.content_type or "application/octet-stream")], b"", chunks
        )
    head = b""
    while PRELUDE_END not in head:
        if len(head) > PRELUDE_LIMIT:
            raise BadResponse("the response prelude is too long")
        try:
            head += await anext(chunks)
        except StopAsyncIteration:
            raise BadResponse("the response stream ended inside its prelude") from None
    prelude_bytes, _, rest = head.partition(PRELUDE_END)
    status, headers = _prelude(prelude_bytes)
    return StreamedHttpResponse(status, headers, rest, chunks)


def _prelude(raw: bytes) -> tuple[int, list[tuple[str, str]]]:
    try:
        prelude = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise BadResponse(f"the response prelude is not JSON: {exc}") from None
    if not isinstance(prelude, dict):
        raise BadResponse("the response prelude is not an object")
    status = prelude.get("statusCode", 200)
    if not isinstance(status, int):
        raise BadResponse("statusCode must be an integer")
    headers = [(str(k).lower(), str(v)) for k, v in (prelude.get("headers") or {}).items()]
    if not any(name == "content-type" for name, _ in headers):
        # unverified: the content type Lambda gives a streamed URL response whose prelude sets none.
        headers.append(("content-type", "application/octet-stream"))
    cookies = prelude.get("cookies") or []
    if not isinstance(cookies, list):
        raise BadResponse("cookies must be a list")
    headers.extend(("set-cookie", str(cookie)) for cookie in cookies)
    return status, headers
