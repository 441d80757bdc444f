"""DynamoDB's typed attribute values, in their wire form (``{"S": "x"}``, ``{"N": "1.5"}``...).

Values stay in wire form end to end (requests, SQLite, responses); this module validates and
normalises them, compares them with DynamoDB's rules, sizes items, and encodes key values into bytes
that sort in SQLite exactly as DynamoDB orders range keys (strings and binaries by bytes, numbers
numerically).
"""

from __future__ import annotations

import base64
import binascii
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded, Underflow
from typing import Any

from squall.services.tables.errors import Validation

Value = dict[str, Any]
Item = dict[str, Value]

SCALAR_TYPES = ("S", "N", "B")
SET_TYPES = {"SS": "S", "NS": "N", "BS": "B"}
ALL_TYPES = ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS")
MAX_ITEM_BYTES = 400 * 1024
MAX_HASH_KEY_BYTES = 2048
MAX_RANGE_KEY_BYTES = 1024
MAX_NESTING = 32

#: DynamoDB numbers: 38 significant digits, magnitudes from 1E-130 to below 1E+126.
NUMBER_CONTEXT = Context(prec=38, Emax=125, Emin=-130, traps=[InvalidOperation, Overflow, Underflow, Inexact])
_INVALID = "One or more parameter values were invalid: "


class NumberError(Validation):
    """A number DynamoDB cannot store (too many digits, out of range, or not a number)."""


def parse_number(text: Any) -> Decimal:
    """``text`` as a DynamoDB number; NumberError (with AWS's wording) if it is not one."""
    if not isinstance(text, str):
        raise NumberError("A value provided cannot be converted into a number")
    stripped = text.strip()
    try:
        number = Decimal(stripped)
    except InvalidOperation:
        raise NumberError("A value provided cannot be converted into a number") from None
    if not number.is_finite() or not stripped:
        raise NumberError("A value provided cannot be converted into a number")
    return check_number(number)


def check_number(number: Decimal) -> Decimal:
    """``number`` normalised, if DynamoDB can store it."""
    if number.is_zero():
        return Decimal(0)
    reduced = number.normalize(Context(prec=1000))
    if len(reduced.as_tuple().digits) > 38:
        raise NumberError("Attempting to store more than 38 significant digits in a Number")
    if reduced.adjusted() > 125:
        raise NumberError("Number overflow. Attempting to store a number with magnitude larger than supported range")
    if reduced.adjusted() < -130:
        raise NumberError("Number underflow. Attempting to store a number with magnitude smaller than supported range")
    return reduced


def arithmetic(left: Decimal, right: Decimal, subtract: bool) -> Decimal:
    """``left + right`` (or ``-``) with DynamoDB's precision; NumberError if the result cannot be stored."""
    try:
        result = NUMBER_CONTEXT.subtract(left, right) if subtract else NUMBER_CONTEXT.add(left, right)
    except (Overflow, Underflow):
        raise NumberError(
            "Number overflow. Attempting to store a number with magnitude larger than supported range"
        ) from None
    except (Inexact, Rounded):
        raise NumberError("Attempting to store more than 38 significant digits in a Number") from None
    return check_number(result)


def format_number(number: Decimal) -> str:
    """The canonical text of a number (no exponent, no trailing zeros), as DynamoDB returns it."""
    if number.is_zero():
        return "0"
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def binary(text: Any) -> bytes:
    """The bytes of a ``B`` value (base64 on the wire)."""
    if isinstance(text, bytes | bytearray):
        return bytes(text)
    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise Validation(_INVALID + "Invalid binary value") from None  # unverified: no AWS text found


def type_of(value: Value) -> str:
    return next(iter(value))


def validate_value(value: Any, depth: int = 0) -> Value:
    """A well-formed attribute value, normalised (numbers canonical); Validation with AWS's text otherwise."""
    if not isinstance(value, dict) or not value:
        raise Validation("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")
    if len(value) > 1:
        raise Validation(
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported "
            "datatypes"
        )
    kind, raw = next(iter(value.items()))
    if kind not in ALL_TYPES:
        raise Validation("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")
    if depth > MAX_NESTING:
        raise Validation("Nesting Levels have exceeded supported limits")
    if kind == "S":
        if not isinstance(raw, str):
            raise Validation(_INVALID + "Invalid string value")  # unverified: boto3 validates types first
        return {"S": raw}
    if kind == "N":
        return {"N": format_number(parse_number(raw))}
    if kind == "B":
        binary(raw)
        return {"B": raw}
    if kind == "BOOL":
        return {"BOOL": bool(raw)}
    if kind == "NULL":
        if raw is not True:
            raise Validation(_INVALID + "Null attribute value types must have the value of true")
        return {"NULL": True}
    if kind == "M":
        return {"M": {str(k): validate_value(v, depth + 1) for k, v in dict(raw).items()}}
    if kind == "L":
        return {"L": [validate_value(v, depth + 1) for v in list(raw)]}
    return {kind: _validate_set(kind, list(raw))}


