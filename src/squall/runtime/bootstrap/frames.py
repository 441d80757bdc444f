"""Length-prefixed frames between Squall and a native sandbox.

A frame is a JSON header plus an opaque body (the event or the response payload), so payloads
cross the pipe as raw bytes without base64. Standard library only: this module runs inside the
sandbox interpreter, which may be another Python version than the server's.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

_PREFIX = struct.Struct("!II")
PREFIX_SIZE = _PREFIX.size


def encode(header: dict[str, Any], body: bytes = b"") -> bytes:
    """One frame as bytes: prefix (header and body lengths), JSON header, body."""
    head = json.dumps(header, separators=(",", ":")).encode()
    return _PREFIX.pack(len(head), len(body)) + head + body


def decode_prefix(prefix: bytes) -> tuple[int, int]:
    """The (header length, body length) announced by a frame's prefix."""
    head_len, body_len = _PREFIX.unpack(prefix)
    return int(head_len), int(body_len)


def read(stream: BinaryIO) -> tuple[dict[str, Any], bytes] | None:
    """Read one frame from a blocking stream; None at end of stream."""
    prefix = _read_exactly(stream, PREFIX_SIZE)
    if prefix is None:
        return None
    head_len, body_len = decode_prefix(prefix)
    head = _read_exactly(stream, head_len)
    body = _read_exactly(stream, body_len) if body_len else b""
    if head is None or body is None:
        return None
    header: dict[str, Any] = json.loads(head)
    return header, body


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
