"""Event filtering patterns, as Lambda documents them."""

import json

import pytest

from squall.errors import InvalidParameterValue
from squall.sources.filters import kinesis_view, matches_any, parse_filters


def patterns(*raw: dict[str, object]) -> list[dict[str, object]]:
    return parse_filters({"Filters": [{"Pattern": json.dumps(p)} for p in raw]})


def test_the_documented_operators() -> None:
    event = {
        "partitionKey": "1",
        "data": {"Temperature": 55, "Location": "us-east", "Weather": "Sunny", "Extra": None, "Empty": ""},
    }
    assert matches_any(
        patterns({"partitionKey": ["1"], "data": {"Temperature": [{"numeric": [">", 50, "<=", 60]}]}}), event
    )
    assert not matches_any(patterns({"data": {"Temperature": [{"numeric": [">", 60]}]}}), event)
    assert matches_any(patterns({"data": {"Location": [{"prefix": "us-"}]}}), event)
    assert matches_any(patterns({"data": {"Weather": [{"anything-but": ["Raining"]}]}}), event)
    assert not matches_any(patterns({"data": {"Weather": [{"anything-but": ["Sunny"]}]}}), event)
    assert matches_any(patterns({"data": {"Extra": [None]}}), event)
    assert matches_any(patterns({"data": {"Empty": [""]}}), event)
    assert matches_any(patterns({"data": {"Missing": [{"exists": False}]}}), event)
    assert not matches_any(patterns({"data": {"Location": [{"exists": False}]}}), event)
    assert matches_any(patterns({"data": {"Weather": ["Cloudy", "Sunny"]}}), event)  # values are OR-ed
    assert not matches_any(patterns({"partitionKey": ["1"], "data": {"Weather": ["Cloudy"]}}), event)  # keys AND
    assert matches_any(patterns({"partitionKey": ["2"]}, {"partitionKey": ["1"]}), event)  # filters OR-ed
    assert matches_any([], event)


def test_non_json_data_does_not_match_a_data_pattern() -> None:
    view = kinesis_view("k", b"plain text")
    assert "data" not in view
    assert not matches_any(patterns({"data": {"a": ["b"]}}), view)
    assert matches_any(patterns({"partitionKey": ["k"]}), view)


def test_invalid_patterns_are_refused() -> None:
    for bad in ("{not json", json.dumps([1]), json.dumps({"a": "not-an-array"})):
        with pytest.raises(InvalidParameterValue):
            parse_filters({"Filters": [{"Pattern": bad}]})
    with pytest.raises(InvalidParameterValue):
        parse_filters({"Filters": [{"Pattern": "{}"}] * 6})
