"""The lark grammar of table expressions: errors are reported where a reader meets them, as AWS does."""

from __future__ import annotations

from typing import Any

import pytest

from squall.services.tables.errors import Validation
from squall.services.tables.expressions import Placeholders, parse_condition, parse_update

VALUES: dict[str, Any] = {":v": {"S": "x"}, ":n": {"N": "1"}, ":m": {"M": {}}}


def condition_error(text: str) -> str:
    with pytest.raises(Validation) as info:
        parse_condition(text, "ConditionExpression", Placeholders({}, VALUES))
    return info.value.message.removeprefix("Invalid ConditionExpression: ")


def update_error(text: str) -> str:
    with pytest.raises(Validation) as info:
        parse_update(text, Placeholders({}, VALUES))
    return info.value.message.removeprefix("Invalid UpdateExpression: ")


def test_names_and_placeholders_are_checked_before_later_syntax_errors() -> None:
    assert condition_error("status = :v AND )") == "Attribute name is a reserved keyword; reserved keyword: status"
    assert condition_error("a = :nope )") == (
        "An expression attribute value used in expression is not defined; attribute value: :nope"
    )
    assert condition_error("#nope = :v )") == (
        "An expression attribute name used in the document path is not defined; attribute name: #nope"
    )
    assert condition_error("foo(:nope) )") == "Invalid function name; function: foo"
    assert update_error("REMOVE a REMOVE status") == (
        'The "REMOVE" section can only be used once in an update expression;'
    )
    assert update_error("ADD a :v )") == (
        "Incorrect operand type for operator or function; operator: ADD, operand type: STRING, "
        "typeSet: ALLOWED_FOR_ADD_OPERAND"
    )
    assert condition_error(":m < a )") == (
        "Incorrect operand type for operator or function; operator or function: <, operand type: M"
    )


def test_a_syntax_error_comes_first_when_it_comes_first() -> None:
    assert condition_error(") status = :v") == 'Syntax error; token: ")", near: ") status"'
    assert condition_error("a = :v :nope") == 'Syntax error; token: ":nope", near: ":v :nope"'


def test_function_calls_are_checked_as_soon_as_they_close() -> None:
    assert condition_error("attribute_exists(a, b) AND )") == (
        "Incorrect number of operands for operator or function; operator or function: attribute_exists, "
        "number of operands: 2"
    )
    assert condition_error("begins_with(:v, a) :n") == (
        "Operator or function requires a document path; operator or function: begins_with"
    )


def test_a_call_opening_a_condition_is_compared_only_if_it_is_size() -> None:
    assert condition_error("contains(a, :v) > :n") == 'Syntax error; token: ">", near: ") > :n"'
    assert condition_error("size(a) AND b = :v") == 'Syntax error; token: "AND", near: ") AND b"'
    assert condition_error("size(a)") == 'Syntax error; token: "<EOF>", near: ")"'
    assert condition_error("list_append(a, b) = :v") == (
        "The function is not allowed in a condition expression; function: list_append"
    )
    assert condition_error("a = attribute_exists(b)") == (
        "The function is not allowed to be used this way in an expression; function: attribute_exists"
    )


def test_keywords_are_case_insensitive_and_whole_words() -> None:
    tree = parse_condition("notes = :v and not b = :v", "C", Placeholders({}, VALUES))
    assert type(tree).__name__ == "And"
    assert update_error("set a = :v SET b = :v") == 'The "SET" section can only be used once in an update expression;'
    assert update_error("SET a = if_not_exists(a)") == 'Syntax error; token: ")", near: "a)"'
