"""Rendering ``SquallError`` as the error response each AWS wire protocol expects.

botocore finds the error code in a different place for each protocol, so the shape matters:

* ``rest-json`` (Lambda, API Gateway): the ``x-amzn-ErrorType`` header; the body is Lambda's own
  error shape (``exc.body()``: ``Type`` plus ``message``/``Message`` and extra members).
* ``json`` (Kinesis, DynamoDB, SQS, CloudWatch Logs, EventBridge...): the ``__type`` body member.
* ``rest-xml`` (S3): ``<Error><Code>`` in an XML body.
* ``query`` (SNS, STS): ``<ErrorResponse><Error><Code>`` in an XML body.

Every error response carries ``x-amzn-RequestId``; botocore reports it as
``ResponseMetadata.RequestId``.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from xml.sax.saxutils import escape

from starlette.types import Send

from squall.errors import SquallError, TooManyRequests

Protocol = Literal["rest-json", "json", "rest-xml", "query"]
Headers = list[tuple[bytes, bytes]]

REQUEST_ID_HEADER = b"x-amzn-requestid"
_QUERY_XMLNS = "https://aws.amazon.com/doc/2010-03-31/"


def render_error(exc: SquallError, request_id: str, protocol: Protocol = "rest-json") -> tuple[int, Headers, bytes]:
    """The status, headers and body that report ``exc`` to a client of ``protocol``."""
    headers: Headers = [(REQUEST_ID_HEADER, request_id.encode())]
    if isinstance(exc, TooManyRequests):
        headers.append((b"retry-after", str(exc.retry_after).encode()))
    if protocol == "rest-json":
        headers += [(b"content-type", b"application/json"), (b"x-amzn-errortype", exc.code.encode())]
        body = _json(exc.body())
    elif protocol == "json":
        payload: dict[str, Any] = {"__type": exc.code, "message": exc.message}
        payload.update(exc.extra)
        headers += [
            (b"content-type", b"application/x-amz-json-1.1"),
            (b"x-amzn-errortype", exc.code.encode()),
        ]
        body = _json(payload)
    elif protocol == "rest-xml":
        headers += [(b"content-type", b"application/xml"), (b"x-amz-request-id", request_id.encode())]
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(exc.code)}</Code><Message>{escape(exc.message)}</Message>"
            f"<RequestId>{escape(request_id)}</RequestId></Error>"
        ).encode()
    else:
        side = "Sender" if exc.status < 500 else "Receiver"
        headers.append((b"content-type", b"text/xml"))
        body = (
            f'<ErrorResponse xmlns="{_QUERY_XMLNS}"><Error><Type>{side}</Type>'
            f"<Code>{escape(exc.code)}</Code><Message>{escape(exc.message)}</Message></Error>"
            f"<RequestId>{escape(request_id)}</RequestId></ErrorResponse>"
        ).encode()
    headers.append((b"content-length", str(len(body)).encode()))
    return exc.status, headers, body


async def send_error(send: Send, exc: SquallError, request_id: str, protocol: Protocol = "rest-json") -> None:
    """Send ``exc`` as a complete ASGI HTTP response."""
    status, headers, body = render_error(exc, request_id, protocol)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()
