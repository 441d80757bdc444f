"""A published message: validation of what Publish is given, and the documents subscribers receive."""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import UTC, datetime
from typing import Any

import msgspec

from squall.services.topics.errors import InvalidParameter, ParameterValueInvalid

MAX_MESSAGE_BYTES = 256 * 1024
MAX_SUBJECT = 100
MAX_ATTRIBUTES = 10
#: SNS's attribute value as stored: ``DataType`` plus ``StringValue`` or base64 ``BinaryValue``.
Attributes = dict[str, dict[str, str]]


class Message(msgspec.Struct, frozen=True):
    """One accepted publish, as every delivery of it needs it."""

    message_id: str
    topic_arn: str
    message: str
    subject: str | None
    attributes: Attributes
    timestamp: float
    #: MessageStructure=json: the message per protocol (``default`` always present).
    structure: dict[str, str] | None = None
    group_id: str | None = None
    dedup_id: str | None = None
    sequence_number: str | None = None

    def text_for(self, protocol: str) -> str:
        """The message a subscriber of ``protocol`` gets."""
        if self.structure is None:
            return self.message
        return self.structure.get(protocol, self.structure["default"])


def message_attributes(raw: dict[str, dict[str, Any]]) -> Attributes:
    """Validated message attributes; ParameterValueInvalid as SNS reports a bad one."""
    if len(raw) > MAX_ATTRIBUTES:
        # unverified: wording (SNS allows 10 attributes per message)
        raise InvalidParameter(
            f"Invalid parameter: MessageAttributes: Number of message attributes [{len(raw)}] "
            f"exceeds the allowed maximum [{MAX_ATTRIBUTES}]."
        )
    result: Attributes = {}
    for name, value in raw.items():
        data_type = str(value.get("DataType") or "")
        base = data_type.split(".", 1)[0]
        if base not in ("String", "Number", "Binary"):
            raise ParameterValueInvalid(
                f"The message attribute '{name}' has an invalid message attribute type, the set of supported "
                "type prefixes is Binary, Number, and String."
            )
        if base == "Binary":
            try:
                blob = base64.b64decode(value.get("BinaryValue") or "", validate=True)
            except (binascii.Error, ValueError):
                blob = b""
            if not blob:
                raise ParameterValueInvalid(
                    f"The message attribute '{name}' must contain non-empty message attribute value for message "
                    f"attribute type '{base}'."
                )
            result[name] = {"DataType": data_type, "BinaryValue": base64.b64encode(blob).decode()}
            continue
        text = value.get("StringValue")
        if text is None or text == "":
            raise ParameterValueInvalid(
                f"The message attribute '{name}' must contain non-empty message attribute value for message "
                f"attribute type '{base}'."
            )
        if base == "Number" and _number(text) is None:
            raise ParameterValueInvalid(f"Could not cast message attribute '{name}' value to number.")
        if data_type == "String.Array" and not isinstance(_json_or_none(text), list):
            # unverified: wording
            raise ParameterValueInvalid(
                f"The message attribute '{name}' with type 'String.Array' must use field 'String'."
            )
        result[name] = {"DataType": data_type, "StringValue": str(text)}
    return result


def size_of(message: str, attributes: Attributes) -> int:
    """What counts against the 256 KiB limit: the message and every attribute's name, type and value."""
    size = len(message.encode())
    for name, value in attributes.items():
        size += len(name.encode()) + len(value["DataType"].encode())
        size += len((value.get("StringValue") or "").encode())
        if "BinaryValue" in value:
            size += len(base64.b64decode(value["BinaryValue"]))
    return size


def check_message(message: str | None, structure: str | None, subject: str | None) -> dict[str, str] | None:
    """The per-protocol messages of MessageStructure=json (None otherwise); InvalidParameter as SNS."""
    if message is None or message == "":
        raise InvalidParameter("Invalid parameter: Empty message")
    if subject is not None and (
        not subject or len(subject) > MAX_SUBJECT or not subject[0].isprintable() or "\n" in subject
    ):
        raise InvalidParameter("Invalid parameter: Subject")
    if structure is None or structure == "":
        return None
    if structure != "json":
        # unverified: wording
        raise InvalidParameter("Invalid parameter: MessageStructure")
    parsed = _json_or_none(message)
    if not isinstance(parsed, dict):
        raise InvalidParameter("Invalid parameter: Message Structure - JSON message body failed to parse")
    if not isinstance(parsed.get("default"), str):
        raise InvalidParameter("Invalid parameter: Message Structure - No default entry in JSON message body")
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in parsed.items()}


def timestamp(instant: float) -> str:
    """SNS's ``Timestamp``: ISO 8601 in UTC with milliseconds."""
    moment = datetime.fromtimestamp(instant, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def typed_attributes(attributes: Attributes) -> dict[str, dict[str, str]]:
    """Attributes as notifications carry them: ``{"Type": ..., "Value": ...}`` (binary as base64)."""
    return {
        name: {"Type": value["DataType"], "Value": value.get("StringValue", value.get("BinaryValue", ""))}
        for name, value in attributes.items()
    }


def filter_view(attributes: Attributes) -> dict[str, Any]:
    """What a MessageAttributes-scoped filter policy sees: strings, numbers, arrays; binary is invisible."""
    view: dict[str, Any] = {}
    for name, value in attributes.items():
        data_type = value["DataType"]
        if data_type.startswith("Binary"):
            continue
        text = value["StringValue"]
        if data_type.startswith("Number"):
            view[name] = _number(text)
        elif data_type == "String.Array":
            view[name] = _json_or_none(text)
        else:
            view[name] = text
    return view


def body_view(message: str) -> dict[str, Any] | None:
    """What a MessageBody-scoped filter policy sees: the message as a JSON object, if it is one."""
    parsed = _json_or_none(message)
    return parsed if isinstance(parsed, dict) else None


def _number(text: str) -> float | int | None:
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
