"""Who signed a request: the root key pair, or the key pair one function's sandboxes were given.

Functions get credentials of their own, as Lambda gives them an execution role's: derived from the
root secret and the function's name, so they need no storage and survive nothing but their server.
A function's key is valid for Squall's data services and for invoking functions, never for the
Lambda control plane (it cannot read or change other functions, their code or their variables).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator, Mapping

import msgspec


class Principal(msgspec.Struct, frozen=True):
    """The signer of a request: ``function`` is None for the root key."""

    access_key_id: str
    function: str | None = None


class KeyRing(Mapping[str, str]):
    """Access key id -> secret, for the verifier; plus who each key belongs to."""

    def __init__(self, root_access_key_id: str, root_secret: str) -> None:
        self._root_id = root_access_key_id
        self._root_secret = root_secret
        self._secrets = {root_access_key_id: root_secret}
        self._functions: dict[str, str] = {}

    def for_function(self, name: str) -> tuple[str, str]:
        """The key pair of function ``name`` (the same every time), now accepted by the verifier."""
        digest = hmac.new(self._root_secret.encode(), f"function:{name}".encode(), hashlib.sha256).digest()
        access_key_id = "ASIA" + base64.b32encode(digest[:10]).decode()[:16]
        secret = base64.b64encode(hmac.new(digest, b"secret", hashlib.sha256).digest()).decode()[:40]
        self._secrets[access_key_id] = secret
        self._functions[access_key_id] = name
        return access_key_id, secret

    def principal(self, access_key_id: str | None) -> Principal | None:
        if access_key_id is None:
            return None
        return Principal(access_key_id, self._functions.get(access_key_id))

    def __getitem__(self, access_key_id: str) -> str:
        return self._secrets[access_key_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._secrets)

    def __len__(self) -> int:
        return len(self._secrets)
