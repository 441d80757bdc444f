"""EventBridge rules and EventBridge Scheduler through boto3's ``events`` and ``scheduler`` clients.

Firing tests run the server with ``SQUALL_SCHEDULE_TIME_SCALE=60`` (test-only: a schedule minute
passes every real second). The function posts every event it gets to a receiver in this process, so
what it saw survives the server being killed.
"""

from __future__ import annotations

import itertools
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from tests.conftest import make_zip

from .conftest import ROLE, SquallServer, error_of
from .test_cli import DOCS, code_blocks

pytestmark = pytest.mark.e2e

SAMPLE = Path(__file__).resolve().parents[3] / "shared/events/aws-lambda-java-libs/cloudwatch_event.json"
SCHEDULER_ROLE = "arn:aws:iam::000000000000:role/scheduler-role"
RECORDER = """
import json, os, urllib.request

def handler(event, context):
    body = json.dumps(event).encode()
    urllib.request.urlopen(urllib.request.Request(os.environ["RECEIVER"], data=body), timeout=10).read()
    return "ok"
"""


def fn_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:000000000000:function:{name}"


def shape(value: object) -> object:
    """Keys and value types, recursively: what must match between two events."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


# --- the rules API ---------------------------------------------------------------------------------
def test_rule_lifecycle(squall: SquallServer) -> None:
    events = squall.client("events")
    arn = events.put_rule(Name="nightly", ScheduleExpression="cron(0 2 * * ? *)", Description="d")["RuleArn"]
    assert arn == "arn:aws:events:us-east-1:000000000000:rule/nightly"
    described = events.describe_rule(Name="nightly")
    assert {k: described[k] for k in ("Name", "Arn", "ScheduleExpression", "State", "Description", "EventBusName")} == {
        "Name": "nightly",
        "Arn": arn,
        "ScheduleExpression": "cron(0 2 * * ? *)",
        "State": "ENABLED",
        "Description": "d",
        "EventBusName": "default",
    }
    assert described["CreatedBy"] == "000000000000"
    events.disable_rule(Name="nightly")
    assert events.describe_rule(Name="nightly")["State"] == "DISABLED"
    events.enable_rule(Name="nightly")
    assert events.describe_rule(Name="nightly")["State"] == "ENABLED"
    # A pattern rule is stored and described (it never fires in Squall).
    pattern = json.dumps({"source": ["my.app"]})
    events.put_rule(Name="nightly-pattern", EventPattern=pattern, State="DISABLED")
    assert events.describe_rule(Name="nightly-pattern")["EventPattern"] == pattern

    result = events.put_targets(
        Rule="nightly",
        Targets=[
            {"Id": "plain", "Arn": fn_arn("job")},
            {"Id": "const", "Arn": fn_arn("job"), "Input": '{"a": 1}'},
            {"Id": "path", "Arn": fn_arn("job") + ":live", "InputPath": "$.detail"},
            {"Id": "queue", "Arn": "arn:aws:sqs:us-east-1:000000000000:q"},
        ],
    )
    assert result["FailedEntryCount"] == 1
    assert result["FailedEntries"][0]["TargetId"] == "queue"
    targets = events.list_targets_by_rule(Rule="nightly")["Targets"]
    assert [t["Id"] for t in targets] == ["const", "path", "plain"]
    assert targets[0]["Input"] == '{"a": 1}' and targets[1]["InputPath"] == "$.detail"
    page = events.list_targets_by_rule(Rule="nightly", Limit=2)
    assert [t["Id"] for t in page["Targets"]] == ["const", "path"]
    rest = events.list_targets_by_rule(Rule="nightly", Limit=2, NextToken=page["NextToken"])
    assert [t["Id"] for t in rest["Targets"]] == ["plain"] and "NextToken" not in rest

    code, message, status, _ = error_of(events.delete_rule, Name="nightly")
    assert (code, message, status) == ("ValidationException", "Rule can't be deleted since it has targets.", 400)
    removed = events.remove_targets(Rule="nightly", Ids=["plain", "const", "path"])
    assert removed["FailedEntryCount"] == 0
    events.delete_rule(Name="nightly")
    events.delete_rule(Name="nightly-pattern")
    code, message, status, _ = error_of(events.describe_rule, Name="nightly")
    assert (code, message, status) == (
        "ResourceNotFoundException",
        "Rule nightly does not exist on EventBus default.",
        400,
    )


def test_list_rules_prefix_and_paging(squall: SquallServer) -> None:
    events = squall.client("events")
    for i in range(5):
        events.put_rule(Name=f"page-{i}", ScheduleExpression="rate(1 day)")
    events.put_rule(Name="other-rule", ScheduleExpression="rate(1 day)")
    first = events.list_rules(NamePrefix="page-", Limit=3)
    assert [r["Name"] for r in first["Rules"]] == ["page-0", "page-1", "page-2"]
    second = events.list_rules(NamePrefix="page-", Limit=3, NextToken=first["NextToken"])
    assert [r["Name"] for r in second["Rules"]] == ["page-3", "page-4"] and "NextToken" not in second
    assert first["Rules"][0]["ScheduleExpression"] == "rate(1 day)"
    paginated = [r["Name"] for p in events.get_paginator("list_rules").paginate(NamePrefix="page-") for r in p["Rules"]]
    assert paginated == [f"page-{i}" for i in range(5)]
    for name in [*(f"page-{i}" for i in range(5)), "other-rule"]:
        events.delete_rule(Name=name)


def test_rule_errors(squall: SquallServer) -> None:
    events = squall.client("events")
    for bad in ["rate(1 minutes)", "cron(0 0 * * * *)", "cron(0/10 * ? * *)", "cron(7 20 * * 1-7 *)", "daily"]:
        code, message, status, _ = error_of(events.put_rule, Name="bad", ScheduleExpression=bad)
        assert (code, message, status) == ("ValidationException", "Parameter ScheduleExpression is not valid.", 400)
    code, message, _, _ = error_of(events.put_rule, Name="bad name", ScheduleExpression="rate(1 day)")
    assert code == "ValidationException"
    assert message == (
        "1 validation error detected: Value 'bad name' at 'name' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+"
    )
    code, _, _, _ = error_of(events.put_rule, Name="s", ScheduleExpression="rate(1 day)", State="ON")
    assert code == "ValidationException"
    for call, kwargs in [
        (events.enable_rule, {"Name": "missing"}),
        (events.disable_rule, {"Name": "missing"}),
        (events.list_targets_by_rule, {"Rule": "missing"}),
        (events.put_targets, {"Rule": "missing", "Targets": [{"Id": "a", "Arn": fn_arn("f")}]}),
        (events.remove_targets, {"Rule": "missing", "Ids": ["a"]}),
    ]:
        code, message, status, _ = error_of(call, **kwargs)
        assert (code, message, status) == (
            "ResourceNotFoundException",
            "Rule missing does not exist on EventBus default.",
            400,
        )


def test_rule_tags(squall: SquallServer) -> None:
    events = squall.client("events")
    arn = events.put_rule(Name="tagged", ScheduleExpression="rate(1 hour)", Tags=[{"Key": "team", "Value": "a"}])[
        "RuleArn"
    ]
    events.tag_resource(ResourceARN=arn, Tags=[{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "b"}])
    assert events.list_tags_for_resource(ResourceARN=arn)["Tags"] == [
        {"Key": "env", "Value": "dev"},
        {"Key": "team", "Value": "b"},
    ]
    events.untag_resource(ResourceARN=arn, TagKeys=["env"])
    assert events.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "b"}]
    events.delete_rule(Name="tagged")
    code, message, _, _ = error_of(events.list_tags_for_resource, ResourceARN=arn)
    assert (code, message) == ("ResourceNotFoundException", "Rule tagged does not exist on EventBus default.")


# --- the Scheduler API -----------------------------------------------------------------------------
def test_schedule_lifecycle(squall: SquallServer) -> None:
    scheduler = squall.client("scheduler")
    target = {"Arn": fn_arn("job"), "RoleArn": SCHEDULER_ROLE, "Input": '{"k": 1}'}
    arn = scheduler.create_schedule(
        Name="hourly",
        ScheduleExpression="rate(1 hour)",
        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 10},
        Target=target,
        Description="every hour",
    )["ScheduleArn"]
    assert arn == "arn:aws:scheduler:us-east-1:000000000000:schedule/default/hourly"
    got = scheduler.get_schedule(Name="hourly")
    assert got["Arn"] == arn and got["GroupName"] == "default" and got["Name"] == "hourly"
    assert got["State"] == "ENABLED" and got["ActionAfterCompletion"] == "NONE"
    assert got["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 10}
    assert got["Target"]["Input"] == '{"k": 1}'
    assert got["Target"]["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    assert isinstance(got["CreationDate"], datetime) and got["Description"] == "every hour"

    code, _, status, _ = error_of(
        scheduler.create_schedule,
        Name="hourly",
        ScheduleExpression="rate(1 hour)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )
    assert (code, status) == ("ConflictException", 409)

    scheduler.update_schedule(
        Name="hourly",
        ScheduleExpression="cron(0 9 ? * MON-FRI *)",
        ScheduleExpressionTimezone="Europe/Paris",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
        State="DISABLED",
    )
    scheduler.update_schedule(
        Name="hourly",
        ScheduleExpression="cron(0 9 ? * MON-FRI *)",
        ScheduleExpressionTimezone="Europe/Paris",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
        State="DISABLED",
        StartDate=datetime(2030, 1, 1, tzinfo=UTC),
        EndDate=datetime(2031, 1, 1, tzinfo=UTC),
    )
    got = scheduler.get_schedule(Name="hourly", GroupName="default")
    assert got["StartDate"] == datetime(2030, 1, 1, tzinfo=UTC) and got["EndDate"] == datetime(2031, 1, 1, tzinfo=UTC)
    assert got["ScheduleExpression"] == "cron(0 9 ? * MON-FRI *)" and got["State"] == "DISABLED"
    assert got["ScheduleExpressionTimezone"] == "Europe/Paris" and "Description" not in got

    for i in range(3):
        scheduler.create_schedule(
            Name=f"list-{i}",
            ScheduleExpression="at(2099-01-01T00:00:00)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target=target,
        )
    first = scheduler.list_schedules(NamePrefix="list-", MaxResults=2)
    assert [s["Name"] for s in first["Schedules"]] == ["list-0", "list-1"]
    assert first["Schedules"][0]["Target"] == {"Arn": fn_arn("job")}
    second = scheduler.list_schedules(NamePrefix="list-", MaxResults=2, NextToken=first["NextToken"])
    assert [s["Name"] for s in second["Schedules"]] == ["list-2"] and "NextToken" not in second
    disabled = scheduler.list_schedules(State="DISABLED")["Schedules"]
    assert [s["Name"] for s in disabled] == ["hourly"]

    for name in ["hourly", "list-0", "list-1", "list-2"]:
        scheduler.delete_schedule(Name=name)
    code, message, status, _ = error_of(scheduler.get_schedule, Name="hourly")
    assert (code, message, status) == ("ResourceNotFoundException", "Schedule hourly does not exist.", 404)
    code, message, status, _ = error_of(scheduler.delete_schedule, Name="hourly")
    assert (code, message, status) == ("ResourceNotFoundException", "Schedule hourly does not exist.", 404)
    code, _, status, _ = error_of(
        scheduler.update_schedule,
        Name="hourly",
        ScheduleExpression="rate(1 hour)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_schedule_errors(squall: SquallServer) -> None:
    scheduler = squall.client("scheduler")
    target = {"Arn": fn_arn("job"), "RoleArn": SCHEDULER_ROLE}

    def create(**kwargs: Any) -> tuple[str, str, int, dict[str, Any]]:
        params = {
            "Name": "bad",
            "ScheduleExpression": "rate(1 hour)",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": target,
        }
        params.update(kwargs)
        return error_of(scheduler.create_schedule, **params)

    code, message, status, _ = create(ScheduleExpression="cron(0 0 * * * *)")
    assert (code, message, status) == ("ValidationException", "Invalid Schedule Expression cron(0 0 * * * *).", 400)
    code, _, status, _ = create(ScheduleExpressionTimezone="Mars/Olympus")
    assert (code, status) == ("ValidationException", 400)
    code, _, _, _ = create(FlexibleTimeWindow={"Mode": "FLEXIBLE"})
    assert code == "ValidationException"
    code, message, _, _ = create(Target={"Arn": fn_arn("job"), "RoleArn": "not-a-role"})
    assert code == "ValidationException" and "target.roleArn" in message
    code, _, status, _ = create(GroupName="nope")
    assert (code, status) == ("ResourceNotFoundException", 404)


# --- firing ----------------------------------------------------------------------------------------
class Receiver:
    """An HTTP endpoint in this process collecting every event the function posts."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.events.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                seen = list(self.events)
            if predicate(seen):
                return seen
            time.sleep(0.05)
        raise AssertionError(f"timed out; received {self.events}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers started in this test run their schedule clock 60x faster (test-only)."""
    monkeypatch.setenv("SQUALL_SCHEDULE_TIME_SCALE", "60")


def recorder(server: SquallServer, receiver: Receiver, name: str = "recorder") -> None:
    lam = server.client("lambda")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": RECORDER})},
        Environment={"Variables": {"RECEIVER": receiver.url}},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})


