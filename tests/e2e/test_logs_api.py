"""CloudWatch Logs over the lines Squall writes: a function runs, boto3 reads its log group back."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_zip
from tests.e2e.conftest import SquallServer
from tests.e2e.test_aws_cli import aws_json

pytestmark = pytest.mark.e2e

ACCOUNT = "000000000000"
SOURCE = "def handler(event, context):\n    for line in event['lines']:\n        print(line)\n    return 'ok'\n"
NO_GROUP = "The specified log group does not exist."


@pytest.fixture(scope="module")
def logs(squall: SquallServer) -> Any:
    return squall.client("logs")


def error(call: Callable[[], object]) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def wait_for_reports(logs: Any, group: str, count: int) -> None:
    """Log lines are written in batches: wait until ``count`` REPORT lines are readable."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            found = logs.filter_log_events(logGroupName=group, filterPattern="REPORT")["events"]
        except logs.exceptions.ResourceNotFoundException:
            found = []
        if len(found) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{count} REPORT lines did not appear in {group}")


@pytest.fixture(scope="module")
def logged(lam: Any, logs: Any) -> dict[str, Any]:
    """A function invoked three times (``first``, ``second``, ``third`` lines), with its log group."""
    name = f"logged-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=f"arn:aws:iam::{ACCOUNT}:role/lambda-role",
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": SOURCE})},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
    started = int(time.time() * 1000)
    request_ids = []
    for word in ("first", "second", "third"):
        response = lam.invoke(FunctionName=name, Payload=f'{{"lines": ["{word} line", "ERROR {word}"]}}'.encode())
        request_ids.append(response["ResponseMetadata"]["RequestId"])
        time.sleep(0.01)  # distinct timestamps
    group = f"/aws/lambda/{name}"
    wait_for_reports(logs, group, 3)
    yield {"name": name, "group": group, "request_ids": request_ids, "started": started}
    lam.delete_function(FunctionName=name)


def all_events(logs: Any, group: str, stream: str) -> list[dict[str, Any]]:
    return logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]


def test_describe_log_groups(logs: Any, logged: dict[str, Any]) -> None:
    groups = logs.describe_log_groups(logGroupNamePrefix=logged["group"])["logGroups"]
    assert len(groups) == 1
    group = groups[0]
    assert group["logGroupName"] == logged["group"]
    assert group["arn"] == f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{logged['group']}:*"
    assert group["logGroupArn"] == f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{logged['group']}"
    assert logged["started"] - 1000 <= group["creationTime"] <= int(time.time() * 1000)
    assert group["storedBytes"] > 0 and group["metricFilterCount"] == 0
    assert logs.describe_log_groups(logGroupNamePrefix="/no/such/prefix")["logGroups"] == []
    by_pattern = logs.describe_log_groups(logGroupNamePattern=logged["name"].upper())["logGroups"]
    assert [g["logGroupName"] for g in by_pattern] == [logged["group"]]
    assert error(lambda: logs.describe_log_groups(logGroupNamePrefix="/aws", logGroupNamePattern="x"))[:2] == (
        400,
        "InvalidParameterException",
    )
    everything = logs.describe_log_groups()["logGroups"]
    assert logged["group"] in [g["logGroupName"] for g in everything]


def test_describe_log_groups_pages(logs: Any, logged: dict[str, Any], squall: SquallServer) -> None:
    pages = logs.get_paginator("describe_log_groups")
    everything = [g["logGroupName"] for p in pages.paginate() for g in p["logGroups"]]  # pages of 50
    assert everything == sorted(everything)
    assert len(logs.describe_log_groups()["logGroups"]) == min(50, len(everything))  # the default limit
    first = logs.describe_log_groups(limit=1)
    assert len(first["logGroups"]) == 1
    if len(everything) > 1:
        assert first["nextToken"]
    paged = [g["logGroupName"] for p in pages.paginate(limit=1) for g in p["logGroups"]]
    assert paged == everything
    assert len(logs.describe_log_groups(limit=50)["logGroups"]) == min(50, len(everything))
    assert error(lambda: logs.describe_log_groups(limit=51)) == (
        400,
        "InvalidParameterException",
        "1 validation error detected: Value '51' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 50",
    )
    unchecked = squall.client("logs", parameter_validation=False)
    assert error(lambda: unchecked.describe_log_groups(limit=0))[:2] == (400, "InvalidParameterException")
    assert error(lambda: logs.describe_log_groups(nextToken="garbage")) == (
        400,
        "InvalidParameterException",
        "The specified nextToken is invalid.",
    )


