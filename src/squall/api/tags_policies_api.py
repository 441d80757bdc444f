"""Tags (``/2017-03-31/tags/{ARN}``) and resource policies (``.../functions/{name}/policy``) of functions."""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.api import lambda_wire as wire
from squall.errors import InvalidParameterValue, ResourceNotFound
from squall.policies import Policies, statement

if TYPE_CHECKING:
    from squall.platform import Platform

TAGS_PATH = "/2017-03-31/tags"
POLICY_PATH = "/2015-03-31/functions/{name}/policy"
_REGION = r"(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}"
TAGGABLE_PATTERN = (
    r"arn:(aws[a-zA-Z-]*):lambda:" + _REGION + r":\d{12}:(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?"
    r"|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}"
    r"-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|(capacity-provider|network-connector):[a-zA-Z0-9-_]{1,64})"
)
_TAGGABLE_RE = re.compile(TAGGABLE_PATTERN)
_TAG_TEXT = r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"
_TAG_TEXT_RE = re.compile(r"[\w\s.:/=+\-@]*")
STATEMENT_ID_PATTERN = r"([a-zA-Z0-9-_]+)"
NAMESPACED_STATEMENT_ID_PATTERN = r"([a-zA-Z0-9-_.]+)"
ACTION_PATTERN = r"(lambda:[*]|lambda:[a-zA-Z]+|[*])"
ARN_PATTERN = r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:(" + _REGION + r")?:(\d{12})?:(.*)"
QUALIFIER_PATTERN = r"(|[a-zA-Z0-9$_-]+)"


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body).encode(), status, media_type="application/json")


def _body(request: Request) -> bytes:
    body = request.scope.get("squall.body")
    return body if isinstance(body, bytes) else b""


