"""The MD5 digests SQS returns with every message, computed as SQS computes them.

``MD5OfMessageBody`` is the MD5 of the body's UTF-8 bytes. ``MD5OfMessageAttributes`` (and
``MD5OfMessageSystemAttributes``) hash the attributes sorted by name, each as: the name and the data
type, each a 4-byte big-endian length followed by its UTF-8 bytes; then one transport byte (1 for a
string value, 2 for a binary one) and the value, again length-prefixed. SDKs that check these digests
(the Java and .NET SDKs do) reject a response whose digest differs.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from typing import Any

_STRING = b"\x01"
_BINARY = b"\x02"


def md5_of_body(body: str) -> str:
    return hashlib.md5(body.encode("utf-8")).hexdigest()


def _prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def md5_of_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """The digest of message attributes in their decoded form: ``StringValue`` a str,
    ``BinaryValue`` bytes."""
    digest = hashlib.md5()
    for name in sorted(attributes, key=lambda n: n.encode("utf-8")):
        value = attributes[name]
        digest.update(_prefixed(name.encode("utf-8")))
        digest.update(_prefixed(str(value["DataType"]).encode("utf-8")))
        if value.get("StringValue") is not None:
            digest.update(_STRING + _prefixed(str(value["StringValue"]).encode("utf-8")))
        else:
            digest.update(_BINARY + _prefixed(bytes(value["BinaryValue"])))
    return digest.hexdigest()
