"""Firing scheduled rules and Scheduler schedules: each due tick invokes each target asynchronously.

Exactly once per tick, across restarts: ``claim_due`` advances a schedule's ``last_tick`` and writes
the invocations the tick owes into ``outbox``, in one transaction; ``deliver`` then hands each outbox
row to Lambda's async path (the Invoke API's ``InvocationType=Event``) and deletes it. A crash
before the claim commits loses nothing (the tick is still due); one after it leaves outbox rows that
the next holder delivers. Ticks missed while no server ran are not replayed: only the latest of them
fires (at most one catch-up).

Only one server fires: the holder of the schedule store's lease (``lease_for``: one per deployment
in the scale-out tier). Others poll for it and stay idle until
the holder stops or dies. Tick identity is wall-clock UTC (from the ``Clock``); waiting between
passes uses the event loop's monotonic clock.

``SQUALL_SCHEDULE_TIME_SCALE`` (test-only) makes the schedule clock run that many times faster than
real time, from an origin fixed in the schedule store so that it stays continuous across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from squall.background import cancel_and_wait
from squall.errors import SquallError
from squall.services.events.service import RuleService
from squall.services.events.store import ScheduleDb
from squall.services.scheduler.service import ScheduleService
from squall.sources import cron
from squall.sources.owner import new_owner, owner_alive
from squall.stores.base import LeaseStore
from squall.stores.sql import Connection, SqlDatabase

log = logging.getLogger(__name__)

LEASE = "scheduler"
LEASE_TTL_S = 15.0
#: Real seconds between passes (and between attempts to take the lease when another server holds it).
POLL_S = 1.0
#: With a scaled test clock, passes come at most this many schedule seconds apart.
SCALED_POLL_S = 15.0
TIME_SCALE_ENV = "SQUALL_SCHEDULE_TIME_SCALE"

#: Invoke a function asynchronously: (name, qualifier, payload).
InvokeEvent = Callable[[str, str | None, bytes], Awaitable[object]]


class Clock(Protocol):
    """The schedule clock: ``now()`` in epoch seconds (wall clock, UTC) and a monotonic ``sleep``."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ScaledClock:
    """Test-only: time runs ``scale`` times faster than real time from ``origin`` (epoch s)."""

    def __init__(self, origin: float, scale: float) -> None:
        self.origin = origin
        self.scale = scale

    def now(self) -> float:
        return self.origin + (time.time() - self.origin) * self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.scale)