def _validate_set(kind: str, members: list[Any]) -> list[Any]:
    if not members:
        if kind == "BS":
            raise Validation(_INVALID + "Binary sets should not be empty")
        # AWS's own wording, double space included.
        noun = "string" if kind == "SS" else "number"
        raise Validation(_INVALID + f"An {noun} set  may not be empty")
    if kind == "NS":
        normalised: list[Any] = [format_number(parse_number(m)) for m in members]
        keys: list[Any] = [parse_number(m) for m in normalised]
    elif kind == "BS":
        normalised = list(members)
        keys = [binary(m) for m in members]
    else:
        if not all(isinstance(m, str) for m in members):
            raise Validation(_INVALID + "Invalid string set value")  # unverified: boto3 validates types first
        normalised = list(members)
        keys = list(members)
    if len(set(keys)) != len(keys):
        shown = ", ".join(str(m) for m in members)
        raise Validation(_INVALID + f"Input collection [{shown}] contains duplicates.")
    return normalised


def set_keys(value: Value) -> list[Any]:
    """The members of a set value, as comparable Python values."""
    kind = type_of(value)
    members = value[kind]
    if kind == "NS":
        return [Decimal(m) for m in members]
    if kind == "BS":
        return [binary(m) for m in members]
    return list(members)


def equal(a: Value | None, b: Value | None) -> bool:
    """DynamoDB equality: same type and same value (numbers numerically, sets without order)."""
    if a is None or b is None:
        return a is b
    kind = type_of(a)
    if kind != type_of(b):
        return False
    if kind == "N":
        return Decimal(a["N"]) == Decimal(b["N"])
    if kind == "B":
        return binary(a["B"]) == binary(b["B"])
    if kind in SET_TYPES:
        return set(set_keys(a)) == set(set_keys(b))
    if kind == "L":
        return len(a["L"]) == len(b["L"]) and all(equal(x, y) for x, y in zip(a["L"], b["L"], strict=True))
    if kind == "M":
        return a["M"].keys() == b["M"].keys() and all(equal(v, b["M"][k]) for k, v in a["M"].items())
    return bool(a[kind] == b[kind])


def order(a: Value, b: Value) -> int | None:
    """-1, 0 or 1 for two values of the same orderable type (S, N, B); None otherwise."""
    kind = type_of(a)
    if kind != type_of(b) or kind not in SCALAR_TYPES:
        return None
    left, right = scalar(a), scalar(b)
    return int(left > right) - int(left < right)


def scalar(value: Value) -> Any:
    """A comparable Python value for an S, N or B attribute value (strings by their UTF-8 bytes)."""
    kind = type_of(value)
    if kind == "N":
        return Decimal(value["N"])
    if kind == "B":
        return binary(value["B"])
    return str(value["S"]).encode()


def value_size(value: Value) -> int:
    """The bytes a value counts toward the item size limit (DynamoDB's published sizing rules)."""
    kind = type_of(value)
    raw = value[kind]
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return _number_size(raw)
    if kind == "B":
        return len(binary(raw))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(m.encode()) for m in raw)
    if kind == "NS":
        return sum(_number_size(m) for m in raw)
    if kind == "BS":
        return sum(len(binary(m)) for m in raw)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in raw.items())


def _number_size(text: str) -> int:
    digits = len(Decimal(text).as_tuple().digits)
    return (digits + 1) // 2 + 1


def item_size(item: Item) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def encode_key(value: Value) -> bytes:
    """Bytes of a key value (S, N or B) that sort as DynamoDB orders that type."""
    kind = type_of(value)
    if kind == "S":
        return str(value["S"]).encode()
    if kind == "B":
        return binary(value["B"])
    return encode_number(Decimal(value["N"]))


def encode_number(number: Decimal) -> bytes:
    """An order-preserving byte string for a number: a sign byte, the exponent, then the digits
    (complemented, with a high terminator, for negatives so that larger magnitudes sort first)."""
    if number.is_zero():
        return b"\x02"
    reduced = number.normalize(Context(prec=1000))
    sign, digits, _ = reduced.as_tuple()
    exponent = reduced.adjusted() + 1000
    text = bytes(48 + d for d in digits)
    if not sign:
        return b"\x03" + exponent.to_bytes(2, "big") + text
    complemented = bytes(105 - c for c in text)
    return b"\x01" + (65535 - exponent).to_bytes(2, "big") + complemented + b"\xff"
