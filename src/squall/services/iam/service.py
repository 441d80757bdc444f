"""IAM's role operations over a ``RoleStore``: the rules and messages IAM applies.

Nothing here is enforced on requests; roles and their policies are kept so that scripts and tools
that create them (and read them back) work. Messages are IAM's own, word for word.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from squall.errors import SquallError
from squall.services.iam.store import RoleStore, StoredRole

ROLE_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_POLICY_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/(?:[\x21-\x7e]*/)?([\w+=,.@-]+)$")


class IamError(SquallError):
    """Base of IAM's errors: the caller's fault, 400 unless the code says otherwise."""

    status = 400
    error_type = "User"


class NoSuchEntity(IamError, LookupError):
    code = "NoSuchEntity"
    status = 404


class EntityAlreadyExists(IamError):
    code = "EntityAlreadyExists"
    status = 409


class MalformedPolicyDocument(IamError, ValueError):
    code = "MalformedPolicyDocument"


class DeleteConflict(IamError):
    code = "DeleteConflict"
    status = 409


class InvalidInput(IamError, ValueError):
    code = "InvalidInput"


def _no_role(name: str) -> NoSuchEntity:
    return NoSuchEntity(f"The role with name {name} cannot be found.")


def _no_role_policy(name: str) -> NoSuchEntity:
    return NoSuchEntity(f"The role policy with name {name} cannot be found.")


def check_policy_document(document: str) -> None:
    """A policy must be a JSON object with a ``Statement``; IAM refuses anything else."""
    try:
        policy = json.loads(document)
    except ValueError:
        raise MalformedPolicyDocument("This policy contains invalid Json") from None
    if not isinstance(policy, dict) or "Statement" not in policy:
        raise MalformedPolicyDocument("Syntax errors in policy.")


def _policy_name(arn: str) -> str:
    match = _POLICY_ARN.match(arn)
    if match is None:
        raise InvalidInput(f"ARN {arn} is not valid.")
    return match.group(2)


class IamService:
    """Create, read, list and delete roles; attach, detach, put and delete their policies."""

    def __init__(self, store: RoleStore, account_id: str) -> None:
        self.store = store
        self.account_id = account_id

    def arn(self, role: StoredRole) -> str:
        return f"arn:aws:iam::{self.account_id}:role{role.path}{role.name}"

    def describe(self, role: StoredRole, *, full: bool = True) -> dict[str, Any]:
        """The ``Role`` shape. ``full`` adds what GetRole/CreateRole return and ListRoles leaves out."""
        shape: dict[str, Any] = {
            "Path": role.path,
            "RoleName": role.name,
            "RoleId": role.role_id,
            "Arn": self.arn(role),
            "CreateDate": role.created,
            # IAM returns policy documents URL-encoded; botocore decodes them back into dicts.
            "AssumeRolePolicyDocument": quote(role.assume_role_policy, safe=""),
            "Description": role.description,
            "MaxSessionDuration": role.max_session_duration,
        }
        if full:
            shape["Tags"] = role.tags or None
            shape["RoleLastUsed"] = {}
        return shape

    def create_role(
        self,
        name: str,
        assume_role_policy: str,
        path: str = "/",
        description: str | None = None,
        max_session_duration: int = 3600,
        tags: list[dict[str, str]] | None = None,
    ) -> StoredRole:
        check_policy_document(assume_role_policy)
        role = StoredRole(
            name=name,
            role_id="AROA" + "".join(secrets.choice(ROLE_ID_ALPHABET) for _ in range(17)),
            path=path,
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            assume_role_policy=assume_role_policy,
            description=description,
            max_session_duration=max_session_duration,
            tags=list(tags or []),
        )
        if not self.store.insert(role):
            raise EntityAlreadyExists(f"Role with name {name} already exists.")
        return role

    def get_role(self, name: str) -> StoredRole:
        role = self.store.get(name)
        if role is None:
            raise _no_role(name)
        return role

    def delete_role(self, name: str) -> None:
        def check(role: StoredRole) -> None:
            if role.attached:
                raise DeleteConflict("Cannot delete entity, must detach all policies first.")
            if role.policies:
                raise DeleteConflict("Cannot delete entity, must delete policies first.")

        if not self.store.delete(name, check):
            raise _no_role(name)

    def list_roles(self, path_prefix: str = "/") -> list[StoredRole]:
        return [role for role in self.store.list() if role.path.startswith(path_prefix)]

    def _update(self, name: str, change: Any) -> None:
        if self.store.update(name, change) is None:
            raise _no_role(name)

    def attach_role_policy(self, name: str, policy_arn: str) -> None:
        _policy_name(policy_arn)

        def attach(role: StoredRole) -> None:
            if policy_arn not in role.attached:
                role.attached.append(policy_arn)

        self._update(name, attach)

    def detach_role_policy(self, name: str, policy_arn: str) -> None:
        _policy_name(policy_arn)

        def detach(role: StoredRole) -> None:
            if policy_arn not in role.attached:
                raise NoSuchEntity(f"Policy {policy_arn} was not found.")
            role.attached.remove(policy_arn)

        self._update(name, detach)

    def attached_policies(self, name: str) -> list[dict[str, str]]:
        return [{"PolicyName": _policy_name(arn), "PolicyArn": arn} for arn in self.get_role(name).attached]

    def put_role_policy(self, name: str, policy_name: str, document: str) -> None:
        check_policy_document(document)

        def put(role: StoredRole) -> None:
            role.policies[policy_name] = document

        self._update(name, put)

    def delete_role_policy(self, name: str, policy_name: str) -> None:
        def delete(role: StoredRole) -> None:
            if role.policies.pop(policy_name, None) is None:
                raise _no_role_policy(policy_name)

        self._update(name, delete)

    def role_policy(self, name: str, policy_name: str) -> str:
        document = self.get_role(name).policies.get(policy_name)
        if document is None:
            raise _no_role_policy(policy_name)
        return document

    def role_policy_names(self, name: str) -> list[str]:
        return sorted(self.get_role(name).policies)
