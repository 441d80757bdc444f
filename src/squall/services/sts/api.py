"""STS's query-protocol API: GetCallerIdentity, answered from the key that signed the request.

The root key is the account's root user; a function's key is the execution role Squall gives every
function, ``squall-function``, assumed with the function's name as the session name.
"""

from __future__ import annotations

import base64
import hashlib

from starlette.types import Receive, Scope, Send

from squall.api.keyring import KeyRing
from squall.errors import SquallError
from squall.services import query
from squall.services.access import function_arn, function_caller

XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"
VERSION = "2011-06-15"
ROLE_NAME = "squall-function"


class InvalidAction(SquallError, LookupError):
    code = "InvalidAction"
    status = 400
    error_type = "User"


def role_id(account_id: str) -> str:
    """The stable ``AROA...`` id of the ``squall-function`` role of an account."""
    digest = hashlib.sha256(f"{account_id}:{ROLE_NAME}".encode()).digest()
    return "AROA" + base64.b32encode(digest).decode()[:17]


class StsApi:
    """STS's ASGI app."""

    def __init__(self, keyring: KeyRing, account_id: str) -> None:
        self.keyring = keyring
        self.account_id = account_id

    def caller_identity(self, scope: Scope) -> dict[str, str]:
        function = function_caller(self.keyring, scope)
        if function is None:
            return {"Arn": f"arn:aws:iam::{self.account_id}:root", "UserId": self.account_id}
        return {"Arn": function_arn(self.account_id, function), "UserId": f"{role_id(self.account_id)}:{function}"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = query.form(scope)
        action = params.get("Action", "")
        if action != "GetCallerIdentity":
            raise InvalidAction(f"Could not find operation {action} for version {params.get('Version', VERSION)}")
        identity = {**self.caller_identity(scope), "Account": self.account_id}
        await query.send_xml(send, query.render(action, identity, scope.get("squall.request_id", ""), XMLNS))
