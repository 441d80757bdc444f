"""IAM's query-protocol wire format (``Action=CreateRole&Version=2010-05-08``), as botocore expects it.

Parameters are validated against the model's constraints (botocore only checks some of them on
the client); results are XML documents; errors are ``SquallError``s that the front door renders in
the query protocol's ``<ErrorResponse>`` shape.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.types import Receive, Scope, Send

from squall.api.keyring import KeyRing
from squall.errors import AccessDenied, SquallError
from squall.services import query
from squall.services.access import function_caller, not_authorized
from squall.services.iam.service import IamService
from squall.services.iam.store import StoredRole

XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/"
VERSION = "2010-05-08"

#: Model constraints: parameter -> (wire name in messages, min length, max length, pattern or None).
_NAME = r"[\w+=,.@-]+"
_STRINGS: dict[str, tuple[str, int, int, str | None]] = {
    "RoleName": ("roleName", 1, 64, _NAME),
    "PolicyName": ("policyName", 1, 128, _NAME),
    "Path": ("path", 1, 512, r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)"),
    "PathPrefix": ("pathPrefix", 1, 512, r"\u002F[\u0021-\u007F]*"),
    "PolicyArn": ("policyArn", 20, 2048, None),
    "AssumeRolePolicyDocument": ("assumeRolePolicyDocument", 1, 131072, None),
    "PolicyDocument": ("policyDocument", 1, 131072, None),
    "Description": ("description", 0, 1000, None),
    "Marker": ("marker", 1, 320, None),
}
_COMPILED = {key: re.compile(spec[3]) for key, spec in _STRINGS.items() if spec[3] is not None}
#: Integer parameters: (wire name, minimum, maximum).
_INTEGERS = {"MaxItems": ("maxItems", 1, 1000), "MaxSessionDuration": ("maxSessionDuration", 3600, 43200)}
DEFAULT_MAX_ITEMS = 100


class InvalidAction(SquallError, LookupError):
    code = "InvalidAction"
    status = 400
    error_type = "User"


class IamAccessDenied(AccessDenied):
    code = "AccessDenied"


class MissingParameter(SquallError, ValueError):
    code = "ValidationError"
    status = 400
    error_type = "User"


class _Params:
    """The request's parameters, read and validated one at a time."""

    def __init__(self, raw: dict[str, str]) -> None:
        self.raw = raw

    def string(self, key: str, required: bool = False) -> str | None:
        value = self.raw.get(key)
        wire, low, high, _ = _STRINGS[key]
        if value is None:
            if required:
                raise MissingParameter(
                    f"1 validation error detected: Value null at '{wire}' failed to satisfy constraint: "
                    "Member must not be null"
                )
            return None
        if len(value) < low:
            raise query.length_error(wire, value, low, at_least=True)
        if len(value) > high:
            raise query.length_error(wire, value, high)
        pattern = _COMPILED.get(key)
        if pattern is not None and not pattern.fullmatch(value):
            raise query.pattern_error(wire, value, _STRINGS[key][3] or "")
        return value

    def required(self, key: str) -> str:
        value = self.string(key, required=True)
        assert value is not None
        return value

    def integer(self, key: str, default: int) -> int:
        raw = self.raw.get(key)
        if raw is None:
            return default
        wire, low, high = _INTEGERS[key]
        try:
            value = int(raw)
        except ValueError:
            raise query.QueryValidationError(f"Invalid value for parameter {key}: {raw}") from None
        if value < low:
            raise query.range_error(wire, value, low, at_least=True)
        if value > high:
            raise query.range_error(wire, value, high, at_least=False)
        return value


def _page(items: list[Any], key: Callable[[Any], str], params: _Params) -> tuple[list[Any], dict[str, Any]]:
    """One page of a list from ``Marker`` (the key of its first item), and its paging members."""
    marker = params.string("Marker")
    limit = params.integer("MaxItems", DEFAULT_MAX_ITEMS)
    if marker is not None:
        keys = [key(item) for item in items]
        # When the marked item is gone, go on from where it would have been.
        items = items[keys.index(marker) :] if marker in keys else [item for item in items if key(item) > marker]
    page, rest = items[:limit], items[limit:]
    return page, {"IsTruncated": bool(rest), "Marker": key(rest[0]) if rest else None}