def scheduled(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if isinstance(e, dict) and e.get("detail-type") == "Scheduled Event"]


def assert_once_per_tick(events: list[dict[str, Any]]) -> list[str]:
    """Each tick fired once: one event id per tick (a redelivered async invocation repeats its id)."""
    ids: dict[str, set[str]] = defaultdict(set)
    for event in events:
        ids[event["time"]].add(event["id"])
    assert all(len(v) == 1 for v in ids.values()), ids
    return sorted(ids)


@pytest.mark.slow
def test_a_rule_fires_its_function_with_the_scheduled_event(
    fast: None, new_server: Callable[..., SquallServer], receiver: Receiver
) -> None:
    server = new_server()
    recorder(server, receiver)
    events = server.client("events")
    arn = events.put_rule(Name="every-minute", ScheduleExpression="rate(1 minute)")["RuleArn"]
    events.put_targets(
        Rule="every-minute",
        Targets=[
            {"Id": "event", "Arn": fn_arn("recorder")},
            {"Id": "const", "Arn": fn_arn("recorder"), "Input": '{"n": 7}'},
        ],
    )
    seen = receiver.wait(lambda got: len(scheduled(got)) >= 3 and {"n": 7} in got)
    ticks = scheduled(seen)
    event = ticks[0]
    sample = json.loads(SAMPLE.read_text())
    assert shape(event) == shape(sample)
    parsed = EventBridgeModel.model_validate(event)
    assert parsed.detail_type == "Scheduled Event" and parsed.source == "aws.events"
    assert event["resources"] == [arn] and event["region"] == "us-east-1" and event["account"] == "000000000000"
    times = assert_once_per_tick(ticks)
    stamps = [datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() for t in times]
    assert all((b - a) % 60 == 0 for a, b in itertools.pairwise(stamps))
    events.disable_rule(Name="every-minute")


