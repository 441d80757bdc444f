"""The EventBridge Scheduler wire protocol (rest-json under ``/schedules``), SigV4 service ``scheduler``."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote

from starlette.types import Receive, Scope, Send

from squall.api.errors import render_error
from squall.api.validation import Violations, json_object
from squall.errors import SquallError, UnknownOperation
from squall.services.scheduler.errors import ScheduleValidation
from squall.services.scheduler.service import ScheduleService

#: The name botocore signs Scheduler requests with, and the key of this app in the server's services.
SERVICE_NAME = "scheduler"
NAME_PATTERN = r"[0-9a-zA-Z-_.]+"
ROLE_PATTERN = r"arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@\/-]+"
_NAME_RE = re.compile(NAME_PATTERN)
_ROLE_RE = re.compile(ROLE_PATTERN)


class SchedulerApi:
    """The ``scheduler`` service of the API port."""

    def __init__(self, service: ScheduleService) -> None:
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(scope.get("squall.request_id", ""))
        method, path = scope["method"], unquote(scope["path"])
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        try:
            result = await asyncio.to_thread(self._dispatch, method, path, query, scope.get("squall.body") or b"")
        except SquallError as exc:
            status, headers, body = render_error(exc, request_id, "rest-json")
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        payload = json.dumps(result).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _dispatch(self, method: str, path: str, query: dict[str, str], body: bytes) -> dict[str, Any]:
        if path in ("/schedules", "/schedules/") and method == "GET":
            return self.list_schedules(query)
        name = path.removeprefix("/schedules/")
        if name != path and "/" not in name:
            if method in ("POST", "PUT"):
                return self.put_schedule(name, _params(body), create=method == "POST")
            if method == "GET":
                return self.get_schedule(name, query)
            if method == "DELETE":
                return self.delete_schedule(name, query)
        raise UnknownOperation(f"{method} {path} is not an operation of Squall's EventBridge Scheduler.")

    def put_schedule(self, name: str, params: dict[str, Any], create: bool) -> dict[str, Any]:
        v = Violations()
        _name(v, name, "name")
        group = params.get("GroupName")
        if group is not None:
            _name(v, group, "groupName")
        expression = params.get("ScheduleExpression")
        _required(v, expression, "scheduleExpression")
        v.length(expression, "scheduleExpression", 256, 1)
        v.length(params.get("ScheduleExpressionTimezone"), "scheduleExpressionTimezone", 50, 1)
        v.length(params.get("Description"), "description", 512)
        v.enum(params.get("State"), "state", ["ENABLED", "DISABLED"])
        v.enum(params.get("ActionAfterCompletion"), "actionAfterCompletion", ["NONE", "DELETE"])
        window = params.get("FlexibleTimeWindow")
        _required(v, window, "flexibleTimeWindow")
        if isinstance(window, dict):
            mode = window.get("Mode")
            _required(v, mode, "flexibleTimeWindow.mode")
            v.enum(mode, "flexibleTimeWindow.mode", ["OFF", "FLEXIBLE"])
            v.at_least(window.get("MaximumWindowInMinutes"), "flexibleTimeWindow.maximumWindowInMinutes", 1)
            v.at_most(window.get("MaximumWindowInMinutes"), "flexibleTimeWindow.maximumWindowInMinutes", 1440)
        target = params.get("Target")
        _required(v, target, "target")
        if isinstance(target, dict):
            _required(v, target.get("Arn"), "target.arn")
            v.length(target.get("Arn"), "target.arn", 1600, 1)
            _required(v, target.get("RoleArn"), "target.roleArn")
            v.length(target.get("RoleArn"), "target.roleArn", 1600, 1)
            v.pattern(target.get("RoleArn"), "target.roleArn", _ROLE_RE, ROLE_PATTERN)
            v.length(target.get("Input"), "target.input", 8192, 1)
            retry = target.get("RetryPolicy") or {}
            v.at_least(retry.get("MaximumEventAgeInSeconds"), "target.retryPolicy.maximumEventAgeInSeconds", 60)
            v.at_most(retry.get("MaximumEventAgeInSeconds"), "target.retryPolicy.maximumEventAgeInSeconds", 86400)
            v.at_least(retry.get("MaximumRetryAttempts"), "target.retryPolicy.maximumRetryAttempts", 0)
            v.at_most(retry.get("MaximumRetryAttempts"), "target.retryPolicy.maximumRetryAttempts", 185)
        _raise(v)
        if not isinstance(window, dict) or not isinstance(target, dict):
            raise ScheduleValidation("Start of structure or map found where not expected.")
        if window["Mode"] == "FLEXIBLE" and window.get("MaximumWindowInMinutes") is None:
            # unverified: AWS's wording for a FLEXIBLE window without its size.
            raise ScheduleValidation("MaximumWindowInMinutes must be provided when Mode is FLEXIBLE.")
        if window["Mode"] == "OFF" and window.get("MaximumWindowInMinutes") is not None:
            # unverified: AWS's wording for a window size given with Mode OFF.
            raise ScheduleValidation("MaximumWindowInMinutes must not be provided when Mode is OFF.")
        arn_parts = str(target["Arn"]).split(":")
        if arn_parts[2:3] != ["lambda"] or ":function:" not in target["Arn"]:
            raise ScheduleValidation("Squall's Scheduler invokes Lambda functions only: Target.Arn must name one.")
        arn = self.service.put(name, group, params, create)
        return {"ScheduleArn": arn}

    def get_schedule(self, name: str, query: dict[str, str]) -> dict[str, Any]:
        v = Violations()
        _name(v, name, "name")
        _raise(v)
        return self.service.get(name, query.get("groupName")).describe()

    def delete_schedule(self, name: str, query: dict[str, str]) -> dict[str, Any]:
        v = Violations()
        _name(v, name, "name")
        _raise(v)
        self.service.delete(name, query.get("groupName"))
        return {}

    def list_schedules(self, query: dict[str, str]) -> dict[str, Any]:
        v = Violations()
        prefix = query.get("NamePrefix")
        if prefix is not None:
            _name(v, prefix, "namePrefix")
        v.enum(query.get("State"), "state", ["ENABLED", "DISABLED"])
        limit = query.get("MaxResults")
        if limit is not None and not limit.isdigit():
            v.add(limit, "maxResults", "Member must be an integer")
            limit = None
        v.at_least(int(limit) if limit else None, "maxResults", 1)
        v.at_most(int(limit) if limit else None, "maxResults", 100)
        _raise(v)
        start = ""
        if query.get("NextToken"):
            try:
                start = bytes.fromhex(query["NextToken"]).decode()
            except ValueError:
                # unverified: AWS's wording for a NextToken it did not issue.
                raise ScheduleValidation("Invalid NextToken.") from None
        page, last = self.service.list(
            query.get("ScheduleGroup"), prefix or "", query.get("State"), start, int(limit or 100)
        )
        out: dict[str, Any] = {"Schedules": [s.summary() for s in page]}
        if last is not None:
            out["NextToken"] = last.encode().hex()
        return out


def _required(v: Violations, value: Any, member: str) -> None:
    if value is None:
        v.add(None, member, "Member must not be null")


def _name(v: Violations, value: str, member: str) -> None:
    v.length(value, member, 64, 1)
    v.pattern(value, member, _NAME_RE, NAME_PATTERN)


def _params(body: bytes) -> dict[str, Any]:
    return json_object(body or b"{}", ScheduleValidation)


def _raise(v: Violations) -> None:
    v.raise_if_any(ScheduleValidation)
