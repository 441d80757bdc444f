"""Resource-based policies of functions (AddPermission, RemovePermission, GetPolicy).

Stored and returned in the policy document shape Lambda builds; Squall does not enforce them.
One policy per function and qualifier (a version or alias; the unqualified function is ``""``),
with a revision id that changes on every edit, in their own SQLite file (embedded tier) or the
shared configuration database (scale-out tier).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squall.errors import PreconditionFailed, ResourceConflict, ResourceNotFound, SquallError
from squall.stores.config import PolicyTable, SqlBacked, Statements
from squall.stores.sql import SqlDatabase

#: Lambda's limit on a function's policy document, in bytes.
POLICY_LIMIT = 20480
NOT_FOUND = "The resource you requested does not exist."
#: RemovePermission's message when there is no policy at all.
NO_POLICY = "No policy is associated with the given resource."
_ACCOUNT = re.compile(r"\d{12}")


class PolicyLengthExceeded(SquallError):
    code = "PolicyLengthExceededException"
    status = 400
    error_type = "User"
    message_key = "message"


class PolicyStore(SqlBacked):
    """Policy documents by (function, qualifier) in their own SQLite file, or the shared configuration
    database; safe to share between threads and between servers."""

    def __init__(self, source: Path | SqlDatabase) -> None:
        super().__init__(
            source,
            [
                "CREATE TABLE IF NOT EXISTS policies (function_name TEXT NOT NULL, qualifier TEXT NOT NULL,"
                " statements TEXT NOT NULL, revision_id TEXT NOT NULL, PRIMARY KEY (function_name, qualifier))"
                " WITHOUT ROWID",
            ],
            "Policy store",
        )
        self.table = PolicyTable(self.db, "policies", ("function_name", "qualifier"))

    def get(self, function_name: str, qualifier: str) -> tuple[list[dict[str, Any]], str] | None:
        return self.table.get((function_name, qualifier))

    def edit(self, function_name: str, qualifier: str, change: Callable[[Statements, str | None], Statements]) -> str:
        """Replace the statements by ``change(statements, revision)`` (none left: drop the policy)."""
        return self.table.edit((function_name, qualifier), change)

    def forget(self, function_name: str, qualifier: str | None = None) -> None:
        """Drop a deleted function's policies (or one version's)."""
        self.table.forget((function_name, qualifier))


def document(statements: list[dict[str, Any]]) -> str:
    """The policy document as GetPolicy returns it (a JSON string)."""
    return json.dumps({"Version": "2012-10-17", "Id": "default", "Statement": statements}, separators=(",", ":"))


def statement(request: dict[str, Any], resource_arn: str) -> dict[str, Any]:
    """The statement AddPermission adds, built from its (validated) request members."""
    principal = str(request["Principal"])
    shown: Any
    if principal == "*":
        shown = "*"
    elif _ACCOUNT.fullmatch(principal):
        shown = {"AWS": f"arn:aws:iam::{principal}:root"}
    elif principal.startswith("arn:"):
        shown = {"AWS": principal}
    else:
        shown = {"Service": principal}
    body: dict[str, Any] = {
        "Sid": request["StatementId"],
        "Effect": "Allow",
        "Principal": shown,
        "Action": request["Action"],
        "Resource": resource_arn,
    }
    equals: dict[str, str] = {}
    if request.get("SourceAccount"):
        equals["AWS:SourceAccount"] = request["SourceAccount"]
    if request.get("PrincipalOrgID"):
        equals["aws:PrincipalOrgID"] = request["PrincipalOrgID"]
    if request.get("EventSourceToken"):
        equals["lambda:EventSourceToken"] = request["EventSourceToken"]
    if request.get("FunctionUrlAuthType"):
        equals["lambda:FunctionUrlAuthType"] = request["FunctionUrlAuthType"]
    condition: dict[str, Any] = {}
    if equals:
        condition["StringEquals"] = equals
    if request.get("SourceArn"):
        condition["ArnLike"] = {"AWS:SourceArn": request["SourceArn"]}
    if condition:
        body["Condition"] = condition
    return body


def check_revision(given: str | None, current: str | None, read_api: str) -> None:
    """PreconditionFailed unless ``given`` (if any) is the policy's current revision id."""
    if given is not None and given != current:
        raise PreconditionFailed(
            "The Revision Id provided does not match the latest Revision Id. "
            f"Call the {read_api} API to retrieve the latest Revision Id"
        )


def with_statement(statements: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements with ``new`` added: its Sid must be new, the document within the size limit."""
    if any(s.get("Sid") == new["Sid"] for s in statements):
        raise ResourceConflict(
            f"The statement id ({new['Sid']}) provided already exists. Please provide a new statement id, "
            "or remove the existing statement."
        )
    added = [*statements, new]
    size = len(document(added).encode())
    if size > POLICY_LIMIT:
        raise PolicyLengthExceeded(f"The final policy size ({size}) is bigger than the limit ({POLICY_LIMIT}).")
    return added


def without_statement(statements: list[dict[str, Any]], sid: str) -> list[dict[str, Any]]:
    """The statements without the one whose Sid is ``sid``; ResourceNotFound if there is none."""
    kept = [s for s in statements if s.get("Sid") != sid]
    if len(kept) == len(statements):
        raise ResourceNotFound(f"Statement {sid} is not found in resource policy.")
    return kept


class Policies:
    """AddPermission / RemovePermission / GetPolicy over a ``PolicyStore``."""

    def __init__(self, store: PolicyStore) -> None:
        self.store = store

    def add(self, function_name: str, qualifier: str, new: dict[str, Any], revision_id: str | None) -> None:
        def add(statements: Statements, revision: str | None) -> Statements:
            check_revision(revision_id, revision, "GetPolicy")
            return with_statement(statements, new)

        self.store.edit(function_name, qualifier, add)

    def remove(self, function_name: str, qualifier: str, sid: str, revision_id: str | None) -> None:
        def remove(statements: Statements, revision: str | None) -> Statements:
            if revision is None:
                raise ResourceNotFound(NO_POLICY)
            check_revision(revision_id, revision, "GetPolicy")
            return without_statement(statements, sid)

        self.store.edit(function_name, qualifier, remove)

    def get(self, function_name: str, qualifier: str) -> tuple[str, str]:
        current = self.store.get(function_name, qualifier)
        if current is None:
            raise ResourceNotFound(NOT_FOUND)
        statements, revision = current
        return document(statements), revision
