"""AWS event-stream messages (``application/vnd.amazon.eventstream``), the encoding side.

A message is a prelude (total length, headers length, the prelude's CRC32), the headers, the
payload and a CRC32 of all that came before; every integer is big-endian. Squall only writes
``event`` messages whose headers are strings (header value type 7), which is all a streamed
Lambda response needs.
"""

from __future__ import annotations

import struct
import zlib

_PRELUDE = struct.Struct("!II")
_CRC = struct.Struct("!I")
_STRING = 7


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", _STRING, len(raw_value)) + raw_value


def message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One encoded message with string headers."""
    head = b"".join(_header(name, value) for name, value in headers)
    prelude = _PRELUDE.pack(_PRELUDE.size + _CRC.size + len(head) + len(payload) + _CRC.size, len(head))
    body = prelude + _CRC.pack(zlib.crc32(prelude)) + head + payload
    return body + _CRC.pack(zlib.crc32(body))


def event(event_type: str, payload: bytes, content_type: str = "application/octet-stream") -> bytes:
    """An ``event`` message of the given ``:event-type``."""
    return message([(":event-type", event_type), (":content-type", content_type), (":message-type", "event")], payload)
