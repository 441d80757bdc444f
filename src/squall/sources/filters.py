"""Event filtering for event source mappings: the EventBridge pattern subset Lambda accepts.

A record is delivered when it matches ANY filter; a filter matches when ALL its keys match; an
array of values matches when ANY value does. Values are exact strings or numbers, ``null``, ``""``,
or one of the operators ``anything-but``, ``numeric``, ``exists``, ``prefix``, ``suffix`` and
``equals-ignore-case``.
"""

from __future__ import annotations

import json
from typing import Any

from squall.errors import InvalidParameterValue

MAX_FILTERS = 5
MAX_PATTERN_LENGTH = 4096
_MISSING = object()
_NUMERIC_OPS = {"=", "<", "<=", ">", ">="}


def parse_filters(criteria: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The patterns of ``FilterCriteria``, each validated; InvalidParameterValue for a bad one."""
    filters = (criteria or {}).get("Filters") or []
    if len(filters) > MAX_FILTERS:
        raise InvalidParameterValue(f"The number of filters exceeds the maximum of {MAX_FILTERS}.")
    patterns = []
    for entry in filters:
        text = entry.get("Pattern") if isinstance(entry, dict) else None
        if not isinstance(text, str) or len(text) > MAX_PATTERN_LENGTH:
            raise InvalidParameterValue("Invalid filter pattern definition.")
        try:
            pattern = json.loads(text)
        except ValueError:
            raise InvalidParameterValue("Invalid filter pattern definition.") from None
        if not isinstance(pattern, dict):
            raise InvalidParameterValue("Invalid filter pattern definition.")
        _check(pattern)
        patterns.append(pattern)
    return patterns


def _check(pattern: dict[str, Any]) -> None:
    for value in pattern.values():
        if isinstance(value, dict):
            _check(value)
        elif not isinstance(value, list):
            raise InvalidParameterValue("Invalid filter pattern definition: match values must be arrays.")


def matches_any(patterns: list[dict[str, Any]], event: dict[str, Any]) -> bool:
    """Whether ``event`` passes the filters (no filters: everything passes)."""
    return not patterns or any(_matches(pattern, event) for pattern in patterns)


def _matches(pattern: dict[str, Any], event: Any) -> bool:
    for key, expected in pattern.items():
        actual = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(expected, dict):
            # Patterns address leaf paths: under a missing or non-object value every path is absent.
            if not _matches(expected, actual if isinstance(actual, dict) else {}):
                return False
        elif not any(_value_matches(rule, actual) for rule in expected):
            return False
    return True


def _value_matches(rule: Any, actual: Any) -> bool:
    if isinstance(rule, dict):
        return _operator_matches(rule, actual)
    if actual is _MISSING:
        return False
    if isinstance(actual, list):
        return any(_value_matches(rule, item) for item in actual)
    if rule is None:
        return actual is None
    if isinstance(rule, bool) or isinstance(actual, bool):
        return rule is actual
    if isinstance(rule, (int, float)) and isinstance(actual, (int, float)):
        return float(rule) == float(actual)
    return isinstance(rule, str) and rule == actual


def _operator_matches(rule: dict[str, Any], actual: Any) -> bool:
    ((operator, operand),) = rule.items()
    if operator == "exists":
        return (actual is not _MISSING) == bool(operand)
    if actual is _MISSING or isinstance(actual, dict):
        return False  # a value rule never matches an object, only leaves
    if operator == "prefix":
        return isinstance(actual, str) and actual.startswith(str(operand))
    if operator == "suffix":
        return isinstance(actual, str) and actual.endswith(str(operand))
    if operator == "equals-ignore-case":
        return isinstance(actual, str) and actual.casefold() == str(operand).casefold()
    if operator == "anything-but":
        excluded = operand if isinstance(operand, list) else [operand]
        return not any(_value_matches(value, actual) for value in excluded)
    if operator == "numeric":
        return _numeric(operand, actual)
    return False


def _numeric(operand: list[Any], actual: Any) -> bool:
    if isinstance(actual, bool) or not isinstance(actual, (int, float)):
        return False
    pairs = list(zip(operand[::2], operand[1::2], strict=False))
    for op, bound in pairs:
        if op not in _NUMERIC_OPS or not isinstance(bound, (int, float)):
            return False
        if not {
            "=": actual == bound,
            "<": actual < bound,
            "<=": actual <= bound,
            ">": actual > bound,
            ">=": actual >= bound,
        }[op]:
            return False
    return bool(pairs)


def kinesis_view(partition_key: str, data: bytes) -> dict[str, Any]:
    """What a Kinesis record's filter sees: metadata keys, and ``data`` as JSON when it is JSON."""
    try:
        decoded: Any = json.loads(data)
    except ValueError:
        decoded = _MISSING
    view: dict[str, Any] = {"partitionKey": partition_key}
    if decoded is not _MISSING:
        view["data"] = decoded
    return view


def dynamodb_view(record: dict[str, Any]) -> dict[str, Any]:
    """What a table stream record's filter sees: the record as the function receives it, so patterns
    address ``eventName``, ``dynamodb.Keys``, ``dynamodb.NewImage`` and so on (values in attribute-value
    form, e.g. ``{"dynamodb": {"NewImage": {"status": {"S": ["open"]}}}}``)."""
    return {key: value for key, value in record.items() if key != "eventSourceARN"}
