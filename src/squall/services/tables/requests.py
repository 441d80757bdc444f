"""Turning item requests (as boto3 sends them) into the service's operations.

Validates the placeholders and typed values of a request, parses its expressions, and checks a
Query's key condition against the key schema of the table or index it reads, with AWS's messages.
"""

from __future__ import annotations

from typing import Any

from squall.api.validation import Violations
from squall.services.tables.errors import Validation
from squall.services.tables.expressions import (
    And,
    Between,
    Compare,
    Condition,
    Function,
    Literal,
    Path,
    Placeholders,
    Update,
    parse_condition,
    parse_projection,
    parse_update,
)
from squall.services.tables.reads import RangeCondition
from squall.services.tables.schema import KeyAttr, TableDef, raise_violations
from squall.services.tables.service import WriteOp
from squall.services.tables.types import Item, Value, type_of, validate_value

EXPRESSION_PARAMS = (
    "ConditionExpression",
    "UpdateExpression",
    "ProjectionExpression",
    "KeyConditionExpression",
    "FilterExpression",
)


LEGACY_PARAMS = (
    "AttributesToGet",
    "KeyConditions",
    "QueryFilter",
    "ScanFilter",
    "Expected",
    "AttributeUpdates",
    "ConditionalOperator",
)


def reject_legacy(params: dict[str, Any]) -> None:
    """Refuse the pre-expression parameters loudly rather than ignore them (Squall does not implement them)."""
    for name in LEGACY_PARAMS:
        if params.get(name) is not None:
            raise Validation(f"Squall does not support the legacy parameter {name}; use the expression parameters")


def item_of(raw: Any) -> Item:
    """A validated, normalised item (or key) from a request."""
    return {str(name): validate_value(value) for name, value in dict(raw or {}).items()}


def placeholders(params: dict[str, Any]) -> Placeholders:
    """The request's ExpressionAttributeNames/Values, validated as DynamoDB does."""
    names = params.get("ExpressionAttributeNames")
    values = params.get("ExpressionAttributeValues")
    uses_expressions = any(params.get(p) is not None for p in EXPRESSION_PARAMS)
    if names is not None:
        if not uses_expressions:
            raise Validation("ExpressionAttributeNames can only be specified when using expressions")
        if not names:
            raise Validation("ExpressionAttributeNames must not be empty")
        for key in names:
            if not key.startswith("#") or len(key) < 2:
                raise Validation(f'ExpressionAttributeNames contains invalid key: Syntax error; key: "{key}"')
    checked: dict[str, Value] = {}
    if values is not None:
        if not uses_expressions:
            raise Validation("ExpressionAttributeValues can only be specified when using expressions")
        if not values:
            raise Validation("ExpressionAttributeValues must not be empty")
        for key, value in values.items():
            if not key.startswith(":") or len(key) < 2:
                raise Validation(f'ExpressionAttributeValues contains invalid key: Syntax error; key: "{key}"')
            try:
                checked[key] = validate_value(value)
            except Validation as exc:
                raise Validation(
                    f"ExpressionAttributeValues contains invalid value: {exc.message} for key {key}"
                ) from None
    return Placeholders(dict(names or {}), checked)


def condition_of(params: dict[str, Any], holders: Placeholders, name: str = "ConditionExpression") -> Condition | None:
    text = params.get(name)
    return None if text is None else parse_condition(str(text), name, holders)


def projection_of(params: dict[str, Any], holders: Placeholders) -> list[Path] | None:
    text = params.get("ProjectionExpression")
    return None if text is None else parse_projection(str(text), holders)


def update_of(params: dict[str, Any], holders: Placeholders) -> Update | None:
    text = params.get("UpdateExpression")
    return None if text is None else parse_update(str(text), holders)


def enum(params: dict[str, Any], name: str, member: str, allowed: list[str], default: str) -> str:
    value = params.get(name) or default
    v = Violations()
    v.enum(value, member, allowed)
    raise_violations(v)
    return str(value)


def on_failure(params: dict[str, Any]) -> str:
    return enum(
        params,
        "ReturnValuesOnConditionCheckFailure",
        "returnValuesOnConditionCheckFailure",
        ["ALL_OLD", "NONE"],
        "NONE",
    )


def write_op(kind: str, params: dict[str, Any]) -> tuple[WriteOp, Placeholders]:
    """A put/update/delete/check from PutItem, UpdateItem, DeleteItem or a transaction's member."""
    holders = placeholders(params)
    op = WriteOp(table=str(params.get("TableName")), kind=kind, return_on_failure=on_failure(params))
    if kind == "put":
        op.item = item_of(params.get("Item"))
    else:
        op.key = item_of(params.get("Key"))
    if kind == "update":
        op.update = update_of(params, holders)
    op.condition = condition_of(params, holders)
    if kind == "check" and op.condition is None:
        # unverified: boto3 requires ConditionExpression for ConditionCheck before sending
        raise Validation("The ConditionExpression parameter is required for ConditionCheck")
    holders.check_all_used()
    return op, holders


