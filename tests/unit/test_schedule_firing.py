"""Claiming ticks and delivering them, on a real ``schedules.db`` with a hand-driven clock."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from squall.errors import ResourceNotFound, StoreUnavailable
from squall.services.events.service import RuleService
from squall.services.events.store import ScheduleDb
from squall.services.scheduler.errors import ScheduleNotFound
from squall.services.scheduler.service import ScheduleService
from squall.sources.schedules import ScheduleFiring, ScheduleRunner, flex_offset, latest_tick, lease_for, next_tick
from squall.stores.leases import SqliteLeaseStore

FUNCTION = "arn:aws:lambda:us-east-1:000000000000:function:job"
ROLE = "arn:aws:iam::000000000000:role/r"


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


class Setup:
    """A schedule store in a temp dir, its services on a settable clock, and the invocations made."""

    def __init__(self, path: Path, now: float) -> None:
        self.path = path
        self.now = now
        self.invoked: list[tuple[str, str | None, dict[str, Any]]] = []
        self.failed_once = False
        self.open()

    def open(self) -> None:
        self.db = ScheduleDb(self.path / "schedules.db")
        self.rules = RuleService(self.db, "000000000000", "us-east-1", lambda: self.now)
        self.schedules = ScheduleService(self.db, "000000000000", "us-east-1", lambda: self.now)
        self.firing = ScheduleFiring(self.db, self.rules, self.schedules, self.invoke)

    async def invoke(self, name: str, qualifier: str | None, payload: bytes) -> None:
        if name == "gone":
            raise ResourceNotFound("Function not found")
        if name == "flaky" and not self.failed_once:
            self.failed_once = True
            raise StoreUnavailable("disk full")
        self.invoked.append((name, qualifier, json.loads(payload)))

    def run(self, now: float) -> list[dict[str, Any]]:
        """One pass at ``now``: the payloads invoked by it."""
        self.now = now
        before = len(self.invoked)
        self.firing.claim_due(now)
        asyncio.run(self.firing.deliver())
        return [payload for _, _, payload in self.invoked[before:]]

    def schedule(self, name: str, expression: str, **extra: Any) -> None:
        params = {
            "ScheduleExpression": expression,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {"Arn": FUNCTION, "RoleArn": ROLE},
        }
        params.update(extra)
        self.schedules.put(name, None, params, create=True)


@pytest.fixture
def env(tmp_path: Path) -> Setup:
    return Setup(tmp_path, at("2026-01-05T10:00:30"))


def test_rate_rule_fires_once_per_tick_with_the_scheduled_event(env: Setup) -> None:
    arn = env.rules.put_rule("every-minute", "rate(1 minute)", None, None, None, None, [])
    env.rules.put_targets("every-minute", [{"Id": "a", "Arn": FUNCTION}, {"Id": "b", "Arn": FUNCTION, "Input": "7"}])
    assert env.run(at("2026-01-05T10:01:00")) == []  # the first tick is one period after creation
    fired = env.run(at("2026-01-05T10:01:31"))
    event = next(p for p in fired if isinstance(p, dict))
    assert sorted(fired, key=str) == sorted([event, 7], key=str)
    assert event["time"] == "2026-01-05T10:01:30Z"
    assert event["resources"] == [arn]
    assert (event["version"], event["detail-type"], event["source"], event["detail"]) == (
        "0",
        "Scheduled Event",
        "aws.events",
        {},
    )
    assert env.run(at("2026-01-05T10:02:29")) == []  # the same tick is never claimed twice
    assert [e["time"] for e in env.run(at("2026-01-05T10:02:30")) if isinstance(e, dict)] == ["2026-01-05T10:02:30Z"]


def test_missed_ticks_are_not_replayed_only_the_latest_catches_up(env: Setup) -> None:
    env.rules.put_rule("r", "cron(* * * * ? *)", None, None, None, None, [])
    env.rules.put_targets("r", [{"Id": "a", "Arn": FUNCTION}])
    assert len(env.run(at("2026-01-05T10:01:05"))) == 1
    fired = env.run(at("2026-01-05T11:30:10"))  # 89 ticks missed
    assert [e["time"] for e in fired] == ["2026-01-05T11:30:00Z"]


def test_a_reopened_store_does_not_fire_a_claimed_tick_again(env: Setup) -> None:
    env.rules.put_rule("r", "rate(5 minutes)", None, None, None, None, [])
    env.rules.put_targets("r", [{"Id": "a", "Arn": FUNCTION}])
    assert len(env.run(at("2026-01-05T10:05:40"))) == 1
    env.db.close()
    env.open()
    assert env.run(at("2026-01-05T10:06:00")) == []
    assert len(env.run(at("2026-01-05T10:10:31"))) == 1


def test_a_claimed_tick_left_in_the_outbox_is_delivered_by_the_next_pass(env: Setup) -> None:
    env.rules.put_rule("r", "rate(1 minute)", None, None, None, None, [])
    env.rules.put_targets("r", [{"Id": "a", "Arn": FUNCTION}])
    env.firing.claim_due(at("2026-01-05T10:01:30"))  # claimed, then "crashed" before delivering
    env.db.close()
    env.open()
    assert [e["time"] for e in env.run(at("2026-01-05T10:01:40"))] == ["2026-01-05T10:01:30Z"]


def test_disabled_rules_do_not_fire_and_owe_nothing_when_enabled(env: Setup) -> None:
    env.rules.put_rule("r", "rate(1 minute)", None, "DISABLED", None, None, [])
    env.rules.put_targets("r", [{"Id": "a", "Arn": FUNCTION}])
    assert env.run(at("2026-01-05T10:05:00")) == []
    env.rules.set_state("r", True)
    assert env.run(at("2026-01-05T10:05:10")) == []
    assert len(env.run(at("2026-01-05T10:06:31"))) == 1
    env.rules.set_state("r", False)
    assert env.run(at("2026-01-05T10:09:00")) == []
    env.rules.put_rule("r", "rate(1 minute)", None, "ENABLED", None, None, [])  # re-enabled by PutRule
    assert env.run(at("2026-01-05T10:09:10")) == []
    assert [e["time"] for e in env.run(at("2026-01-05T10:09:31"))] == ["2026-01-05T10:09:30Z"]


def test_input_path_and_a_missing_function(env: Setup) -> None:
    env.rules.put_rule("r", "rate(1 minute)", None, None, None, None, [])
    gone = FUNCTION.replace(":job", ":gone")
    env.rules.put_targets("r", [{"Id": "a", "Arn": FUNCTION, "InputPath": "$.detail-type"}, {"Id": "b", "Arn": gone}])
    assert env.run(at("2026-01-05T10:01:31")) == ["Scheduled Event"]
    assert env.db.read("SELECT COUNT(*) FROM outbox") == [(0,)]  # the failed one is not retried forever


def test_scheduler_input_time_zone_and_one_time_delete(env: Setup) -> None:
    env.schedule(
        "tz",
        "cron(30 11 * * ? *)",
        ScheduleExpressionTimezone="Europe/Paris",
        Target={"Arn": FUNCTION + ":live", "RoleArn": ROLE, "Input": '{"job": "nightly"}'},
    )
    env.schedule("once", "at(2026-01-05T10:03:00)", ActionAfterCompletion="DELETE")
    env.schedule("kept", "at(2026-01-05T10:03:00)")
    assert env.run(at("2026-01-05T10:02:59")) == []
    assert env.run(at("2026-01-05T10:03:00")) == [{}, {}]
    with pytest.raises(ScheduleNotFound):
        env.schedules.get("once", None)
    assert env.schedules.get("kept", None).settings["ScheduleExpression"] == "at(2026-01-05T10:03:00)"
    assert env.run(at("2026-01-05T10:29:59")) == []
    assert env.run(at("2026-01-05T10:30:00")) == [{"job": "nightly"}]  # 11:30 in Paris is 10:30 UTC
    assert env.invoked[-1][:2] == ("job", "live")


def test_start_and_end_dates_bound_the_ticks(env: Setup) -> None:
    env.schedule(
        "bounded",
        "rate(1 minute)",
        StartDate=at("2026-01-05T10:10:00"),
        EndDate=at("2026-01-05T10:12:30"),
        ActionAfterCompletion="DELETE",
    )
    assert env.run(at("2026-01-05T10:09:59")) == []
    assert env.run(at("2026-01-05T10:11:00")) == [{}]
    assert env.run(at("2026-01-05T10:12:00")) == [{}]
    assert env.run(at("2026-01-05T10:20:00")) == []
    with pytest.raises(ScheduleNotFound):
        env.schedules.get("bounded", None)


def test_flexible_window_fires_at_the_tick_s_own_offset(env: Setup) -> None:
    env.schedule("flex", "cron(0 11 * * ? *)", FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15})
    arn = env.schedules.get("flex", None).arn
    tick = at("2026-01-05T11:00:00")
    offset = flex_offset(arn, tick, 15)
    assert 0 <= offset < 15 * 60
    assert offset == flex_offset(arn, tick, 15)  # the same on every pass and every server
    assert flex_offset(arn, tick + 86400, 15) != offset
    assert env.run(tick + offset - 1) == []
    assert env.run(tick + offset) == [{}]
    assert env.run(tick + 15 * 60) == []


def test_dst_gap_times_do_not_fire() -> None:
    # 02:30 does not exist in New York on 2026-03-08; the next 02:30 is the next day's.
    tick = latest_tick(
        "cron(30 2 * * ? *)", 0, at("2026-03-08T00:00:00"), at("2026-03-09T12:00:00"), "America/New_York"
    )
    assert tick == at("2026-03-09T06:30:00")
    assert (
        latest_tick("cron(30 2 * * ? *)", 0, at("2026-03-08T00:00:00"), at("2026-03-08T23:00:00"), "America/New_York")
        is None
    )


def test_next_tick() -> None:
    assert next_tick("rate(5 minutes)", 100.0, 100.0) == 400.0
    assert next_tick("rate(5 minutes)", 100.0, 50.0) == 400.0
    assert next_tick("at(2026-01-05T10:03:00)", 0, at("2026-01-05T10:03:00")) is None
    assert next_tick("cron(0 12 * * ? *)", 0, at("2026-01-05T10:00:00")) == at("2026-01-05T12:00:00")


def test_a_squall_failure_keeps_the_invocation_for_the_next_pass(env: Setup) -> None:
    env.rules.put_rule("r", "rate(1 minute)", None, None, None, None, [])
    env.rules.put_targets("r", [{"Id": "a", "Arn": FUNCTION.replace(":job", ":flaky")}])
    assert env.run(at("2026-01-05T10:01:31")) == []
    assert [e["time"] for e in env.run(at("2026-01-05T10:01:32"))] == ["2026-01-05T10:01:30Z"]
    assert env.run(at("2026-01-05T10:01:33")) == []


class SteppedClock:
    """Schedule time that only the test moves: it steps to the next wake-up once every runner sleeps.

    Each runner's passes happen at the same schedule times however slow the machine is, so the
    test checks the lease logic, not the scheduler's timing.
    """

    def __init__(self, now: float) -> None:
        self.t = now
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.t + seconds, wake))
        await wake

    async def run_until(self, target: float, runners: int) -> None:
        while self.t < target:
            while len(self._waiting()) < runners:
                await asyncio.sleep(0.001)
            waiting = self._waiting()
            self.t = max(self.t, min(when for when, _ in waiting))
            self._sleepers = [(when, wake) for when, wake in waiting if when > self.t]
            for when, wake in waiting:
                if when <= self.t:
                    wake.set_result(None)

    def _waiting(self) -> list[tuple[float, asyncio.Future[None]]]:
        return [(when, wake) for when, wake in self._sleepers if not wake.done()]


def test_servers_with_their_own_schedule_stores_each_fire_theirs_on_one_lease_store(tmp_path: Path) -> None:
    # Servers with data directories of their own on one lease store: each fires its own schedules.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = Setup(tmp_path / "a", at("2026-01-05T10:00:30")), Setup(tmp_path / "b", at("2026-01-05T10:00:30"))
    for env, rule in ((a, "rule-a"), (b, "rule-b")):
        env.rules.put_rule(rule, "rate(1 minute)", None, None, None, None, [])
        env.rules.put_targets(rule, [{"Id": "t", "Arn": FUNCTION}])
    clock = SteppedClock(a.now)
    leases = SqliteLeaseStore(tmp_path / "leases.db")
    host = socket.gethostname()
    runners = [
        ScheduleRunner(env.firing, leases, clock, poll_s=15, lease=lease_for(env.path / "schedules.db"))
        for env in (a, b)
    ]
    runners[0].owner, runners[1].owner = f"{host}/{os.getpid()}/0", f"{host}/{os.getppid()}/0"
    assert runners[0].lease != runners[1].lease
    assert lease_for(a.path / "schedules.db") == lease_for(tmp_path / "a" / "." / "schedules.db")

    async def scenario() -> None:
        for runner in runners:
            await runner.start()
        await clock.run_until(at("2026-01-05T10:03:40"), runners=2)
        assert all(runner.holding for runner in runners)
        for runner in runners:
            await runner.stop()

    asyncio.run(scenario())
    assert len(a.invoked) == len(b.invoked) == 3


def test_only_the_lease_holder_fires_until_it_stops(tmp_path: Path) -> None:
    env = Setup(tmp_path, at("2026-01-05T10:00:30"))
    env.rules.put_rule("r", "rate(1 minute)", None, None, None, None, [])
    env.rules.put_targets("r", [{"Id": "a", "Arn": FUNCTION}])
    clock = SteppedClock(env.now)
    host = socket.gethostname()
    first = ScheduleRunner(env.firing, SqliteLeaseStore(tmp_path / "leases.db"), clock, poll_s=15)
    second = ScheduleRunner(env.firing, SqliteLeaseStore(tmp_path / "leases.db"), clock, poll_s=15)
    first.owner, second.owner = f"{host}/{os.getpid()}/0", f"{host}/{os.getppid()}/0"

    async def scenario() -> None:
        await first.start()
        await clock.run_until(at("2026-01-05T10:03:40"), runners=1)
        await second.start()
        await clock.run_until(at("2026-01-05T10:05:40"), runners=2)
        assert first.holding and not second.holding
        await first.stop()  # hands the lease over at once
        await clock.run_until(at("2026-01-05T10:08:40"), runners=1)
        assert second.holding
        await second.stop()

    asyncio.run(scenario())
    times = [payload["time"] for _, _, payload in env.invoked]
    assert times == [f"2026-01-05T10:0{m}:30Z" for m in range(1, 9)]
