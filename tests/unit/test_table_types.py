"""DynamoDB's typed values: number rules, equality, and the sortable key encoding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.services.tables.errors import Validation
from squall.services.tables.types import encode_key, encode_number, equal, format_number, item_size, parse_number

numbers = (
    st.decimals(allow_nan=False, allow_infinity=False, places=None)
    .filter(lambda d: d.is_zero() or -130 <= d.adjusted() <= 125)
    .filter(lambda d: len(d.normalize().as_tuple().digits) <= 38)
)


@given(numbers, numbers)
def test_number_encoding_sorts_numerically(a: Decimal, b: Decimal) -> None:
    left, right = encode_number(a), encode_number(b)
    assert (left < right) == (a < b)
    assert (left == right) == (a == b)


@given(st.text(), st.text())
def test_string_keys_sort_by_utf8_bytes(a: str, b: str) -> None:
    assert (encode_key({"S": a}) < encode_key({"S": b})) == (a.encode() < b.encode())


def test_number_rules() -> None:
    assert format_number(parse_number("01.500")) == "1.5"
    assert format_number(parse_number("-0.00")) == "0"
    assert format_number(parse_number("1E+3")) == "1000"
    assert format_number(parse_number("1" * 38)) == "1" * 38
    for text, message in [
        ("1" * 39, "Attempting to store more than 38 significant digits in a Number"),
        ("1E+126", "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        ("1E-131", "Number underflow. Attempting to store a number with magnitude smaller than supported range"),
        ("NaN", "A value provided cannot be converted into a number"),
        ("", "A value provided cannot be converted into a number"),
    ]:
        with pytest.raises(Validation) as info:
            parse_number(text)
        assert info.value.message == message


def test_equality_and_size() -> None:
    assert equal({"N": "1.0"}, {"N": "1"})
    assert equal({"SS": ["a", "b"]}, {"SS": ["b", "a"]})
    assert not equal({"S": "1"}, {"N": "1"})
    assert equal({"M": {"a": {"L": [{"N": "1"}]}}}, {"M": {"a": {"L": [{"N": "1.00"}]}}})
    assert item_size({"ab": {"S": "héllo"}}) == 2 + 6
    assert item_size({"a": {"BOOL": True}, "b": {"NULL": True}}) == 4