# --- queries ------------------------------------------------------------------------------------------
def key_condition(
    condition: Condition, hash_attr: KeyAttr, range_attr: KeyAttr | None
) -> tuple[Value, RangeCondition | None]:
    """The hash value and range condition of a KeyConditionExpression, checked against a key schema."""
    parts: list[Condition] = []
    _flatten(condition, parts)
    if len(parts) > 2:
        raise Validation("KeyConditionExpressions must only contain one condition per key")
    found: dict[str, tuple[str, list[Value]]] = {}
    for part in parts:
        name, op, values = _key_part(part)
        if name in found:
            raise Validation("KeyConditionExpressions must only contain one condition per key")
        found[name] = (op, values)
    if hash_attr.name not in found:
        raise Validation(f"Query condition missed key schema element: {hash_attr.name}")
    extra = [n for n in found if n not in (hash_attr.name, range_attr.name if range_attr else None)]
    if extra:
        if range_attr is not None:
            raise Validation(f"Query condition missed key schema element: {range_attr.name}")
        raise Validation("Query key condition not supported")  # unverified: AWS's text for a hash-only key
    op, values = found[hash_attr.name]
    if op != "=":
        raise Validation("Query key condition not supported")
    _check_types(values, hash_attr)
    range_condition = None
    if range_attr is not None and range_attr.name in found:
        op, values = found[range_attr.name]
        _check_types(values, range_attr)
        if op == "begins_with" and range_attr.type == "N":
            raise Validation(
                "Invalid KeyConditionExpression: Incorrect operand type for operator or function; "
                "operator or function: begins_with, operand type: N"
            )
        range_condition = RangeCondition(op, values)
    return found[hash_attr.name][1][0], range_condition


def _flatten(condition: Condition, parts: list[Condition]) -> None:
    if isinstance(condition, And):
        _flatten(condition.left, parts)
        _flatten(condition.right, parts)
    else:
        parts.append(condition)


def _key_part(part: Condition) -> tuple[str, str, list[Value]]:
    if isinstance(part, Compare):
        left, right, op = part.left, part.right, part.op
        if isinstance(left, Literal) and isinstance(right, Path):
            left, right = right, left
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        if op == "<>":
            raise Validation("Invalid operator used in KeyConditionExpression: <>")
        if isinstance(left, Path) and isinstance(right, Literal):
            return _top_level(left), op, [right.value]
    elif isinstance(part, Between):
        if isinstance(part.subject, Path) and isinstance(part.low, Literal) and isinstance(part.high, Literal):
            return _top_level(part.subject), "BETWEEN", [part.low.value, part.high.value]
    elif isinstance(part, Function):
        if part.name != "begins_with":
            raise Validation(f"Invalid operator used in KeyConditionExpression: {part.name}")
        subject, prefix = part.args
        if isinstance(subject, Path) and isinstance(prefix, Literal):
            return _top_level(subject), "begins_with", [prefix.value]
    else:
        operator = type(part).__name__.upper()
        raise Validation(f"Invalid operator used in KeyConditionExpression: {operator}")
    raise Validation("Query key condition not supported")  # unverified: AWS's text for odd operands


def _top_level(path: Path) -> str:
    if len(path.elements) != 1 or not isinstance(path.elements[0], str):
        # unverified: wording from memory of AWS's message
        raise Validation("KeyConditionExpressions cannot have conditions on nested attributes")
    return path.elements[0]


def _check_types(values: list[Value], attr: KeyAttr) -> None:
    for value in values:
        if type_of(value) != attr.type:
            raise Validation(
                "One or more parameter values were invalid: Condition parameter type does not match schema type"
            )


def read_keys(table: TableDef, index_name: str | None) -> tuple[KeyAttr, KeyAttr | None, str]:
    """The hash and range key of what a Query reads, and the index kind ("" for the table)."""
    if index_name is None:
        return table.hash, table.range, ""
    index = table.index(index_name)
    if index is None:
        raise Validation(f"The table does not have the specified index: {index_name}")
    return index.hash, index.range, index.kind


def limit_of(params: dict[str, Any]) -> int | None:
    limit = params.get("Limit")
    if limit is None:
        return None
    v = Violations()
    v.at_least(int(limit), "limit", 1)
    raise_violations(v)
    return int(limit)