@dataclass
class Firing:
    """One invocation a claimed tick owes."""

    function_arn: str
    payload: bytes


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_event(tick: float, rule_arn: str, account: str, region: str) -> dict[str, Any]:
    """EventBridge's Scheduled Event for one tick of a rule (spec §5.8)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": iso(tick),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def _local(epoch: float, zone: ZoneInfo, lower: bool) -> datetime:
    """The wall-clock bound of ``epoch`` for comparing ticks, which are local times taken at their first
    occurrence: during a repeated hour (fold 1), local times up to the repeat's end already occurred
    once, so the bound moves forward by the offset change (for a lower bound, to just before it)."""
    local = datetime.fromtimestamp(epoch, zone)
    naive = local.replace(tzinfo=None)
    if local.fold:
        first, second = local.replace(fold=0).utcoffset(), local.utcoffset()
        if first is not None and second is not None:
            naive += first - second - (timedelta(seconds=1) if lower else timedelta())
    return naive


def _zone_tick(expression: cron.Expression, zone: ZoneInfo, after: float, now: float) -> float | None:
    """The latest tick of a cron/at expression in ``(after, now]``, evaluated in ``zone``."""
    local_after = _local(after, zone, lower=True)
    local_now = _local(now, zone, lower=False)
    if isinstance(expression, cron.At):
        found: datetime | None = expression.when if local_after < expression.when <= local_now else None
    else:
        assert isinstance(expression, cron.Cron)
        found = cron.latest_at_or_before(expression, local_after, local_now)
    while found is not None:
        epoch = found.replace(tzinfo=zone).timestamp()
        # A local time a DST change skips does not exist: no tick then.
        # unverified: how AWS Scheduler treats such times.
        if datetime.fromtimestamp(epoch, zone).replace(tzinfo=None) == found and after < epoch <= now:
            return epoch
        if isinstance(expression, cron.At):
            return None
        found = cron.latest_at_or_before(expression, local_after, found - timedelta(minutes=1))
    return None


def latest_tick(expression: str, anchor: float, after: float, now: float, zone: str = "UTC") -> float | None:
    """The latest tick in ``(after, now]`` of an expression anchored at ``anchor`` (rate's start)."""
    parsed = cron.parse(expression, allow_at=True)
    if isinstance(parsed, cron.Rate):
        if now < anchor + parsed.seconds:
            return None
        tick = anchor + (now - anchor) // parsed.seconds * parsed.seconds
        return tick if tick > after else None
    return _zone_tick(parsed, ZoneInfo(zone), after, now)


def next_tick(expression: str, anchor: float, after: float, zone: str = "UTC") -> float | None:
    """The first tick strictly after ``after``; None when the expression has no later one."""
    parsed = cron.parse(expression, allow_at=True)
    if isinstance(parsed, cron.Rate):
        return anchor + max(1.0, (after - anchor) // parsed.seconds + 1) * parsed.seconds
    tz = ZoneInfo(zone)
    local = _local(after, tz, lower=True)
    found = (parsed.when if parsed.when > local else None) if isinstance(parsed, cron.At) else parsed.next_after(local)
    return None if found is None else found.replace(tzinfo=tz).timestamp()


def flex_offset(arn: str, tick: float, window_minutes: int) -> float:
    """A FLEXIBLE window's delay for one tick: random within the window, the same for every pass."""
    return random.Random(f"{arn}@{tick}").uniform(0, window_minutes * 60)


class ScheduleFiring:
    """Claims due ticks of rules and schedules into the outbox, and delivers the outbox."""

    def __init__(self, db: ScheduleDb, rules: RuleService, schedules: ScheduleService, invoke: InvokeEvent) -> None:
        self.db = db
        self.rules = rules
        self.schedules = schedules
        self.invoke = invoke

    def claim_due(self, now: float) -> int:
        """Claim every due tick; how many invocations were queued in the outbox."""
        return self.db.tx(lambda conn: self._claim_rules(conn, now) + self._claim_schedules(conn, now))

    def _claim_rules(self, conn: Connection, now: float) -> int:
        queued = 0
        # Locked: a claim racing another server's (a lease changing hands) waits for it, then sees
        # the ``last_tick`` it wrote, so a tick is claimed once.
        rows = conn.execute(
            "SELECT bus, name, arn, expression, anchor, last_tick FROM rules"
            " WHERE state != 'DISABLED' AND expression IS NOT NULL ORDER BY bus, name" + self.db.db.for_update
        ).fetchall()
        for bus, name, arn, expression, anchor, last in rows:
            tick = latest_tick(expression, anchor, last, now)
            if tick is None:
                continue
            conn.execute("UPDATE rules SET last_tick = ? WHERE bus = ? AND name = ?", (tick, bus, name))
            event = scheduled_event(tick, arn, self.rules.account_id, self.rules.region)
            for (body,) in conn.execute("SELECT body FROM targets WHERE bus = ? AND rule = ?", (bus, name)).fetchall():
                target = json.loads(body)
                payload = _rule_payload(target, event)
                if payload is not None:
                    conn.execute("INSERT INTO outbox (function_arn, payload) VALUES (?, ?)", (target["Arn"], payload))
                    queued += 1
        return queued

    def _claim_schedules(self, conn: Connection, now: float) -> int:
        queued = 0
        rows = conn.execute(
            "SELECT grp, name, arn, body, anchor, last_tick FROM schedules ORDER BY grp, name" + self.db.db.for_update
        ).fetchall()
        for group, name, arn, body, anchor, last in rows:
            settings = json.loads(body)
            if settings["State"] == "DISABLED":
                continue
            zone = settings.get("ScheduleExpressionTimezone") or "UTC"
            expression = settings["ScheduleExpression"]
            start, end = settings.get("StartDate"), settings.get("EndDate")
            origin = anchor if start is None else start

            tick = _due(expression, origin, last, now if end is None else min(now, end), zone, start)
            window = settings["FlexibleTimeWindow"]
            if tick is not None and window["Mode"] == "FLEXIBLE":
                minutes = window["MaximumWindowInMinutes"]
                if tick + flex_offset(arn, tick, minutes) > now:
                    # Not yet; an earlier unfired tick whose moment has come goes first.
                    earlier = _due(expression, origin, last, tick - 1, zone, start)
                    tick = (
                        earlier if earlier is not None and earlier + flex_offset(arn, earlier, minutes) <= now else None
                    )
            if tick is not None:
                last = tick
                conn.execute("UPDATE schedules SET last_tick = ? WHERE grp = ? AND name = ?", (tick, group, name))
                target = settings["Target"]
                # unverified: with no Input, what AWS Scheduler sends a Lambda target; Squall sends {}.
                payload = str(target.get("Input") or "{}").encode()
                conn.execute("INSERT INTO outbox (function_arn, payload) VALUES (?, ?)", (target["Arn"], payload))
                queued += 1
            if settings.get("ActionAfterCompletion") == "DELETE":
                following = next_tick(expression, origin, last, zone)
                if following is None or (end is not None and following > end):
                    conn.execute("DELETE FROM schedules WHERE grp = ? AND name = ?", (group, name))
        return queued

    async def deliver(self) -> int:
        """Hand every outbox row to the async invoke path; how many rows were looked at."""
        rows = await asyncio.to_thread(self.db.read, "SELECT seq, function_arn, payload FROM outbox ORDER BY seq")
        for seq, function_arn, payload in rows:
            name, _, qualifier = str(function_arn).split(":function:", 1)[1].partition(":")
            try:
                await self.invoke(name, qualifier or None, bytes(payload))
            except SquallError as exc:
                if exc.status >= 500:
                    # Squall itself failed (its store, say): the row stays for the next pass.
                    log.warning("schedule target %s: will retry: %s", function_arn, exc.message)
                    return len(rows)
                # The function is gone or refuses the payload: AWS would retry, then drop the event.
                log.warning("schedule target %s: dropped: %s", function_arn, exc.message)
            await asyncio.to_thread(
                self.db.tx, lambda conn, s=seq: conn.execute("DELETE FROM outbox WHERE seq = ?", (s,))
            )
        return len(rows)


def _due(expression: str, origin: float, last: float, upto: float, zone: str, start: float | None) -> float | None:
    """A schedule's latest unfired tick up to ``upto``, not before its StartDate."""
    tick = latest_tick(expression, origin, last, upto, zone)
    return None if tick is None or (start is not None and tick < start) else tick


def _rule_payload(target: dict[str, Any], event: dict[str, Any]) -> bytes | None:
    if "Input" in target:
        return str(target["Input"]).encode()
    if "InputPath" in target:
        value: Any = event
        for part in [p for p in str(target["InputPath"]).removeprefix("$").split(".") if p]:
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return json.dumps(value).encode()
    return json.dumps(event).encode()


def lease_for(store: Path | SqlDatabase) -> str:
    """The lease that lets one server at a time fire the schedules kept in ``store``.

    A file's is named after it (host and resolved path): servers sharing a data directory contend
    for one lease. A shared database (the scale-out tier, whose leases live in the same deployment's
    PostgreSQL) has one set of schedules for every server, so one lease, ``scheduler``: each tick
    fires once per deployment, not once per server.
    """
    if isinstance(store, Path):
        return f"{LEASE}/{socket.gethostname()}:{store.resolve()}"
    return LEASE


class ScheduleRunner:
    """The firing loop: takes its schedule store's lease, then claims and delivers on every pass."""

    def __init__(
        self, firing: ScheduleFiring, leases: LeaseStore, clock: Clock, poll_s: float = POLL_S, lease: str = LEASE
    ) -> None:
        """``poll_s`` is in schedule-clock seconds (monotonic waits through ``clock.sleep``)."""
        self.firing = firing
        self.poll_s = poll_s
        self.leases = leases
        self.lease = lease
        self.clock = clock
        self.owner = new_owner()
        self.holding = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        if self.holding:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.leases.release, self.owner, self.lease)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        renewed = 0.0
        while True:
            try:
                if not self.holding:
                    await asyncio.to_thread(self.leases.reap_abandoned, owner_alive)
                    self.holding = await asyncio.to_thread(self.leases.acquire, self.owner, self.lease, LEASE_TTL_S)
                    renewed = loop.time()
                elif loop.time() - renewed > LEASE_TTL_S / 3:
                    held = await asyncio.to_thread(self.leases.extend, self.owner, LEASE_TTL_S)
                    self.holding = self.lease in held
                    renewed = loop.time()
                if self.holding:
                    await self.pass_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("schedules: pass failed")
            await self.clock.sleep(self.poll_s)

    async def pass_once(self) -> None:
        """Claim what is due now and deliver the outbox."""
        await asyncio.to_thread(self.firing.claim_due, self.clock.now())
        await self.firing.deliver()


@dataclass
class Schedules:
    """The schedule services and their firing loop, as the platform builds them."""

    db: ScheduleDb
    rules: RuleService
    schedules: ScheduleService
    runner: ScheduleRunner

    async def start(self) -> None:
        await self.runner.start()

    async def stop(self) -> None:
        await self.runner.stop()
        self.db.close()


def build_schedules(
    source: Path | SqlDatabase, account_id: str, region: str, invoke: InvokeEvent, leases: LeaseStore
) -> Schedules:
    """The schedule store (a file, or the shared configuration database), the two services on it,
    and the firing loop (not started)."""
    db = ScheduleDb(source)
    scale = float(os.environ.get(TIME_SCALE_ENV) or 1)
    if scale <= 0:
        raise ValueError(f"{TIME_SCALE_ENV} must be positive")
    clock: Clock = ScaledClock(db.clock_origin(), scale) if scale != 1 else SystemClock()
    rules = RuleService(db, account_id, region, clock.now)
    schedules = ScheduleService(db, account_id, region, clock.now)
    runner = ScheduleRunner(
        ScheduleFiring(db, rules, schedules, invoke),
        leases,
        clock,
        min(POLL_S * scale, SCALED_POLL_S) if scale > 1 else POLL_S,
        lease_for(source),
    )
    return Schedules(db, rules, schedules, runner)
