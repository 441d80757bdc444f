"""The filter matcher against a brute-force one, on generated events and patterns (hypothesis)."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from squall.sources.filters import matches_any

KEYS = st.sampled_from(["a", "b", "c"])
SCALARS = st.one_of(st.none(), st.sampled_from(["x", "y", "us-east", "us-west", ""]), st.integers(-3, 3))
EVENTS = st.recursive(
    st.dictionaries(KEYS, SCALARS, max_size=3),
    lambda children: st.dictionaries(KEYS, st.one_of(SCALARS, children), max_size=3),
    max_leaves=6,
)
RULES = st.one_of(
    SCALARS,
    st.builds(lambda p: {"prefix": p}, st.sampled_from(["us-", "x", ""])),
    st.builds(lambda v: {"anything-but": v}, st.lists(SCALARS.filter(lambda s: s is not None), min_size=1, max_size=2)),
    st.builds(lambda b: {"exists": b}, st.booleans()),
    st.builds(lambda op, n: {"numeric": [op, n]}, st.sampled_from(["<", "<=", "=", ">", ">="]), st.integers(-3, 3)),
)
PATTERNS = st.recursive(
    st.dictionaries(KEYS, st.lists(RULES, min_size=1, max_size=3), min_size=1, max_size=2),
    lambda children: st.dictionaries(KEYS, children, min_size=1, max_size=2),
    max_leaves=4,
)


def brute_rule(rule: Any, present: bool, value: Any) -> bool:
    """One rule against one leaf, spelled out case by case."""
    if isinstance(rule, dict) and "exists" in rule:
        return present == rule["exists"]
    if not present or isinstance(value, dict):
        return False
    if isinstance(rule, dict) and "prefix" in rule:
        return isinstance(value, str) and value[: len(rule["prefix"])] == rule["prefix"]
    if isinstance(rule, dict) and "anything-but" in rule:
        return all(not brute_rule(other, present, value) for other in rule["anything-but"])
    if isinstance(rule, dict) and "numeric" in rule:
        op, bound = rule["numeric"]
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        return {
            "<": value < bound,
            "<=": value <= bound,
            "=": value == bound,
            ">": value > bound,
            ">=": value >= bound,
        }[op]
    if rule is None:
        return value is None
    return type(rule) is type(value) and rule == value


def brute(pattern: dict[str, Any], event: Any) -> bool:
    for key, expected in pattern.items():
        present = isinstance(event, dict) and key in event
        value = event.get(key) if present else None
        if isinstance(expected, dict):
            if not brute(expected, value if isinstance(value, dict) else {}):
                return False
        elif not any(brute_rule(rule, present, value) for rule in expected):
            return False
    return True


@settings(max_examples=400, deadline=None)
@given(EVENTS, st.lists(PATTERNS, min_size=1, max_size=3))
def test_matcher_agrees_with_brute_force(event: dict[str, Any], patterns: list[dict[str, Any]]) -> None:
    assert matches_any(patterns, event) == any(brute(p, event) for p in patterns)
