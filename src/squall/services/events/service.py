"""EventBridge rules on ``schedules.db``: PutRule, targets, tags, and the state the firing loop reads.

Only the ``default`` event bus exists. Rules with an ``EventPattern`` are stored and listed like on
AWS, but Squall has no event bus traffic to match them against: only scheduled rules fire.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from squall.services.events.errors import EventsLimitExceeded, EventsValidation, RuleNotFound
from squall.services.events.store import ScheduleDb
from squall.sources import cron
from squall.stores.sql import Connection

DEFAULT_BUS = "default"
_RULE_COLUMNS = (
    "bus", "name", "arn", "expression", "pattern", "state", "description", "role_arn", "anchor", "last_tick"
)  # fmt: skip
_PUT_TAG = (
    "INSERT INTO tags (arn, key, value) VALUES (?, ?, ?) ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value"
)
MAX_TARGETS_PER_RULE = 5


@dataclass
class Rule:
    """One rule as DescribeRule shows it."""

    name: str
    arn: str
    state: str
    expression: str | None = None
    pattern: str | None = None
    description: str | None = None
    role_arn: str | None = None
    bus: str = DEFAULT_BUS

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Name": self.name, "Arn": self.arn}
        if self.pattern is not None:
            out["EventPattern"] = self.pattern
        if self.expression is not None:
            out["ScheduleExpression"] = self.expression
        out["State"] = self.state
        if self.description is not None:
            out["Description"] = self.description
        if self.role_arn is not None:
            out["RoleArn"] = self.role_arn
        out["EventBusName"] = self.bus
        return out


def not_found(name: str, bus: str = DEFAULT_BUS) -> RuleNotFound:
    return RuleNotFound(f"Rule {name} does not exist on EventBus {bus}.")


class RuleService:
    """Rules, targets and tags of the default event bus; ``now`` is the schedule clock (epoch s)."""

    def __init__(self, db: ScheduleDb, account_id: str, region: str, now: Callable[[], float]) -> None:
        self.db = db
        self.account_id = account_id
        self.region = region
        self.now = now

    def rule_arn(self, name: str) -> str:
        return f"arn:aws:events:{self.region}:{self.account_id}:rule/{name}"

    # --- rules -------------------------------------------------------------------------------------
    def put_rule(
        self,
        name: str,
        expression: str | None,
        pattern: str | None,
        state: str | None,
        description: str | None,
        role_arn: str | None,
        tags: list[dict[str, str]],
    ) -> str:
        if expression is None and pattern is None:
            # unverified: text of AWS's answer to a rule with neither a schedule nor a pattern.
            raise EventsValidation("Parameter(s) EventPattern or ScheduleExpression must be specified.")
        if expression is not None:
            try:
                cron.parse(expression)
            except cron.InvalidExpression:
                raise EventsValidation("Parameter ScheduleExpression is not valid.") from None
        if pattern is not None:
            _check_pattern(pattern)
        arn = self.rule_arn(name)
        now = self.now()

        def put(conn: Connection) -> None:
            row = conn.execute(
                "SELECT expression, anchor, last_tick, state FROM rules WHERE bus = ? AND name = ?"
                + self.db.db.for_update,
                (DEFAULT_BUS, name),
            ).fetchone()
            anchor, last = (now, now) if row is None or row[0] != expression else (row[1], row[2])
            if row is not None and row[3] == "DISABLED":
                last = now  # ticks that passed while the rule was disabled are not owed
            conn.execute(
                f"INSERT INTO rules ({', '.join(_RULE_COLUMNS)}) VALUES ({', '.join('?' * len(_RULE_COLUMNS))})"
                " ON CONFLICT (bus, name) DO UPDATE SET "
                + ", ".join(f"{column} = excluded.{column}" for column in _RULE_COLUMNS[2:]),
                (DEFAULT_BUS, name, arn, expression, pattern, state or "ENABLED", description, role_arn, anchor, last),
            )
            conn.executemany(_PUT_TAG, [(arn, tag["Key"], tag["Value"]) for tag in tags])

        self.db.tx(put)
        return arn

    def describe_rule(self, name: str) -> Rule:
        rows = self.db.read(
            "SELECT name, arn, state, expression, pattern, description, role_arn FROM rules WHERE bus = ? AND name = ?",
            (DEFAULT_BUS, name),
        )
        if not rows:
            raise not_found(name)
        return Rule(*rows[0])

    def list_rules(self, prefix: str, start_after: str, limit: int) -> tuple[list[Rule], str | None]:
        rows = self.db.read(
            "SELECT name, arn, state, expression, pattern, description, role_arn FROM rules"
            " WHERE bus = ? AND name > ? AND substr(name, 1, ?) = ? ORDER BY name LIMIT ?",
            (DEFAULT_BUS, start_after, len(prefix), prefix, limit + 1),
        )
        rules = [Rule(*r) for r in rows[:limit]]
        return rules, (rules[-1].name if len(rows) > limit else None)

    def delete_rule(self, name: str) -> None:
        # unverified: deleting a rule that does not exist succeeds silently (idempotent), as Squall assumes AWS does.
        def delete(conn: Connection) -> None:
            if conn.execute("SELECT 1 FROM targets WHERE bus = ? AND rule = ?", (DEFAULT_BUS, name)).fetchone():
                raise EventsValidation("Rule can't be deleted since it has targets.")
            conn.execute("DELETE FROM rules WHERE bus = ? AND name = ?", (DEFAULT_BUS, name))
            conn.execute("DELETE FROM tags WHERE arn = ?", (self.rule_arn(name),))

        self.db.tx(delete)

    def set_state(self, name: str, enabled: bool) -> None:
        now = self.now()

        def change(conn: Connection) -> None:
            row = conn.execute("SELECT state FROM rules WHERE bus = ? AND name = ?", (DEFAULT_BUS, name)).fetchone()
            if row is None:
                raise not_found(name)
            if enabled and row[0] == "DISABLED":
                # Ticks that passed while the rule was disabled are not owed.
                conn.execute(
                    "UPDATE rules SET state = 'ENABLED', last_tick = ? WHERE bus = ? AND name = ?",
                    (now, DEFAULT_BUS, name),
                )
            elif not enabled:
                conn.execute("UPDATE rules SET state = 'DISABLED' WHERE bus = ? AND name = ?", (DEFAULT_BUS, name))

        self.db.tx(change)

    # --- targets -----------------------------------------------------------------------------------
    def put_targets(self, rule: str, targets: list[dict[str, Any]]) -> list[dict[str, str]]:
        """Store the targets; the failed entries (targets Squall cannot deliver to)."""
        failed: list[dict[str, str]] = []
        accepted: list[dict[str, Any]] = []
        for target in targets:
            problem = _target_problem(target)
            if problem is None:
                accepted.append(target)
            else:
                failed.append({"TargetId": target["Id"], "ErrorCode": "ValidationException", "ErrorMessage": problem})

        def put(conn: Connection) -> None:
            # The rule's row locked: puts of targets through several servers count the quota one at a time.
            locked = conn.execute(
                "SELECT 1 FROM rules WHERE bus = ? AND name = ?" + self.db.db.for_update, (DEFAULT_BUS, rule)
            ).fetchone()
            if locked is None:
                raise not_found(rule)
            ids = {r[0] for r in conn.execute("SELECT id FROM targets WHERE bus = ? AND rule = ?", (DEFAULT_BUS, rule))}
            if len(ids | {t["Id"] for t in accepted}) > MAX_TARGETS_PER_RULE:
                # unverified: AWS's wording for the five-targets-per-rule quota.
                raise EventsLimitExceeded("The requested resource exceeds the maximum number allowed.")
            for target in accepted:
                conn.execute(
                    "INSERT INTO targets (bus, rule, id, body) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (bus, rule, id) DO UPDATE SET body = excluded.body",
                    (DEFAULT_BUS, rule, target["Id"], json.dumps(target)),
                )

        self.db.tx(put)
        return failed

    def remove_targets(self, rule: str, ids: list[str]) -> None:
        def remove(conn: Connection) -> None:
            if conn.execute("SELECT 1 FROM rules WHERE bus = ? AND name = ?", (DEFAULT_BUS, rule)).fetchone() is None:
                raise not_found(rule)
            # unverified: an Id the rule does not have is skipped silently, not reported as failed.
            conn.executemany(
                "DELETE FROM targets WHERE bus = ? AND rule = ? AND id = ?", [(DEFAULT_BUS, rule, i) for i in ids]
            )

        self.db.tx(remove)

    def list_targets(self, rule: str) -> list[dict[str, Any]]:
        self.describe_rule(rule)
        rows = self.db.read("SELECT body FROM targets WHERE bus = ? AND rule = ? ORDER BY id", (DEFAULT_BUS, rule))
        return [json.loads(r[0]) for r in rows]

    # --- tags --------------------------------------------------------------------------------------
    def _rule_of(self, arn: str) -> str:
        name = arn.removeprefix(self.rule_arn(""))
        if name == arn or not self.db.read("SELECT 1 FROM rules WHERE bus = ? AND name = ?", (DEFAULT_BUS, name)):
            raise not_found(arn.rpartition("/")[2])
        return name

    def tag(self, arn: str, tags: list[dict[str, str]]) -> None:
        self._rule_of(arn)
        self.db.tx(lambda conn: conn.executemany(_PUT_TAG, [(arn, t["Key"], t["Value"]) for t in tags]))

    def untag(self, arn: str, keys: list[str]) -> None:
        self._rule_of(arn)
        self.db.tx(
            lambda conn: conn.executemany("DELETE FROM tags WHERE arn = ? AND key = ?", [(arn, k) for k in keys])
        )

    def tags(self, arn: str) -> list[dict[str, str]]:
        self._rule_of(arn)
        return [
            {"Key": k, "Value": v}
            for k, v in self.db.read("SELECT key, value FROM tags WHERE arn = ? ORDER BY key", (arn,))
        ]


def _check_pattern(pattern: str) -> None:
    try:
        parsed = json.loads(pattern)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        # unverified: AWS names the parse error after this prefix; Squall only stores patterns.
        raise EventsValidation("Event pattern is not valid. Reason: not a JSON object")


def _target_problem(target: dict[str, Any]) -> str | None:
    arn = str(target.get("Arn", ""))
    if arn.split(":")[2:3] != ["lambda"] or ":function:" not in arn:
        return "Squall delivers rule targets to Lambda functions only."
    if "Input" in target and "InputPath" in target:
        # unverified: AWS's wording when a target has both Input and InputPath.
        return "Only one of Input, InputPath, or InputTransformer must be provided."
    if "Input" in target:
        try:
            json.loads(target["Input"])
        except ValueError:
            # unverified: AWS's wording for an Input that is not JSON.
            return "Input is not a valid JSON text."
    return None
