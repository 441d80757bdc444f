"""The table service's expression parser and evaluator (conditions, updates, projections)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squall.services.tables.errors import Validation
from squall.services.tables.evaluator import apply_update, matches, project
from squall.services.tables.expressions import (
    And,
    Compare,
    Literal,
    Not,
    Or,
    Path,
    Placeholders,
    parse_condition,
    parse_projection,
    parse_update,
)

ITEM: dict[str, Any] = {
    "id": {"S": "k"},
    "n": {"N": "5"},
    "s": {"S": "hello"},
    "b": {"B": "AAEC"},
    "flag": {"BOOL": True},
    "tags": {"SS": ["x", "y"]},
    "nums": {"NS": ["1", "2.5"]},
    "lst": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"deep": {"S": "d"}}}]},
    "m": {"M": {"innr": {"M": {"v": {"N": "7"}}}, "with space": {"S": "ok"}}},
}


def holders(values: dict[str, Any] | None = None, names: dict[str, str] | None = None) -> Placeholders:
    return Placeholders(names or {}, values or {})


def check(expression: str, values: dict[str, Any] | None = None, names: dict[str, str] | None = None) -> bool:
    return matches(parse_condition(expression, "ConditionExpression", holders(values, names)), ITEM)


def error(expression: str, kind: str = "condition", **values: Any) -> str:
    with pytest.raises(Validation) as info:
        if kind == "condition":
            parse_condition(expression, "ConditionExpression", holders(values))
        elif kind == "update":
            parse_update(expression, holders(values))
        else:
            parse_projection(expression, holders(values))
    return info.value.message


def test_precedence_and_structure() -> None:
    tree = parse_condition("a = :x OR NOT b = :x AND (c = :x)", "ConditionExpression", holders({":x": {"S": "v"}}))
    assert isinstance(tree, Or)
    assert isinstance(tree.right, And)
    assert isinstance(tree.right.left, Not)
    assert tree.left == Compare("=", Path(("a",)), Literal(":x", {"S": "v"}))


def test_paths_and_placeholders() -> None:
    used = holders({":v": {"N": "7"}}, {"#m": "m", "#sp": "with space", "#unused": "x"})
    condition = parse_condition("#m.innr.v = :v AND lst[2].deep = lst[2].deep AND #m.#sp = #m.#sp", "C", used)
    assert matches(condition, ITEM)
    assert used.used_names == {"#m", "#sp"}
    with pytest.raises(Validation) as info:
        used.check_all_used()
    assert info.value.message == "Value provided in ExpressionAttributeNames unused in expressions: keys: {#unused}"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("n = :five", True),
        ("n = :five_dot", True),
        ("n <> :five", False),
        ("n < :six", True),
        ("n >= :six", False),
        ("s > :str", True),  # "hello" > "abc"
        ("n < :str", False),  # different types never compare
        ("n BETWEEN :five AND :six", True),
        ("n IN (:six, :five)", True),
        ("absent_attr = :five", False),
        ("absent_attr <> :five", True),
        ("attribute_exists(m.innr.v) AND attribute_not_exists(m.innr.w)", True),
        ("attribute_type(nums, :ns)", True),
        ("begins_with(s, :he)", True),
        ("begins_with(n, :he)", False),
        ("contains(s, :ll) AND contains(tags, :x) AND contains(nums, :twofive) AND contains(lst, :one)", True),
        ("contains(tags, :five)", False),
        ("size(s) = :five AND size(tags) < :six AND size(lst) = :three AND size(b) = :three", True),
        ("size(n) = :five", False),
        ("flag = :t", True),
        ("NOT (n = :five OR n = :six)", False),
    ],
)
def test_condition_semantics(expression: str, expected: bool) -> None:
    values = {
        ":five": {"N": "5"},
        ":five_dot": {"N": "5.00"},
        ":six": {"N": "6"},
        ":three": {"N": "3"},
        ":one": {"N": "1"},
        ":twofive": {"N": "2.5"},
        ":str": {"S": "abc"},
        ":he": {"S": "he"},
        ":ll": {"S": "ll"},
        ":x": {"S": "x"},
        ":ns": {"S": "NS"},
        ":t": {"BOOL": True},
    }
    used = {k: v for k, v in values.items() if k in expression}
    assert check(expression, used) is expected


def test_condition_errors() -> None:
    assert error("") == "Invalid ConditionExpression: The expression can not be empty;"
    assert error("a = ") == 'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "="'
    assert error("a == :v", v={"S": "x"}).startswith('Invalid ConditionExpression: Syntax error; token: "="')
    assert error("foo(a)") == "Invalid ConditionExpression: Invalid function name; function: foo"
    assert error("status = :v", **{":v": {"S": "x"}}) == (
        "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status"
    )
    assert error("a = :nope") == (
        "Invalid ConditionExpression: An expression attribute value used in expression is not defined; "
        "attribute value: :nope"
    )
    assert error("attribute_exists(a, b)") == (
        "Invalid ConditionExpression: Incorrect number of operands for operator or function; "
        "operator or function: attribute_exists, number of operands: 2"
    )
    assert error("begins_with(a, :n)", **{":n": {"N": "1"}}) == (
        "Invalid ConditionExpression: Incorrect operand type for operator or function; "
        "operator or function: begins_with, operand type: N"
    )
    assert error("attribute_type(a, :t)", **{":t": {"S": "XX"}}).startswith(
        "Invalid ConditionExpression: Invalid attribute type name found; type: XX, valid types:"
    )
    assert error("a < :m", **{":m": {"M": {}}}) == (
        "Invalid ConditionExpression: Incorrect operand type for operator or function; "
        "operator or function: <, operand type: M"
    )


def test_update_parsing_errors() -> None:
    assert error("SET a = :v, a.b = :v", "update", **{":v": {"S": "x"}}) == (
        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these "
        "paths; path one: [a], path two: [a, b]"
    )
    assert error("SET a[0] = :v REMOVE a.b", "update", **{":v": {"S": "x"}}) == (
        "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these "
        "paths; path one: [a, [0]], path two: [a, b]"
    )
    assert error("REMOVE a REMOVE b", "update") == (
        'Invalid UpdateExpression: The "REMOVE" section can only be used once in an update expression;'
    )
    assert error("ADD a :s", "update", **{":s": {"S": "x"}}) == (
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, "
        "operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND"
    )
    assert error("DELETE a :n", "update", **{":n": {"N": "1"}}) == (
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, "
        "operand type: NUMBER, typeSet: ALLOWED_FOR_DELETE_OPERAND"
    )
    assert error("SET a = list_append(:n, b)", "update", **{":n": {"N": "1"}}) == (
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: "
        "list_append, operand type: N"
    )
    assert error("SET a = if_not_exists(:n, b)", "update", **{":n": {"N": "1"}}) == (
        "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists"
    )
    assert error("UPSERT a = :n", "update", **{":n": {"N": "1"}}) == (
        'Invalid UpdateExpression: Syntax error; token: "UPSERT", near: "UPSERT a"'
    )


def update(item: dict[str, Any], expression: str, **values: Any) -> dict[str, Any]:
    return apply_update(item, parse_update(expression, holders(values)), ("id",))


def test_update_actions() -> None:
    with pytest.raises(Validation) as info:
        update(ITEM, "SET newlist[3] = :one", **{":one": {"N": "1"}})
    assert info.value.message == "The document path provided in the update expression is invalid for update"
    changed = update(
        ITEM,
        "SET n = n + :one, s = if_not_exists(absent, :word), lst = list_append(:pre, lst), m.innr.v = :one "
        "REMOVE flag, b ADD nums :more, tally :one DELETE tags :x",
        **{
            ":one": {"N": "1"},
            ":word": {"S": "w"},
            ":x": {"SS": ["x"]},
            ":pre": {"L": [{"S": "first"}]},
            ":more": {"NS": ["3", "1"]},
        },
    )
    assert changed["n"] == {"N": "6"}
    assert changed["s"] == {"S": "w"}
    assert changed["lst"]["L"][0] == {"S": "first"} and len(changed["lst"]["L"]) == 4
    assert changed["m"]["M"]["innr"]["M"]["v"] == {"N": "1"}
    assert "flag" not in changed and "b" not in changed
    assert changed["nums"] == {"NS": ["1", "2.5", "3"]}
    assert changed["tally"] == {"N": "1"}
    assert changed["tags"] == {"SS": ["y"]}
    assert ITEM["n"] == {"N": "5"}  # the original is untouched
    removed = update(ITEM, "REMOVE lst[0], lst[2]")
    assert removed["lst"] == {"L": [{"N": "1"}]}
    appended = update(ITEM, "SET lst[10] = :v", **{":v": {"S": "end"}})
    assert appended["lst"]["L"][-1] == {"S": "end"}
    with pytest.raises(Validation) as info:
        update(ITEM, "SET id = :v", **{":v": {"S": "x"}})
    assert info.value.message == (
        "One or more parameter values were invalid: Cannot update attribute id. This attribute is part of the key"
    )
    with pytest.raises(Validation) as info:
        update(ITEM, "SET n = s + :one", **{":one": {"N": "1"}})
    assert info.value.message == "An operand in the update expression has an incorrect data type"
    with pytest.raises(Validation) as info:
        update(ITEM, "SET n = absent + :one", **{":one": {"N": "1"}})
    assert info.value.message == "The provided expression refers to an attribute that does not exist in the item"


def test_projection() -> None:
    paths = parse_projection("m.innr, lst[2].deep, lst[0], s, nada", holders())
    assert project(ITEM, paths) == {
        "m": {"M": {"innr": {"M": {"v": {"N": "7"}}}}},
        "lst": {"L": [{"S": "a"}, {"M": {"deep": {"S": "d"}}}]},
        "s": {"S": "hello"},
    }
    assert error("a, a.b", "projection") == (
        "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of "
        "these paths; path one: [a], path two: [a, b]"
    )


# --- a property test against a reference evaluator ---------------------------------------------------------
ATTRS = ["a", "b", "c"]
_REFERENCE_OPS = {
    "=": lambda x, y: x == y,
    "<>": lambda x, y: x != y,
    "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y,
    ">": lambda x, y: x > y,
    ">=": lambda x, y: x >= y,
}


def conditions(depth: int = 3) -> st.SearchStrategy[tuple[str, Any]]:
    """(expression text, reference predicate over a dict of ints) pairs."""
    comparison = st.builds(
        lambda attr, op, value: (
            f"{attr} {op} :v{value + 5}",
            lambda env, attr=attr, op=op, value=value: (
                (attr in env and _REFERENCE_OPS[op](env[attr], value)) if op != "<>" else env.get(attr) != value
            ),
        ),
        st.sampled_from(ATTRS),
        st.sampled_from(list(_REFERENCE_OPS)),
        st.integers(-5, 5),
    )
    between = st.builds(
        lambda attr, low, span: (
            f"{attr} BETWEEN :v{low + 5} AND :v{low + span + 5}",
            lambda env, attr=attr, low=low, span=span: attr in env and low <= env[attr] <= low + span,
        ),
        st.sampled_from(ATTRS),
        st.integers(-5, 0),
        st.integers(0, 5),
    )
    exists = st.builds(
        lambda attr, negate: (
            f"attribute_{'not_' if negate else ''}exists({attr})",
            lambda env, attr=attr, negate=negate: (attr in env) != negate,
        ),
        st.sampled_from(ATTRS),
        st.booleans(),
    )
    leaf = st.one_of(comparison, between, exists)
    if depth == 0:
        return leaf

    def combine(op: str, left: tuple[str, Any], right: tuple[str, Any]) -> tuple[str, Any]:
        if op == "AND":
            return f"({left[0]}) AND ({right[0]})", lambda env: left[1](env) and right[1](env)
        return f"({left[0]}) OR ({right[0]})", lambda env: left[1](env) or right[1](env)

    sub = conditions(depth - 1)
    return st.one_of(
        leaf,
        st.builds(combine, st.sampled_from(["AND", "OR"]), sub, sub),
        st.builds(lambda c: (f"NOT ({c[0]})", lambda env: not c[1](env)), sub),
    )


@settings(max_examples=300, deadline=None)
@given(conditions(), st.dictionaries(st.sampled_from(ATTRS), st.integers(-6, 6)))
def test_conditions_agree_with_reference(condition: tuple[str, Any], env: dict[str, int]) -> None:
    text, reference = condition
    values = {f":v{i}": {"N": str(i - 5)} for i in range(11)}
    used = Placeholders({}, values)
    item = {name: {"N": str(value)} for name, value in env.items()}
    assert matches(parse_condition(text, "ConditionExpression", used), item) is bool(reference(env))