def test_describe_log_streams(logs: Any, logged: dict[str, Any]) -> None:
    streams = logs.describe_log_streams(logGroupName=logged["group"])["logStreams"]
    assert streams
    for stream in streams:
        assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", stream["logStreamName"])
        assert stream["firstEventTimestamp"] <= stream["lastEventTimestamp"]
        assert stream["creationTime"] == stream["firstEventTimestamp"]
        assert stream["arn"] == (
            f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{logged['group']}:log-stream:{stream['logStreamName']}"
        )
    by_time = logs.describe_log_streams(logGroupName=logged["group"], orderBy="LastEventTime", descending=True)
    assert by_time["logStreams"][0]["lastEventTimestamp"] == max(s["lastEventTimestamp"] for s in streams)
    prefix = streams[0]["logStreamName"][:11]
    assert logs.describe_log_streams(logGroupName=logged["group"], logStreamNamePrefix=prefix)["logStreams"]
    assert logs.describe_log_streams(logGroupName=logged["group"], logStreamNamePrefix="1999/")["logStreams"] == []
    assert (
        logs.describe_log_streams(logGroupIdentifier=f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{logged['group']}")[
            "logStreams"
        ]
        == streams
    )
    assert error(
        lambda: logs.describe_log_streams(
            logGroupName=logged["group"], logStreamNamePrefix="2", orderBy="LastEventTime"
        )
    ) == (400, "InvalidParameterException", "Cannot order by LastEventTime with a logStreamNamePrefix.")
    assert error(lambda: logs.describe_log_streams(logGroupName="/aws/lambda/nothing-here")) == (
        400,
        "ResourceNotFoundException",
        NO_GROUP,
    )
    assert error(lambda: logs.describe_log_streams(logGroupName=logged["group"], limit=51))[:2] == (
        400,
        "InvalidParameterException",
    )


def test_get_log_events_reads_start_end_report(logs: Any, logged: dict[str, Any]) -> None:
    streams = logs.describe_log_streams(logGroupName=logged["group"])["logStreams"]
    messages: list[str] = []
    for stream in streams:
        for event in all_events(logs, logged["group"], stream["logStreamName"]):
            assert set(event) == {"timestamp", "message", "ingestionTime"}
            messages.append(event["message"].rstrip("\n"))
    for request_id, word in zip(logged["request_ids"], ("first", "second", "third"), strict=True):
        start = messages.index(f"START RequestId: {request_id} Version: $LATEST")
        assert messages[start + 1 : start + 3] == [f"{word} line", f"ERROR {word}"]
        assert messages[start + 3] == f"END RequestId: {request_id}"
        assert re.match(
            rf"REPORT RequestId: {request_id}\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms", messages[start + 4]
        )


def _busiest_stream(logs: Any, group: str) -> str:
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    return max(streams, key=lambda s: len(all_events(logs, group, s["logStreamName"])))["logStreamName"]