class IamApi:
    """IAM's ASGI app."""

    def __init__(self, service: IamService, keyring: KeyRing) -> None:
        self.service = service
        self.keyring = keyring
        self._actions: dict[str, Callable[[_Params], dict[str, Any] | None]] = {
            "CreateRole": self._create_role,
            "GetRole": self._get_role,
            "DeleteRole": self._delete_role,
            "ListRoles": self._list_roles,
            "AttachRolePolicy": self._attach,
            "DetachRolePolicy": self._detach,
            "ListAttachedRolePolicies": self._list_attached,
            "PutRolePolicy": self._put_policy,
            "GetRolePolicy": self._get_policy,
            "DeleteRolePolicy": self._delete_policy,
            "ListRolePolicies": self._list_policies,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = query.form(scope)
        action = raw.get("Action", "")
        handler = self._actions.get(action)
        if handler is None:
            raise InvalidAction(f"Could not find operation {action} for version {raw.get('Version', VERSION)}")
        function = function_caller(self.keyring, scope)
        if function is not None:
            # A function's key is an execution role's: it does not manage IAM.
            role = raw.get("RoleName")
            resource = f"arn:aws:iam::{self.service.account_id}:role/{role}" if role else "*"
            raise IamAccessDenied(not_authorized(self.service.account_id, function, f"iam:{action}", resource))
        result = await asyncio.to_thread(handler, _Params(raw))
        await query.send_xml(send, query.render(action, result, scope.get("squall.request_id", ""), XMLNS))

    # --- roles -----------------------------------------------------------------------------------
    def _create_role(self, p: _Params) -> dict[str, Any]:
        name = p.required("RoleName")
        document = p.required("AssumeRolePolicyDocument")
        path = p.string("Path") or "/"
        description = p.string("Description")
        duration = p.integer("MaxSessionDuration", 3600)
        tags = query.members(p.raw, "Tags", ("Key", "Value"))
        role = self.service.create_role(name, document, path, description, duration, tags)
        return {"Role": self.service.describe(role)}

    def _get_role(self, p: _Params) -> dict[str, Any]:
        return {"Role": self.service.describe(self.service.get_role(p.required("RoleName")))}

    def _delete_role(self, p: _Params) -> None:
        self.service.delete_role(p.required("RoleName"))

    def _list_roles(self, p: _Params) -> dict[str, Any]:
        roles = self.service.list_roles(p.string("PathPrefix") or "/")
        page, paging = _page(roles, lambda role: role.name.lower(), p)
        described = [self.service.describe(role, full=False) for role in page]
        return {"Roles": described, **paging}

    # --- managed policies ------------------------------------------------------------------------
    def _attach(self, p: _Params) -> None:
        self.service.attach_role_policy(p.required("RoleName"), p.required("PolicyArn"))

    def _detach(self, p: _Params) -> None:
        self.service.detach_role_policy(p.required("RoleName"), p.required("PolicyArn"))

    def _list_attached(self, p: _Params) -> dict[str, Any]:
        policies = self.service.attached_policies(p.required("RoleName"))
        page, paging = _page(policies, lambda policy: policy["PolicyArn"], p)
        return {"AttachedPolicies": page, **paging}

    # --- inline policies -------------------------------------------------------------------------
    def _put_policy(self, p: _Params) -> None:
        role, name, document = p.required("RoleName"), p.required("PolicyName"), p.required("PolicyDocument")
        self.service.put_role_policy(role, name, document)

    def _get_policy(self, p: _Params) -> dict[str, Any]:
        role_name, name = p.required("RoleName"), p.required("PolicyName")
        role: StoredRole = self.service.get_role(role_name)
        document = self.service.role_policy(role_name, name)
        return {"RoleName": role.name, "PolicyName": name, "PolicyDocument": quote(document, safe="")}

    def _delete_policy(self, p: _Params) -> None:
        self.service.delete_role_policy(p.required("RoleName"), p.required("PolicyName"))

    def _list_policies(self, p: _Params) -> dict[str, Any]:
        names = self.service.role_policy_names(p.required("RoleName"))
        page, paging = _page(names, lambda name: name, p)
        return {"PolicyNames": page, **paging}
