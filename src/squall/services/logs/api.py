"""CloudWatch Logs' JSON 1.1 wire format (``X-Amz-Target: Logs_20140328.<Operation>``).

Parameters are checked against the model's constraints, with the service's own wording
(``InvalidParameterException``: "1 validation error detected: ..."); errors are rendered by the
front door in the JSON protocol's ``__type`` shape.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from squall.api.keyring import KeyRing
from squall.errors import AccessDenied, SquallError
from squall.services.access import function_caller, not_authorized
from squall.services.logs.patterns import InvalidParameter
from squall.services.logs.service import LogsService

TARGET_PREFIX = "Logs_20140328."
_GROUP_PATTERN = r"[\.\-_/#A-Za-z0-9]+"
_STREAM_PATTERN = r"[^:*]*"
_GROUP_ARN = re.compile(r"^arn:aws[a-z-]*:logs:[^:]*:\d*:log-group:([^:]+)(?::\*)?$")


class UnknownOperation(SquallError, LookupError):
    code = "UnknownOperationException"
    status = 400
    error_type = "User"


class SerializationError(SquallError, ValueError):
    code = "SerializationException"
    status = 400
    error_type = "User"


def _violation(field: str, value: Any, constraint: str) -> InvalidParameter:
    return InvalidParameter(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
    )


class _Body:
    """The request's JSON members, read and validated one at a time."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def string(self, key: str, low: int = 1, high: int = 512, pattern: str | None = None) -> str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise SerializationError(f"STRING_VALUE can not be converted to {key}")
        if len(value) < low:
            raise _violation(key, value, f"Member must have length greater than or equal to {low}")
        if len(value) > high:
            raise _violation(key, value, f"Member must have length less than or equal to {high}")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise _violation(key, value, f"Member must satisfy regular expression pattern: {pattern}")
        return value

    def integer(self, key: str, low: int, high: int | None = None) -> int | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise SerializationError(f"NUMBER_VALUE can not be converted to {key}")
        if value < low:
            raise _violation(key, value, f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            raise _violation(key, value, f"Member must have value less than or equal to {high}")
        return value

    def boolean(self, key: str) -> bool:
        value = self.raw.get(key, False)
        if not isinstance(value, bool):
            raise SerializationError(f"BOOLEAN_VALUE can not be converted to {key}")
        return value

    def group(self) -> str:
        """``logGroupName`` or the group named by ``logGroupIdentifier`` (a name or an ARN)."""
        name = self.string("logGroupName", pattern=_GROUP_PATTERN)
        identifier = self.string("logGroupIdentifier", high=2048, pattern=r"[\w#+=/:,.@-]*")
        if name is not None and identifier is not None:
            raise InvalidParameter("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
        if identifier is not None:
            match = _GROUP_ARN.match(identifier)
            return match.group(1) if match else identifier
        if name is None:
            raise InvalidParameter("Should provide either name or ARN of LogGroup.")
        return name

    def stream_names(self) -> list[str] | None:
        value = self.raw.get("logStreamNames")
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise SerializationError("Unexpected value for logStreamNames")
        if not 1 <= len(value) <= 100:
            bound = "greater than or equal to 1" if not value else "less than or equal to 100"
            raise _violation("logStreamNames", value, f"Member must have length {bound}")
        return value


class LogsApi:
    """CloudWatch Logs' ASGI app."""

    def __init__(self, service: LogsService, keyring: KeyRing) -> None:
        self.service = service
        self.keyring = keyring
        self._operations: dict[str, Callable[[_Body], dict[str, Any]]] = {
            "DescribeLogGroups": self._describe_log_groups,
            "DescribeLogStreams": self._describe_log_streams,
            "GetLogEvents": self._get_log_events,
            "FilterLogEvents": self._filter_log_events,
            "DeleteLogGroup": self._delete_log_group,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = ""
        for name, value in scope["headers"]:
            if name.lower() == b"x-amz-target":
                target = value.decode("latin-1")
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
        handler = self._operations.get(operation)
        if handler is None:
            raise UnknownOperation(f"Operation {target or '(none)'} is not supported by Squall's CloudWatch Logs.")
        function = function_caller(self.keyring, scope)
        if function is not None:
            # A function's key is an execution role's: it writes its logs, it does not read anyone's.
            account = self.service.account_id
            resource = f"arn:aws:logs:{self.service.region}:{account}:log-group:*"
            raise AccessDenied(not_authorized(account, function, f"logs:{operation}", resource))
        raw_body = scope.get("squall.body") or b"{}"
        try:
            raw = json.loads(raw_body)
        except ValueError:
            raise SerializationError("Start of structure or map found where not expected.") from None
        if not isinstance(raw, dict):
            raise SerializationError("Start of structure or map found where not expected.")
        result = await asyncio.to_thread(handler, _Body(raw))
        body = json.dumps(result, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/x-amz-json-1.1"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _describe_log_groups(self, b: _Body) -> dict[str, Any]:
        prefix = b.string("logGroupNamePrefix", pattern=_GROUP_PATTERN)
        pattern = b.string("logGroupNamePattern", low=0, pattern=r"[\.\-_/#A-Za-z0-9]*")
        if prefix is not None and pattern is not None:
            raise InvalidParameter("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
        limit = b.integer("limit", 1, 50) or 50
        token = b.string("nextToken", high=1 << 20)
        return self.service.describe_log_groups(prefix or "", limit, token, pattern)

    def _describe_log_streams(self, b: _Body) -> dict[str, Any]:
        group = b.group()
        prefix = b.string("logStreamNamePrefix", pattern=_STREAM_PATTERN)
        order_by = b.string("orderBy", high=64) or "LogStreamName"
        if order_by not in ("LogStreamName", "LastEventTime"):
            raise _violation("orderBy", order_by, "Member must satisfy enum value set: [LogStreamName, LastEventTime]")
        limit = b.integer("limit", 1, 50) or 50
        token = b.string("nextToken", high=1 << 20)
        return self.service.describe_log_streams(group, prefix, order_by, b.boolean("descending"), limit, token)

    def _get_log_events(self, b: _Body) -> dict[str, Any]:
        group = b.group()
        stream = b.string("logStreamName", pattern=_STREAM_PATTERN)
        if stream is None:
            raise _violation("logStreamName", None, "Member must not be null")
        return self.service.get_log_events(
            group,
            stream,
            b.integer("startTime", 0),
            b.integer("endTime", 0),
            b.string("nextToken", high=1 << 20),
            b.integer("limit", 1, 10_000) or 10_000,
            b.boolean("startFromHead"),
        )

    def _filter_log_events(self, b: _Body) -> dict[str, Any]:
        return self.service.filter_log_events(
            b.group(),
            b.stream_names(),
            b.string("logStreamNamePrefix", pattern=_STREAM_PATTERN),
            b.integer("startTime", 0),
            b.integer("endTime", 0),
            b.string("filterPattern", low=0, high=1024),
            b.integer("limit", 1, 10_000) or 10_000,
            b.string("nextToken", high=1 << 20),
        )

    def _delete_log_group(self, b: _Body) -> dict[str, Any]:
        name = b.string("logGroupName", pattern=_GROUP_PATTERN)
        if name is None:
            raise _violation("logGroupName", None, "Member must not be null")
        self.service.delete_log_group(name)
        return {}