def test_get_log_events_pages_forward_and_backward(logs: Any, logged: dict[str, Any]) -> None:
    group = logged["group"]
    stream = _busiest_stream(logs, group)
    everything = [e["message"] for e in all_events(logs, group, stream)]
    assert len(everything) >= 5

    # Forward from the head, two at a time, until the token comes back unchanged (AWS's end signal).
    forward: list[str] = []
    page = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, limit=2)
    while True:
        forward += [e["message"] for e in page["events"]]
        token = page["nextForwardToken"]
        assert re.fullmatch(r"f/\d{56}", token)
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=token, limit=2)
        if page["nextForwardToken"] == token:
            assert page["events"] == []
            break
    assert forward == everything

    # Without startFromHead: the newest events first page, then backwards.
    tail = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2)
    assert [e["message"] for e in tail["events"]] == everything[-2:]
    backward = [e["message"] for e in tail["events"]]
    token = tail["nextBackwardToken"]
    assert re.fullmatch(r"b/\d{56}", token)
    while True:
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=token, limit=2)
        if not page["events"]:
            assert page["nextBackwardToken"] == token
            break
        backward = [e["message"] for e in page["events"]] + backward
        token = page["nextBackwardToken"]
    assert backward == everything

    # A time window: nothing before the function ran, nothing at or after endTime.
    first_ts = all_events(logs, group, stream)[0]["timestamp"]
    windowed = logs.get_log_events(
        logGroupName=group, logStreamName=stream, startTime=first_ts, endTime=first_ts + 1, startFromHead=True
    )["events"]
    assert windowed and all(e["timestamp"] == first_ts for e in windowed)
    assert logs.get_log_events(logGroupName=group, logStreamName=stream, endTime=first_ts)["events"] == []
    assert len(logs.get_log_events(logGroupName=group, logStreamName=stream, limit=10000)["events"]) == len(everything)


def test_get_log_events_errors(logs: Any, logged: dict[str, Any], squall: SquallServer) -> None:
    group = logged["group"]
    stream = _busiest_stream(logs, group)
    assert error(lambda: logs.get_log_events(logGroupName="/aws/lambda/none-such", logStreamName="s")) == (
        400,
        "ResourceNotFoundException",
        NO_GROUP,
    )
    assert error(lambda: logs.get_log_events(logGroupName=group, logStreamName="no-such-stream")) == (
        400,
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    )
    for token in ("x/123", "f/abc", "garbage"):
        assert error(lambda t=token: logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=t)) == (
            400,
            "InvalidParameterException",
            "The specified nextToken is invalid.",
        )
    assert error(lambda: logs.get_log_events(logGroupName=group, logStreamName=stream, limit=10001)) == (
        400,
        "InvalidParameterException",
        "1 validation error detected: Value '10001' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 10000",
    )
    unchecked = squall.client("logs", parameter_validation=False)
    assert error(lambda: unchecked.get_log_events(logGroupName=group, logStreamName=stream, limit=0))[:2] == (
        400,
        "InvalidParameterException",
    )
    assert error(lambda: logs.get_log_events(logGroupName="bad name!", logStreamName=stream))[:2] == (
        400,
        "InvalidParameterException",
    )


def test_filter_log_events(logs: Any, logged: dict[str, Any]) -> None:
    group = logged["group"]
    reports = logs.filter_log_events(logGroupName=group, filterPattern="REPORT")["events"]
    assert [e["message"].split("\t")[0] for e in reports] == [f"REPORT RequestId: {r}" for r in logged["request_ids"]]
    for event in reports:
        assert set(event) == {"logStreamName", "timestamp", "message", "ingestionTime", "eventId"}
        assert re.fullmatch(r"\d{56}", event["eventId"])
    assert "nextToken" not in logs.filter_log_events(logGroupName=group, filterPattern="REPORT")

    def messages(**params: Any) -> list[str]:
        events = logs.filter_log_events(logGroupName=group, **params)["events"]
        return [e["message"].rstrip("\n") for e in events]

    assert messages(filterPattern="ERROR") == ["ERROR first", "ERROR second", "ERROR third"]
    assert messages(filterPattern='"second line"') == ["second line"]
    assert messages(filterPattern="ERROR -second") == ["ERROR first", "ERROR third"]
    assert messages(filterPattern="?third ?first") == ["first line", "ERROR first", "third line", "ERROR third"]
    assert messages(filterPattern="error") == []  # terms are case-sensitive
    assert len(messages()) == 3 * 5  # START, two lines, END, REPORT
    first_ts = reports[0]["timestamp"]
    assert messages(filterPattern="ERROR", startTime=first_ts, endTime=first_ts + 1) == ["ERROR first"]
    streams = [e["logStreamName"] for e in reports]
    assert len(messages(logStreamNames=[streams[0]], filterPattern="REPORT")) == streams.count(streams[0])
    assert len(messages(logStreamNamePrefix=streams[0][:10], filterPattern="REPORT")) == 3

    # Paging: one event per page, through the paginator and by hand.
    paged = [
        e["message"]
        for page in logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, filterPattern="ERROR", PaginationConfig={"PageSize": 1}
        )
        for e in page["events"]
    ]
    assert [m.rstrip("\n") for m in paged] == ["ERROR first", "ERROR second", "ERROR third"]
    page = logs.filter_log_events(logGroupName=group, filterPattern="ERROR", limit=2)
    assert len(page["events"]) == 2 and page["nextToken"]
    rest = logs.filter_log_events(logGroupName=group, filterPattern="ERROR", limit=2, nextToken=page["nextToken"])
    assert [e["message"].rstrip("\n") for e in rest["events"]] == ["ERROR third"] and "nextToken" not in rest


