"""Who may call a companion service: functions' own keys are limited, as an execution role would be."""

from __future__ import annotations

from starlette.types import Scope

from squall.api.keyring import KeyRing


def function_caller(keyring: KeyRing, scope: Scope) -> str | None:
    """The function whose key signed this request, or None for the root key (or no key at all)."""
    principal = keyring.principal(scope.get("squall.access_key"))
    return None if principal is None else principal.function


def function_arn(account_id: str, function: str) -> str:
    """The identity a function's key stands for (STS's assumed-role ARN)."""
    return f"arn:aws:sts::{account_id}:assumed-role/squall-function/{function}"


def not_authorized(account_id: str, function: str, action: str, resource: str) -> str:
    """AWS's wording when no policy allows ``action`` (``iam:GetRole``...) to the caller."""
    return (
        f"User: {function_arn(account_id, function)} is not authorized to perform: {action} on resource: "
        f"{resource} because no identity-based policy allows the {action} action"
    )
