"""SQS's message digests, against values real SQS returned (recorded by LocalStack's parity tests)."""

from __future__ import annotations

import base64

import pytest

from squall.errors import SquallError
from squall.services.queues import checksums, messages


def string_attrs(**values: str) -> dict[str, dict[str, str]]:
    return {name.replace("_", "."): {"DataType": "String", "StringValue": v} for name, v in values.items()}


def test_body_digest() -> None:
    assert checksums.md5_of_body("msg") == "6e2baaf3b97dbeef01c0043275f9a0e7"
    assert checksums.md5_of_body("test") == "098f6bcd4621d373cade4e832627b4f6"


@pytest.mark.parametrize(
    ("attrs", "digest"),
    [
        (string_attrs(General="Kenobi", Hello="There", Help_Me="Me"), "4c360f3fdafd970e05fae2f149d997f5"),
        (string_attrs(General="Kenobi", Hello="There"), "fca026605781cb4126a1e9044df24232"),
        (string_attrs(Hello="There"), "a311262e065454b75da111d535b8dacd"),
        (string_attrs(Hello="There", Help_Me="Me"), "83fee93c1bcd8b9a5a923ffacdc636c7"),
        (string_attrs(Foo="Bar"), "ae7155c6026991b6d54b11589678bf9c"),
    ],
)
def test_attribute_digest_matches_sqs(attrs: dict[str, dict[str, str]], digest: str) -> None:
    assert checksums.md5_of_attributes(attrs) == digest


def test_attribute_digest_does_not_depend_on_order_and_marks_binary() -> None:
    forward = {"a": {"DataType": "String", "StringValue": "x"}, "b": {"DataType": "Binary", "BinaryValue": b"x"}}
    backward = dict(reversed(list(forward.items())))
    assert checksums.md5_of_attributes(forward) == checksums.md5_of_attributes(backward)
    as_string = {"a": forward["a"], "b": {"DataType": "Binary", "StringValue": "x"}}
    assert checksums.md5_of_attributes(forward) != checksums.md5_of_attributes(as_string)


def test_attributes_are_validated_and_binary_kept_as_base64() -> None:
    wire = {"blob": {"DataType": "Binary", "BinaryValue": base64.b64encode(b"\x00\x01").decode()}}
    assert messages.attributes(wire) == wire
    assert messages.decoded(wire)["blob"]["BinaryValue"] == b"\x00\x01"
    with pytest.raises(SquallError, match="must contain a non-empty value of type 'String'"):
        messages.attributes({"ErrorDetails": {"DataType": "String", "StringValue": ""}})
    with pytest.raises(SquallError, match="supported type prefixes"):
        messages.attributes({"x": {"DataType": "Text", "StringValue": "v"}})
    with pytest.raises(SquallError, match="to number"):
        messages.attributes({"x": {"DataType": "Number", "StringValue": "ten"}})
    with pytest.raises(SquallError):
        messages.attributes({"AWS.reserved": {"DataType": "String", "StringValue": "v"}})


def test_body_characters_and_size() -> None:
    messages.check_body("tab\tnewline\nemoji \U0001f600")
    with pytest.raises(SquallError, match="Invalid characters found"):
        messages.check_body("bell \x07")
    attrs = {"k": {"DataType": "String", "StringValue": "vv"}}
    assert messages.size_of("héllo", attrs) == 6 + 1 + 6 + 2