def test_filter_log_events_errors(logs: Any, logged: dict[str, Any]) -> None:
    group = logged["group"]
    assert error(lambda: logs.filter_log_events(logGroupName="/aws/lambda/none-such")) == (
        400,
        "ResourceNotFoundException",
        NO_GROUP,
    )
    assert error(lambda: logs.filter_log_events(logGroupName=group, nextToken="garbage")) == (
        400,
        "InvalidParameterException",
        "The specified nextToken is invalid.",
    )
    assert error(lambda: logs.filter_log_events(logGroupName=group, limit=10001))[:2] == (
        400,
        "InvalidParameterException",
    )
    assert error(lambda: logs.filter_log_events(logGroupName=group, logStreamNames=["a"], logStreamNamePrefix="a"))[
        :2
    ] == (400, "InvalidParameterException")
    assert error(lambda: logs.filter_log_events(logGroupName=group, filterPattern='{ $.level = "ERROR" }'))[:2] == (
        400,
        "InvalidParameterException",
    )


def test_delete_log_group(lam: Any, logs: Any, make_function: Any) -> None:
    name = f"deleted-logs-{uuid.uuid4().hex[:8]}"
    make_function(name, make_zip({"app.py": SOURCE}))
    lam.invoke(FunctionName=name, Payload=b'{"lines": ["to be deleted"]}')
    group = f"/aws/lambda/{name}"
    wait_for_reports(logs, group, 1)
    logs.delete_log_group(logGroupName=group)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    assert error(lambda: logs.delete_log_group(logGroupName=group)) == (400, "ResourceNotFoundException", NO_GROUP)
    # The next invocation starts the group again, as Lambda does.
    lam.invoke(FunctionName=name, Payload=b'{"lines": ["back again"]}')
    wait_for_reports(logs, group, 1)
    events = logs.filter_log_events(logGroupName=group)["events"]
    assert "back again\n" in [e["message"] for e in events]
    assert "to be deleted\n" not in [e["message"] for e in events]


def test_unknown_operation(logs: Any) -> None:
    status, code, _ = error(lambda: logs.describe_destinations())
    assert (status, code) == (400, "UnknownOperationException")


def test_aws_cli_logs(squall: SquallServer, logged: dict[str, Any]) -> None:
    listed = aws_json(squall, "logs", "describe-log-groups", "--log-group-name-prefix", logged["group"])
    assert [g["logGroupName"] for g in listed["logGroups"]] == [logged["group"]]
    found = aws_json(
        squall, "logs", "filter-log-events", "--log-group-name", logged["group"], "--filter-pattern", "END"
    )
    assert [e["message"].rstrip("\n") for e in found["events"]] == [
        f"END RequestId: {r}" for r in logged["request_ids"]
    ]
