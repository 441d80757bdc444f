"""Receipt handles: which queue incarnation, which stored message, and which receive of it.

A handle is the URL-safe base64 of ``<queue id>:<message row>:<nonce>``; every receive draws a new
random nonce, so a handle from an earlier receive is recognisably older than the current one.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from squall.services.queues.errors import ReceiptHandleIsInvalid


class Receipt:
    """A decoded receipt handle."""

    def __init__(self, queue_id: int, row: int, nonce: str) -> None:
        self.queue_id = queue_id
        self.row = row
        self.nonce = nonce


def new_nonce() -> str:
    return secrets.token_hex(8)


def encode(queue_id: int, row: int, nonce: str) -> str:
    return base64.urlsafe_b64encode(f"{queue_id}:{row}:{nonce}".encode()).decode()


def invalid(handle: str) -> ReceiptHandleIsInvalid:
    return ReceiptHandleIsInvalid(f'The input receipt handle "{handle}" is not a valid receipt handle.')


def decode(handle: str) -> Receipt:
    """The parts of ``handle``; ReceiptHandleIsInvalid for anything Squall did not issue."""
    try:
        queue_id, row, nonce = base64.urlsafe_b64decode(handle.encode()).decode().split(":")
        return Receipt(int(queue_id), int(row), nonce)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid(handle) from None
