"""Pieces of the IAM, STS and CloudWatch Logs services that are easier to pin without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from squall.models import LogEvent
from squall.services import query
from squall.services.logs import service as logs_service
from squall.services.logs.patterns import InvalidParameter, compile_pattern
from squall.services.logs.service import LogsService
from squall.services.sts.api import role_id
from squall.stores.sqlite import SqliteMetadataStore


@pytest.mark.parametrize(
    ("pattern", "message", "matched"),
    [
        ("", "anything", True),
        ("   ", "anything", True),
        ("ERROR", "an ERROR here", True),
        ("ERROR", "an error here", False),
        ("ERROR Timeout", "Timeout ERROR", True),
        ("ERROR Timeout", "ERROR only", False),
        ('"exact phrase"', "an exact phrase", True),
        ('"exact phrase"', "exact other phrase", False),
        ("ERROR -DEBUG", "ERROR DEBUG", False),
        ("ERROR -DEBUG", "ERROR", True),
        ("?ERROR ?WARN", "WARN x", True),
        ("?ERROR ?WARN", "INFO x", False),
    ],
)
def test_term_patterns(pattern: str, message: str, matched: bool) -> None:
    assert compile_pattern(pattern)(message) is matched


@pytest.mark.parametrize("pattern", ['{ $.level = "ERROR" }', "[ip, user]", "%ERR.*%", '"unclosed'])
def test_unsupported_or_broken_patterns_are_invalid(pattern: str) -> None:
    with pytest.raises(InvalidParameter):
        compile_pattern(pattern)


def test_query_xml_rendering() -> None:
    body = query.render("GetThing", {"Items": ["a<b", "c"], "Flag": True, "Gone": None, "N": {"X": 1}}, "rid", "ns")
    assert body == (
        b'<GetThingResponse xmlns="ns"><GetThingResult><Items><member>a&lt;b</member><member>c</member></Items>'
        b"<Flag>true</Flag><N><X>1</X></N></GetThingResult>"
        b"<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></GetThingResponse>"
    )
    assert query.render("DeleteThing", None, "rid", "ns").startswith(b'<DeleteThingResponse xmlns="ns"><Response')


def test_query_list_members() -> None:
    params = {"Tags.member.1.Key": "a", "Tags.member.1.Value": "1", "Tags.member.2.Key": "b", "Names.member.1": "x"}
    assert query.members(params, "Tags", ("Key", "Value")) == [{"Key": "a", "Value": "1"}, {"Key": "b"}]
    assert query.members(params, "Names") == ["x"]
    assert query.members(params, "Missing") == []


def test_role_id_is_stable_and_shaped_like_aws() -> None:
    assert role_id("000000000000") == role_id("000000000000") != role_id("111111111111")
    assert len(role_id("000000000000")) == 21 and role_id("000000000000").startswith("AROA")


def test_log_responses_stop_at_one_megabyte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs_service, "MAX_RESPONSE_BYTES", 100)
    store = SqliteMetadataStore(tmp_path / "meta.db")
    try:
        store.append_logs("g", "s", [LogEvent(timestamp=i, message="x" * 30) for i in range(6)])
        logs = LogsService(store, "000000000000", "us-east-1")
        head = logs.get_log_events("g", "s", None, None, None, 100, True)
        assert len(head["events"]) == 1  # 30 + 26 bytes each: a second would pass 100
        second = logs.get_log_events("g", "s", None, None, head["nextForwardToken"], 100, True)
        assert [e["timestamp"] for e in second["events"]] == [1]
        found = logs.filter_log_events("g", None, None, None, None, None, 100, None)
        assert len(found["events"]) == 1 and found["nextToken"]
        rest = logs.filter_log_events("g", None, None, None, None, None, 100, found["nextToken"])
        assert [e["timestamp"] for e in rest["events"]] == [1]
    finally:
        store.close()
