"""Shared plumbing of the query protocol (IAM, STS): form-encoded ``Action=...`` requests, XML answers.

botocore's query parser reads ``<{Action}Response><{Action}Result>...</{Action}Result>
<ResponseMetadata><RequestId>`` and lists as ``<Name><member>...</member></Name>``; errors are
rendered by the front door (``api/errors.py``, protocol ``query``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from starlette.types import Scope, Send

from squall.errors import SquallError


class QueryValidationError(SquallError, ValueError):
    """A parameter outside the model's constraints (query protocol's ``ValidationError``)."""

    code = "ValidationError"
    status = 400
    error_type = "User"


def form(scope: Scope) -> dict[str, str]:
    """The request's parameters: the query string, then the form body (which wins)."""
    params = dict(parse_qsl(scope.get("query_string", b"").decode("utf-8", "replace"), keep_blank_values=True))
    body = scope.get("squall.body")
    if isinstance(body, bytes) and body:
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def members(params: Mapping[str, str], name: str, fields: Sequence[str] = ()) -> list[Any]:
    """A list parameter: ``Name.member.1=...`` (scalars) or ``Name.member.1.Key=...`` (``fields``)."""
    items: list[Any] = []
    index = 1
    while True:
        prefix = f"{name}.member.{index}"
        if fields:
            item = {field: params[f"{prefix}.{field}"] for field in fields if f"{prefix}.{field}" in params}
            if not item:
                return items
            items.append(item)
        else:
            if prefix not in params:
                return items
            items.append(params[prefix])
        index += 1


def to_xml(value: Any) -> str:
    """A value as query-protocol XML: dicts become elements, lists ``<member>`` items; None is left out."""
    if isinstance(value, Mapping):
        return "".join(f"<{key}>{to_xml(item)}</{key}>" for key, item in value.items() if item is not None)
    if isinstance(value, list | tuple):
        return "".join(f"<member>{to_xml(item)}</member>" for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def render(action: str, result: Mapping[str, Any] | None, request_id: str, xmlns: str) -> bytes:
    """The whole response document of ``action``; ``result`` None leaves out the ``Result`` element."""
    inner = "" if result is None else f"<{action}Result>{to_xml(result)}</{action}Result>"
    return (
        f'<{action}Response xmlns="{xmlns}">{inner}'
        f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata></{action}Response>"
    ).encode()


async def send_xml(send: Send, body: bytes, status: int = 200) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/xml"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def length_error(field: str, value: str, limit: int, *, at_least: bool = False) -> QueryValidationError:
    """AWS's wording for a string too short or too long."""
    bound = "greater than or equal to" if at_least else "less than or equal to"
    return QueryValidationError(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
        f"Member must have length {bound} {limit}"
    )


def pattern_error(field: str, value: str, pattern: str) -> QueryValidationError:
    return QueryValidationError(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {pattern}"
    )


def range_error(field: str, value: int, limit: int, *, at_least: bool) -> QueryValidationError:
    bound = "greater than or equal to" if at_least else "less than or equal to"
    return QueryValidationError(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
        f"Member must have value {bound} {limit}"
    )
