"""What a sent message may contain: its body's characters, its attributes, its size."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from squall.services.queues.errors import InvalidMessageContents, InvalidParameterValue

MAX_ATTRIBUTES = 10
_BAD_CHARACTER = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
_TYPE_PREFIXES = ("String", "Number", "Binary")
#: Attributes as stored and sent on the wire: ``DataType`` plus ``StringValue`` or base64 ``BinaryValue``.
Attributes = dict[str, dict[str, str]]


def check_body(body: str) -> None:
    if _BAD_CHARACTER.search(body):
        raise InvalidMessageContents(
            "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | "
            "#xE000 to #xFFFD | #x10000 to #x10FFFF"
        )


def attributes(raw: Mapping[str, Any] | None, system: bool = False) -> Attributes:
    """Validated message (or, with ``system``, message system) attributes in their wire form."""
    kind = "system" if system else "user"
    result: Attributes = {}
    items = dict(raw or {})
    if len(items) > MAX_ATTRIBUTES:
        # unverified: wording of the attribute-count limit
        raise InvalidParameterValue(
            f"Number of message attributes [{len(items)}] exceeds the allowed maximum [{MAX_ATTRIBUTES}]."
        )
    for name, value in items.items():
        if system and name != "AWSTraceHeader":
            # unverified: wording for an unsupported system attribute
            raise InvalidParameterValue(f"Message system attribute name '{name}' is invalid.")
        if (
            not _NAME.fullmatch(name) or name.startswith((".", "AWS.", "Amazon.")) or name.endswith(".") or ".." in name
        ) and not system:
            # unverified: wording for a malformed attribute name
            raise InvalidParameterValue(f"Message ({kind}) attribute name '{name}' is invalid.")
        data_type = str((value or {}).get("DataType") or "")
        if not data_type.startswith(_TYPE_PREFIXES):
            # unverified: wording for a data type without a known prefix
            raise InvalidParameterValue(
                f"The type of message ({kind}) attribute '{name}' is invalid. You must use only the following "
                "supported type prefixes: Binary, Number, String."
            )
        base = data_type.split(".", 1)[0]
        if base == "Binary":
            blob = value.get("BinaryValue")
            try:
                decoded = base64.b64decode(blob or "", validate=True)
            except (binascii.Error, ValueError, TypeError):
                decoded = b""
            if not decoded:
                raise InvalidParameterValue(
                    f"Message ({kind}) attribute '{name}' must contain a non-empty value of type 'Binary'."
                )
            result[name] = {"DataType": data_type, "BinaryValue": base64.b64encode(decoded).decode()}
            continue
        text = value.get("StringValue")
        if not text:
            raise InvalidParameterValue(
                f"Message ({kind}) attribute '{name}' must contain a non-empty value of type '{base}'."
            )
        if base == "Number":
            try:
                Decimal(str(text))
            except InvalidOperation:
                # unverified: wording for a Number attribute that is not a number
                raise InvalidParameterValue(f"Could not cast message attribute '{name}' value to number.") from None
        check_body(str(text))
        result[name] = {"DataType": data_type, "StringValue": str(text)}
    return result


def decoded(attrs: Attributes) -> dict[str, dict[str, Any]]:
    """Attributes with binary values as bytes, the form the checksum is computed over."""
    return {
        name: {"DataType": v["DataType"], "BinaryValue": base64.b64decode(v["BinaryValue"])}
        if "BinaryValue" in v
        else dict(v)
        for name, v in attrs.items()
    }


def size_of(body: str, attrs: Attributes) -> int:
    """A message's size as SQS counts it against MaximumMessageSize: body plus attribute names, types and values."""
    total = len(body.encode("utf-8"))
    for name, value in decoded(attrs).items():
        total += len(name.encode("utf-8")) + len(value["DataType"].encode("utf-8"))
        raw = value.get("BinaryValue")
        total += len(raw) if isinstance(raw, bytes) else len(str(value["StringValue"]).encode("utf-8"))
    return total