class TagsPoliciesApi:
    """TagResource, UntagResource, ListTags; AddPermission, RemovePermission, GetPolicy."""

    def __init__(self, platform: Platform, policies: Policies) -> None:
        self.platform = platform
        self.policies = policies

    def routes(self, guard: Any) -> list[Route]:
        return [
            Route(TAGS_PATH + "/{arn:path}", guard(self.tag), methods=["POST"]),
            Route(TAGS_PATH + "/{arn:path}", guard(self.untag), methods=["DELETE"]),
            Route(TAGS_PATH + "/{arn:path}", guard(self.list_tags), methods=["GET"]),
            Route(POLICY_PATH, guard(self.add_permission), methods=["POST"]),
            Route(POLICY_PATH, guard(self.get_policy), methods=["GET"]),
            Route(POLICY_PATH + "/{sid}", guard(self.remove_permission), methods=["DELETE"]),
        ]

    # --- tags ------------------------------------------------------------------------------------
    async def _tagged_function(self, request: Request) -> str:
        """The function a tags request names by ARN; Lambda's errors for other ARNs."""
        arn = unquote(request.path_params["arn"])
        v = wire.Violations()
        v.length(arn, "resource", 10000, 1)
        v.pattern(arn, "resource", _TAGGABLE_RE, TAGGABLE_PATTERN)
        v.raise_if_any()
        if ":function:" not in arn:
            raise InvalidParameterValue("Squall supports tags on functions only.")
        base, _, rest = arn.partition(":function:")
        name, _, qualifier = rest.partition(":")
        if qualifier:
            raise InvalidParameterValue(
                "Tags on function aliases and versions are not supported. Please specify a function ARN."
            )
        if f"{base}:function:{name}" != self.platform.function_arn(name):
            raise ResourceNotFound(f"Function not found: {arn}")
        await self.platform.get_function(name)
        return name

    async def tag(self, request: Request) -> Response:
        name = await self._tagged_function(request)
        data = wire.parse_body(_body(request))
        tags = data.get("Tags")
        v = wire.Violations()
        if tags is None:
            v.add(None, "tags", "Member must not be null")
        elif isinstance(tags, dict):
            check_tags(v, tags)
        v.raise_if_any()
        if not isinstance(tags, dict):
            raise InvalidParameterValue("Tags must be a map of strings to strings.")
        current = (await self.platform.get_function(name)).tags
        await self.platform.registry.set_tags(name, {**current, **{str(k): str(val) for k, val in tags.items()}})
        return Response(status_code=204)

    async def untag(self, request: Request) -> Response:
        name = await self._tagged_function(request)
        keys = request.query_params.getlist("tagKeys")
        v = wire.Violations()
        if not keys:
            v.add(None, "tagKeys", "Member must not be null")
        for key in keys:
            v.length(key, "tagKeys", 128, 1)
        v.raise_if_any()
        current = (await self.platform.get_function(name)).tags
        await self.platform.registry.set_tags(name, {k: val for k, val in current.items() if k not in keys})
        return Response(status_code=204)

    async def list_tags(self, request: Request) -> Response:
        name = await self._tagged_function(request)
        return _json({"Tags": (await self.platform.get_function(name)).tags})

    # --- resource policies -----------------------------------------------------------------------
    async def _policy_target(self, request: Request) -> tuple[str, str, str]:
        """(function, qualifier or "", resource ARN) of a policy request; the version or alias must exist."""
        name, qualifier = wire.split_function_name(
            unquote(request.path_params["name"]), request.query_params.get("Qualifier")
        )
        await self.platform.get_function(name, qualifier)
        return name, qualifier or "", self.platform.function_arn(name, qualifier)

    async def add_permission(self, request: Request) -> Response:
        name, qualifier, resource = await self._policy_target(request)
        data = wire.parse_body(_body(request))
        v = wire.Violations()
        for member in ("StatementId", "Action", "Principal"):
            if data.get(member) is None:
                v.add(None, member[0].lower() + member[1:], "Member must not be null")
        v.length(data.get("StatementId"), "statementId", 100, 1)
        v.pattern(data.get("StatementId"), "statementId", re.compile(STATEMENT_ID_PATTERN), STATEMENT_ID_PATTERN)
        v.length(data.get("Action"), "action", 10000)
        v.pattern(data.get("Action"), "action", re.compile(ACTION_PATTERN), ACTION_PATTERN)
        v.length(data.get("Principal"), "principal", 2048)
        v.pattern(data.get("Principal"), "principal", re.compile(r"[^\s]+"), r"[^\s]+")
        v.length(data.get("SourceAccount"), "sourceAccount", 12)
        v.pattern(data.get("SourceAccount"), "sourceAccount", re.compile(r"\d{12}"), r"\d{12}")
        v.length(data.get("SourceArn"), "sourceArn", 10000)
        v.pattern(data.get("SourceArn"), "sourceArn", re.compile(ARN_PATTERN), ARN_PATTERN)
        v.enum(data.get("FunctionUrlAuthType"), "functionUrlAuthType", ["NONE", "AWS_IAM"])
        v.raise_if_any()
        new = statement(data, resource)
        await asyncio.to_thread(self.policies.add, name, qualifier, new, data.get("RevisionId"))
        return _json({"Statement": json.dumps(new, separators=(",", ":"))}, 201)

    async def remove_permission(self, request: Request) -> Response:
        name, qualifier, _ = await self._policy_target(request)
        sid = unquote(request.path_params["sid"])
        v = wire.Violations()
        v.length(sid, "statementId", 100, 1)
        v.pattern(sid, "statementId", re.compile(NAMESPACED_STATEMENT_ID_PATTERN), NAMESPACED_STATEMENT_ID_PATTERN)
        v.raise_if_any()
        revision_id = request.query_params.get("RevisionId")
        await asyncio.to_thread(self.policies.remove, name, qualifier, sid, revision_id)
        return Response(status_code=204)

    async def get_policy(self, request: Request) -> Response:
        name, qualifier, _ = await self._policy_target(request)
        policy, revision = await asyncio.to_thread(self.policies.get, name, qualifier)
        return _json({"Policy": policy, "RevisionId": revision})


def check_tags(v: wire.Violations, tags: dict[str, Any]) -> None:
    """TagKey 1-128 and TagValue 0-256 characters, of letters, digits, spaces and ``_.:/=+-@``."""
    for key, value in tags.items():
        key, value = str(key), str(value)
        if not 1 <= len(key) <= 128 or not _TAG_TEXT_RE.fullmatch(key):
            v.items.append(
                "Value at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must "
                "have length less than or equal to 128, Member must have length greater than or equal to 1, "
                f"Member must satisfy regular expression pattern: {_TAG_TEXT}]"
            )
            return
        if len(value) > 256 or not _TAG_TEXT_RE.fullmatch(value):
            v.items.append(
                "Value at 'tags' failed to satisfy constraint: Map value must satisfy constraint: [Member must "
                "have length less than or equal to 256, Member must have length greater than or equal to 0, "
                f"Member must satisfy regular expression pattern: {_TAG_TEXT}]"
            )
            return
