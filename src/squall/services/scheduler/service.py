"""EventBridge Scheduler's schedules on ``schedules.db`` (the ``default`` group only)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from squall.services.events.store import ScheduleDb
from squall.services.scheduler.errors import ScheduleConflict, ScheduleNotFound, ScheduleValidation
from squall.sources import cron
from squall.stores.sql import Connection

DEFAULT_GROUP = "default"
#: The settings a schedule keeps, as CreateSchedule/UpdateSchedule name them.
SETTINGS = (
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "StartDate",
    "EndDate",
    "Description",
    "State",
    "KmsKeyArn",
    "Target",
    "FlexibleTimeWindow",
    "ActionAfterCompletion",
)


@dataclass
class Schedule:
    """One stored schedule: its identity, settings (as sent, with defaults) and dates."""

    group: str
    name: str
    arn: str
    settings: dict[str, Any]
    created: float
    modified: float

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Arn": self.arn, "GroupName": self.group, "Name": self.name}
        out.update(self.settings)
        out["CreationDate"] = self.created
        out["LastModificationDate"] = self.modified
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "Arn": self.arn,
            "Name": self.name,
            "GroupName": self.group,
            "State": self.settings["State"],
            "CreationDate": self.created,
            "LastModificationDate": self.modified,
            "Target": {"Arn": self.settings["Target"]["Arn"]},
        }


def not_found(name: str) -> ScheduleNotFound:
    return ScheduleNotFound(f"Schedule {name} does not exist.")


def check_expression(expression: str, timezone: str | None) -> None:
    """ValidationException unless the expression and its time zone are ones Scheduler accepts."""
    try:
        cron.parse(expression, allow_at=True)
    except cron.InvalidExpression:
        # Wording as reported from AWS in localstack/localstack#9284.
        raise ScheduleValidation(f"Invalid Schedule Expression {expression}.") from None
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            # unverified: AWS's wording for an unknown time zone.
            raise ScheduleValidation(f"Invalid ScheduleExpressionTimezone {timezone}.") from None


class ScheduleService:
    """CreateSchedule ... ListSchedules; ``now`` is the schedule clock (epoch seconds)."""

    def __init__(self, db: ScheduleDb, account_id: str, region: str, now: Callable[[], float]) -> None:
        self.db = db
        self.account_id = account_id
        self.region = region
        self.now = now

    def arn(self, group: str, name: str) -> str:
        return f"arn:aws:scheduler:{self.region}:{self.account_id}:schedule/{group}/{name}"

    @staticmethod
    def _group(group: str | None) -> str:
        group = group or DEFAULT_GROUP
        if group != DEFAULT_GROUP:
            # unverified: AWS's wording for a schedule group that does not exist.
            raise ScheduleNotFound(f"Schedule group {group} does not exist.")
        return group

    def put(self, name: str, group: str | None, params: dict[str, Any], create: bool) -> str:
        """CreateSchedule (``create``) or UpdateSchedule, which replaces every setting."""
        group = self._group(group)
        settings = {key: params[key] for key in SETTINGS if params.get(key) is not None}
        settings.setdefault("State", "ENABLED")
        settings.setdefault("ActionAfterCompletion", "NONE")
        check_expression(settings["ScheduleExpression"], settings.get("ScheduleExpressionTimezone"))
        settings["Target"].setdefault("RetryPolicy", {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185})
        start, end = settings.get("StartDate"), settings.get("EndDate")
        if start is not None and end is not None and end <= start:
            # unverified: AWS's wording when EndDate is not after StartDate.
            raise ScheduleValidation("The EndDate must be after the StartDate.")
        arn = self.arn(group, name)
        now = self.now()

        def write(conn: Connection) -> None:
            if create:
                taken = conn.execute(
                    "INSERT INTO schedules (grp, name, arn, body, anchor, last_tick, created, modified)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (grp, name) DO NOTHING",
                    (group, name, arn, json.dumps(settings), now, now, now, now),
                )
                if taken.rowcount == 0:
                    # unverified: AWS's wording for a name already taken in the group.
                    raise ScheduleConflict(f"Schedule {name} already exists.")
            elif (
                conn.execute(
                    "UPDATE schedules SET arn = ?, body = ?, anchor = ?, last_tick = ?, modified = ?"
                    " WHERE grp = ? AND name = ?",
                    (arn, json.dumps(settings), now, now, now, group, name),
                ).rowcount
                == 0
            ):
                raise not_found(name)

        self.db.tx(write)
        return arn

    def get(self, name: str, group: str | None) -> Schedule:
        group = self._group(group)
        rows = self.db.read(
            "SELECT grp, name, arn, body, created, modified FROM schedules WHERE grp = ? AND name = ?", (group, name)
        )
        if not rows:
            raise not_found(name)
        return _schedule(rows[0])

    def delete(self, name: str, group: str | None) -> None:
        group = self._group(group)

        def delete(conn: Connection) -> None:
            if conn.execute("DELETE FROM schedules WHERE grp = ? AND name = ?", (group, name)).rowcount == 0:
                raise not_found(name)

        self.db.tx(delete)

    def list(
        self, group: str | None, prefix: str, state: str | None, start_after: str, limit: int
    ) -> tuple[list[Schedule], str | None]:
        if group is not None:
            self._group(group)
        rows = self.db.read(
            "SELECT grp, name, arn, body, created, modified FROM schedules"
            " WHERE grp || '/' || name > ? AND substr(name, 1, ?) = ? ORDER BY grp, name",
            (start_after, len(prefix), prefix),
        )
        found = [s for s in map(_schedule, rows) if state is None or s.settings["State"] == state]
        page = found[:limit]
        return page, (f"{page[-1].group}/{page[-1].name}" if len(found) > limit else None)


def _schedule(row: tuple[Any, ...]) -> Schedule:
    return Schedule(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])
