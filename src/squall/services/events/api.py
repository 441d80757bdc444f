"""The EventBridge wire protocol (JSON 1.1, ``X-Amz-Target: AWSEvents.<Operation>``) for rules."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from squall.api.errors import render_error
from squall.api.validation import Violations, json_object
from squall.errors import SquallError, UnknownOperation
from squall.services.events.errors import EventsValidation, RuleNotFound
from squall.services.events.service import DEFAULT_BUS, RuleService

TARGET_PREFIX = "AWSEvents."
CONTENT_TYPE = b"application/x-amz-json-1.1"
NAME_PATTERN = r"[\.\-_A-Za-z0-9]+"
BUS_PATTERN = r"(arn:aws[\w-]*:events:[a-z]{2}-[a-z]+-[\w-]+:[0-9]{12}:event-bus\/)?[/\.\-_A-Za-z0-9]+"
STATES = ["ENABLED", "DISABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"]
_NAME_RE = re.compile(NAME_PATTERN)
_BUS_RE = re.compile(BUS_PATTERN)

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class EventsApi:
    """The ``events`` service of the API port (rules and targets of the default bus)."""

    def __init__(self, service: RuleService) -> None:
        self.service = service
        self.handlers: dict[str, Handler] = {
            "PutRule": self.put_rule,
            "DescribeRule": self.describe_rule,
            "ListRules": self.list_rules,
            "DeleteRule": self.delete_rule,
            "EnableRule": lambda p: self.set_state(p, True),
            "DisableRule": lambda p: self.set_state(p, False),
            "PutTargets": self.put_targets,
            "RemoveTargets": self.remove_targets,
            "ListTargetsByRule": self.list_targets,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTagsForResource": self.list_tags,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(scope.get("squall.request_id", ""))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        operation = headers.get("x-amz-target", "").removeprefix(TARGET_PREFIX)
        try:
            handler = self.handlers.get(operation)
            if handler is None:
                raise UnknownOperation(f"Operation {operation or '(none)'} is not supported by Squall's EventBridge.")
            result = await asyncio.to_thread(handler, _params(scope.get("squall.body") or b"{}"))
        except SquallError as exc:
            status, error_headers, error_body = render_error(exc, request_id, "json")
            await send({"type": "http.response.start", "status": status, "headers": error_headers})
            await send({"type": "http.response.body", "body": error_body})
            return
        payload = json.dumps(result).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", CONTENT_TYPE), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    # --- rules -------------------------------------------------------------------------------------
    def put_rule(self, params: dict[str, Any]) -> dict[str, Any]:
        v = Violations()
        name = _name(v, params.get("Name"), "name")
        v.length(params.get("ScheduleExpression"), "scheduleExpression", 256)
        v.enum(params.get("State"), "state", STATES)
        v.length(params.get("Description"), "description", 512)
        v.length(params.get("RoleArn"), "roleArn", 1600, 1)
        _bus(v, params)
        _raise(v)
        arn = self.service.put_rule(
            name,
            params.get("ScheduleExpression"),
            params.get("EventPattern"),
            params.get("State"),
            params.get("Description"),
            params.get("RoleArn"),
            list(params.get("Tags") or []),
        )
        return {"RuleArn": arn}

    def describe_rule(self, params: dict[str, Any]) -> dict[str, Any]:
        v = Violations()
        name = _name(v, params.get("Name"), "name")
        _bus(v, params)
        _raise(v)
        out = self.service.describe_rule(name).describe()
        out["CreatedBy"] = self.service.account_id
        return out

    def list_rules(self, params: dict[str, Any]) -> dict[str, Any]:
        v = Violations()
        prefix = params.get("NamePrefix")
        v.length(prefix, "namePrefix", 64, 1)
        if prefix is not None:
            v.pattern(prefix, "namePrefix", _NAME_RE, NAME_PATTERN)
        v.at_least(params.get("Limit"), "limit", 1)
        v.at_most(params.get("Limit"), "limit", 100)
        _bus(v, params)
        _raise(v)
        start = _token(params.get("NextToken"))
        rules, last = self.service.list_rules(prefix or "", start, int(params.get("Limit") or 100))
        out: dict[str, Any] = {"Rules": [r.describe() for r in rules]}
        if last is not None:
            out["NextToken"] = last.encode().hex()
        return out

    def delete_rule(self, params: dict[str, Any]) -> dict[str, Any]:
        v = Violations()
        name = _name(v, params.get("Name"), "name")
        _bus(v, params)
        _raise(v)
        self.service.delete_rule(name)
        return {}

    def set_state(self, params: dict[str, Any], enabled: bool) -> dict[str, Any]:
        v = Violations()
        name = _name(v, params.get("Name"), "name")
        _bus(v, params)
        _raise(v)
        self.service.set_state(name, enabled)
        return {}

    # --- targets -----------------------------------------------------------------------------------
    def put_targets(self, params: dict[str, Any]) -> dict[str, Any]:
        v = Violations()
        rule = _name(v, params.get("Rule"), "rule")
        targets = params.get("Targets")
        if not isinstance(targets, list) or not targets:
            v.add(None if targets is None else "[]", "targets", "Member must have length greater than or equal to 1")
            targets = []
        if len(targets) > 10:
            v.add(targets, "targets", "Member must have length less than or equal to 10")
        for i, target in enumerate(targets):
            _name(v, target.get("Id"), f"targets.{i + 1}.member.id")
            v.length(target.get("Arn"), f"targets.{i + 1}.member.arn", 1600, 1)
            if target.get("Arn") is None:
                v.add(None, f"targets.{i + 1}.member.arn", "Member must not be null")
            v.length(target.get("Input"), f"targets.{i + 1}.member.input", 8192)
            v.length(target.get("InputPath"), f"targets.{i + 1}.member.inputPath", 256)
        _bus(v, params)
        _raise(v)
        failed = self.service.put_targets(rule, targets)
        return {"FailedEntryCount": len(failed), "FailedEntries": failed}

    def remove_targets(self, params: dict[str, Any]) -> dict[str, Any]:
        v = Violations()
        rule = _name(v, params.get("Rule"), "rule")
        ids = params.get("Ids")
        if not isinstance(ids, list) or not ids:
            v.add(None if ids is None else "[]", "ids", "Member must have length greater than or equal to 1")
            ids = []
        _bus(v, params)
        _raise(v)
        self.service.remove_targets(rule, [str(i) for i in ids])
        return {"FailedEntryCount": 0, "FailedEntries": []}

    def list_targets(self, params: dict[str, Any]) -> dict[str, Any]:
        v = Violations()
        rule = _name(v, params.get("Rule"), "rule")
        v.at_least(params.get("Limit"), "limit", 1)
        v.at_most(params.get("Limit"), "limit", 100)
        _bus(v, params)
        _raise(v)
        targets = self.service.list_targets(rule)
        start = _token(params.get("NextToken"))
        page = [t for t in targets if t["Id"] > start][: int(params.get("Limit") or 100)]
        out: dict[str, Any] = {"Targets": page}
        if page and page[-1]["Id"] != targets[-1]["Id"]:
            out["NextToken"] = page[-1]["Id"].encode().hex()
        return out

    # --- tags --------------------------------------------------------------------------------------
    def tag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        self.service.tag(_arn(params), list(params.get("Tags") or []))
        return {}

    def untag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        self.service.untag(_arn(params), [str(k) for k in params.get("TagKeys") or []])
        return {}

    def list_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Tags": self.service.tags(_arn(params))}


def _name(v: Violations, value: Any, member: str) -> str:
    if value is None:
        v.add(None, member, "Member must not be null")
        return ""
    v.length(value, member, 64, 1)
    v.pattern(value, member, _NAME_RE, NAME_PATTERN)
    return str(value)


def _bus(v: Violations, params: dict[str, Any]) -> None:
    bus = params.get("EventBusName")
    if bus is None:
        return
    v.length(bus, "eventBusName", 1600, 1)
    v.pattern(bus, "eventBusName", _BUS_RE, BUS_PATTERN)
    if not v.items and str(bus).rpartition("/")[2] != DEFAULT_BUS:
        # unverified: AWS's wording for a bus that does not exist; Squall has only the default bus.
        raise RuleNotFound(f"Event bus {str(bus).rpartition('/')[2]} does not exist.")


def _arn(params: dict[str, Any]) -> str:
    v = Violations()
    arn = params.get("ResourceARN")
    if arn is None:
        v.add(None, "resourceARN", "Member must not be null")
    v.length(arn, "resourceARN", 1600, 1)
    _raise(v)
    return str(arn)


def _token(token: Any) -> str:
    if token is None:
        return ""
    try:
        return bytes.fromhex(str(token)).decode()
    except ValueError:
        # unverified: AWS's wording for a NextToken it did not issue.
        raise EventsValidation("Invalid NextToken") from None


def _params(body: bytes) -> dict[str, Any]:
    return json_object(body, EventsValidation)


def _raise(v: Violations) -> None:
    v.raise_if_any(EventsValidation)