@pytest.mark.slow
def test_exactly_once_per_tick_across_a_kill_and_one_catch_up(
    fast: None, new_server: Callable[..., SquallServer], receiver: Receiver
) -> None:
    server = new_server()
    recorder(server, receiver)
    events = server.client("events")
    events.put_rule(Name="tick", ScheduleExpression="rate(1 minute)")
    events.put_targets(Rule="tick", Targets=[{"Id": "t", "Arn": fn_arn("recorder")}])
    receiver.wait(lambda got: len(scheduled(got)) >= 3)
    server.stop(signal.SIGKILL)
    before = assert_once_per_tick(scheduled(receiver.events))
    time.sleep(5)  # about five schedule minutes pass with no server
    server.start()
    after = receiver.wait(lambda got: len({e["time"] for e in scheduled(got)}) >= len(before) + 3)
    times = assert_once_per_tick(scheduled(after))
    stamps = [datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").timestamp() for t in times]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap % 60 == 0 for gap in gaps)
    # The downtime (over five schedule minutes) left one long gap: the missed ticks were not replayed.
    assert len([gap for gap in gaps if gap >= 240]) == 1, gaps
    server.client("events").disable_rule(Name="tick")


@pytest.mark.slow
def test_only_the_lease_holder_fires_and_another_server_takes_over(
    fast: None, new_server: Callable[..., SquallServer], receiver: Receiver
) -> None:
    first = new_server()
    second = SquallServer(first.data_dir)
    second.start()
    try:
        recorder(first, receiver)
        events = first.client("events")
        events.put_rule(Name="shared", ScheduleExpression="rate(1 minute)")
        events.put_targets(Rule="shared", Targets=[{"Id": "t", "Arn": fn_arn("recorder")}])
        receiver.wait(lambda got: len(scheduled(got)) >= 3)
        with sqlite3.connect(first.data_dir / "leases.db") as db:
            (holder,) = db.execute("SELECT owner FROM leases WHERE name LIKE 'scheduler/%'").fetchone()
        assert first.proc is not None and second.proc is not None
        assert holder.split("/")[1] == str(first.proc.pid)
        first.stop(signal.SIGKILL)
        count = len({e["time"] for e in scheduled(receiver.events)})
        got = receiver.wait(lambda got: len({e["time"] for e in scheduled(got)}) >= count + 3)
        assert_once_per_tick(scheduled(got))
        with sqlite3.connect(first.data_dir / "leases.db") as db:
            (holder,) = db.execute("SELECT owner FROM leases WHERE name LIKE 'scheduler/%'").fetchone()
        assert holder.split("/")[1] == str(second.proc.pid)
    finally:
        second.stop()


@pytest.mark.slow
def test_scheduler_schedules_fire_with_their_input_and_one_time_ones_delete_themselves(
    fast: None, new_server: Callable[..., SquallServer], receiver: Receiver
) -> None:
    server = new_server()
    recorder(server, receiver)
    scheduler = server.client("scheduler")
    target = {"Arn": fn_arn("recorder"), "RoleArn": SCHEDULER_ROLE}
    scheduler.create_schedule(
        Name="recurring",
        ScheduleExpression="rate(1 minute)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={**target, "Input": '{"from": "recurring"}'},
    )
    # The schedule clock of a time-scaled server starts from an origin kept in schedules.db.
    with sqlite3.connect(server.data_dir / "schedules.db") as db:
        (origin,) = db.execute("SELECT value FROM meta WHERE key = 'clock_origin'").fetchone()
    now = float(origin) + (time.time() - float(origin)) * 60
    when = datetime.fromtimestamp(now + 180, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    scheduler.create_schedule(
        Name="once",
        ScheduleExpression=f"at({when})",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={**target, "Input": '{"from": "once"}'},
        ActionAfterCompletion="DELETE",
    )
    seen = receiver.wait(lambda got: {"from": "once"} in got and got.count({"from": "recurring"}) >= 2)
    assert seen.count({"from": "once"}) == 1
    code, _, _, _ = error_of(scheduler.get_schedule, Name="once")
    assert code == "ResourceNotFoundException"
    scheduler.delete_schedule(Name="recurring")


# --- docs/schedules.md -----------------------------------------------------------------------------
@pytest.mark.slow
def test_docs_examples_run(squall: SquallServer, make_function: Callable[..., Any]) -> None:
    make_function("nightly-report", make_zip({"app.py": "def handler(event, context):\n    return event\n"}))
    blocks = [code for language, code in code_blocks((DOCS / "schedules.md").read_text()) if language == "python"]
    assert blocks
    env = {**squall.cli_env(), "AWS_ENDPOINT_URL": squall.url}
    result = subprocess.run(
        [sys.executable, "-c", "\n".join(blocks).replace("http://127.0.0.1:8990", squall.url)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "arn:aws:events:us-east-1:000000000000:rule/nightly-report",
        "targets: 1",
        "arn:aws:scheduler:us-east-1:000000000000:schedule/default/reminder",
        "ENABLED FLEXIBLE",
        "cleaned up",
    ]
