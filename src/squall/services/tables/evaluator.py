"""Evaluating parsed expressions against items: conditions, projections and update actions.

Items are wire-form attribute maps. A missing attribute makes a comparison false (``<>`` true), as
DynamoDB does; an update evaluates every right-hand side against the item as it was before the update.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from squall.services.tables.errors import Validation
from squall.services.tables.expressions import (
    Action,
    And,
    Arithmetic,
    Between,
    Compare,
    Condition,
    Function,
    IfNotExists,
    In,
    ListAppend,
    Literal,
    Not,
    Operand,
    Or,
    Path,
    SetValue,
    Update,
)
from squall.services.tables.types import (
    SET_TYPES,
    Item,
    Value,
    arithmetic,
    binary,
    equal,
    format_number,
    order,
    set_keys,
    type_of,
)

INVALID_PATH = "The document path provided in the update expression is invalid for update"
MISSING_OPERAND = "The provided expression refers to an attribute that does not exist in the item"
WRONG_OPERAND = "An operand in the update expression has an incorrect data type"


def resolve(item: Item, path: Path) -> Value | None:
    """The value at ``path`` in ``item``, or None if there is none."""
    current: Value = {"M": item}
    for element in path.elements:
        if isinstance(element, int):
            items = current.get("L")
            if items is None or element >= len(items):
                return None
            current = items[element]
        else:
            members = current.get("M")
            if members is None or element not in members:
                return None
            current = members[element]
    return current


def operand_value(item: Item, operand: Operand) -> Value | None:
    if isinstance(operand, Literal):
        return operand.value
    if isinstance(operand, Path):
        return resolve(item, operand)
    inner = operand_value(item, operand.operand)
    size = _size(inner) if inner is not None else None
    return None if size is None else {"N": str(size)}


def _size(value: Value) -> int | None:
    kind = type_of(value)
    raw = value[kind]
    if kind == "S":
        return len(raw)
    if kind == "B":
        return len(binary(raw))
    if kind in SET_TYPES or kind in ("L", "M"):
        return len(raw)
    return None


def matches(condition: Condition, item: Item) -> bool:
    """Whether ``item`` (``{}`` for no item) satisfies ``condition``."""
    if isinstance(condition, And):
        return matches(condition.left, item) and matches(condition.right, item)
    if isinstance(condition, Or):
        return matches(condition.left, item) or matches(condition.right, item)
    if isinstance(condition, Not):
        return not matches(condition.inner, item)
    if isinstance(condition, Compare):
        return _compare(condition.op, operand_value(item, condition.left), operand_value(item, condition.right))
    if isinstance(condition, Between):
        subject = operand_value(item, condition.subject)
        low = operand_value(item, condition.low)
        high = operand_value(item, condition.high)
        if subject is None or low is None or high is None:
            return False
        above, below = order(subject, low), order(subject, high)
        return above is not None and below is not None and above >= 0 and below <= 0
    if isinstance(condition, In):
        subject = operand_value(item, condition.subject)
        return subject is not None and any(equal(subject, operand_value(item, o)) for o in condition.options)
    return _function(condition, item)


def _compare(op: str, left: Value | None, right: Value | None) -> bool:
    if op == "=":
        return left is not None and right is not None and equal(left, right)
    if op == "<>":
        return left is None or right is None or not equal(left, right)
    if left is None or right is None:
        return False
    result = order(left, right)
    if result is None:
        return False
    return {"<": result < 0, "<=": result <= 0, ">": result > 0, ">=": result >= 0}[op]


def _function(function: Function, item: Item) -> bool:
    name = function.name
    first = operand_value(item, function.args[0])
    if name == "attribute_exists":
        return first is not None
    if name == "attribute_not_exists":
        return first is None
    second = operand_value(item, function.args[1])
    if first is None or second is None:
        return False
    if name == "attribute_type":
        return bool(type_of(first) == second["S"])
    kind, other = type_of(first), type_of(second)
    if name == "begins_with":
        if kind == other == "S":
            return bool(first["S"].startswith(second["S"]))
        if kind == other == "B":
            return binary(first["B"]).startswith(binary(second["B"]))
        return False
    # contains
    if kind == other == "S":
        return str(second["S"]) in str(first["S"])
    if kind in SET_TYPES and SET_TYPES[kind] == other:
        return set_keys({other + "S": [second[other]]})[0] in set_keys(first)
    if kind == "L":
        return any(equal(element, second) for element in first["L"])
    return False


# --- projections ----------------------------------------------------------------------------------------
def project(item: Item, paths: list[Path]) -> Item:
    """Only the parts of ``item`` that ``paths`` name (list elements kept in index order, compacted)."""
    tree: dict[str, Any] = {}
    for path in paths:
        value = resolve(item, path)
        if value is None:
            continue
        node: dict[Any, Any] = tree
        for i, element in enumerate(path.elements):
            if i == len(path.elements) - 1:
                node[element] = ("value", value)
            else:
                kind = "L" if isinstance(path.elements[i + 1], int) else "M"
                child = node.setdefault(element, (kind, {}))
                node = child[1]
    return {name: _build(entry) for name, entry in tree.items()}


def _build(entry: tuple[str, Any]) -> Value:
    kind, content = entry
    if kind == "value":
        return dict(copy.deepcopy(content))
    if kind == "M":
        return {"M": {k: _build(v) for k, v in content.items()}}
    return {"L": [_build(content[k]) for k in sorted(content)]}


# --- updates ----------------------------------------------------------------------------------------------
def apply_update(item: Item, update: Update, key_names: tuple[str, ...]) -> Item:
    """The item after ``update``; ``item`` is not modified."""
    for action in update.actions:
        if action.path.elements[0] in key_names:
            raise Validation(
                "One or more parameter values were invalid: Cannot update attribute "
                f"{action.path.elements[0]}. This attribute is part of the key"
            )
    new = copy.deepcopy(item)
    removes: list[Action] = []
    for action in update.actions:
        if action.kind == "SET":
            assert action.value is not None
            _assign(new, action.path, _set_value(item, action.value))
        elif action.kind == "ADD":
            _add(new, action)
        elif action.kind == "DELETE":
            _delete(new, action)
        else:
            removes.append(action)
    # Later list indexes first, so removing one element does not shift another that is removed too.
    for action in sorted(
        removes, key=lambda a: [e if isinstance(e, int) else -1 for e in a.path.elements], reverse=True
    ):
        _remove(new, action.path)
    return new


def _index_order(action: Action) -> list[int]:
    return [e if isinstance(e, int) else -1 for e in action.path.elements]


def _set_value(item: Item, value: SetValue) -> Value:
    if isinstance(value, Literal):
        return value.value
    if isinstance(value, Path):
        found = resolve(item, value)
        if found is None:
            raise Validation(MISSING_OPERAND)
        return found
    if isinstance(value, IfNotExists):
        found = resolve(item, value.path)
        return found if found is not None else _set_value(item, value.default)
    if isinstance(value, ListAppend):
        left, right = _set_value(item, value.left), _set_value(item, value.right)
        if type_of(left) != "L" or type_of(right) != "L":
            raise Validation(WRONG_OPERAND)
        return {"L": [*left["L"], *right["L"]]}
    assert isinstance(value, Arithmetic)
    left, right = _set_value(item, value.left), _set_value(item, value.right)
    if type_of(left) != "N" or type_of(right) != "N":
        raise Validation(WRONG_OPERAND)
    result = arithmetic(Decimal(left["N"]), Decimal(right["N"]), value.op == "-")
    return {"N": format_number(result)}


def _parent(item: Item, path: Path) -> Value | None:
    return resolve(item, Path(path.elements[:-1])) if len(path.elements) > 1 else {"M": item}


def _assign(item: Item, path: Path, value: Value) -> None:
    parent = _parent(item, path)
    last = path.elements[-1]
    if parent is None:
        raise Validation(INVALID_PATH)
    if isinstance(last, int):
        if "L" not in parent:
            raise Validation(INVALID_PATH)
        if last < len(parent["L"]):
            parent["L"][last] = copy.deepcopy(value)
        else:
            parent["L"].append(copy.deepcopy(value))
        return
    if "M" not in parent:
        raise Validation(INVALID_PATH)
    parent["M"][last] = copy.deepcopy(value)


def _remove(item: Item, path: Path) -> None:
    parent = _parent(item, path)
    last = path.elements[-1]
    if parent is None:
        return
    if isinstance(last, int):
        if "L" in parent and last < len(parent["L"]):
            del parent["L"][last]
    elif "M" in parent:
        parent["M"].pop(last, None)


def _add(item: Item, action: Action) -> None:
    assert isinstance(action.value, Literal)
    value = action.value.value
    kind = type_of(value)
    existing = resolve(item, action.path)
    if existing is None:
        _assign(item, action.path, value)
        return
    if type_of(existing) != kind:
        raise Validation(WRONG_OPERAND)
    if kind == "N":
        total = arithmetic(Decimal(existing["N"]), Decimal(value["N"]), False)
        _assign(item, action.path, {"N": format_number(total)})
        return
    have = set(set_keys(existing))
    merged = list(existing[kind])
    for member, member_key in zip(value[kind], set_keys(value), strict=True):
        if member_key not in have:
            have.add(member_key)
            merged.append(member)
    _assign(item, action.path, {kind: merged})


def _delete(item: Item, action: Action) -> None:
    assert isinstance(action.value, Literal)
    value = action.value.value
    kind = type_of(value)
    existing = resolve(item, action.path)
    if existing is None:
        return
    if type_of(existing) != kind:
        raise Validation(WRONG_OPERAND)
    drop = set(set_keys(value))
    kept = [m for m, k in zip(existing[kind], set_keys(existing), strict=True) if k not in drop]
    if kept:
        _assign(item, action.path, {kind: kept})
    else:
        _remove(item, action.path)


def updated_paths(update: Update) -> list[Path]:
    """The paths an update touches (for ReturnValues UPDATED_OLD/UPDATED_NEW)."""
    return [action.path for action in update.actions]
