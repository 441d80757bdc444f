"""EventBridge's schedule expressions: ``rate()``, six-field ``cron()`` and Scheduler's ``at()``.

``parse`` validates an expression exactly as EventBridge's grammar states it (spec §7) and
returns a ``Rate``, ``Cron`` or ``At``; ``Cron.next_after`` gives the first matching minute after a
moment. The cron dialect is Quartz-like, not Unix: six fields ending in a year, ``1 = SUN`` in
day-of-week, ``?`` in exactly one of day-of-month and day-of-week, and ``L``/``W``/``#``. Unix-cron
libraries (croniter, APScheduler's trigger) number weekdays from Monday or Sunday = 0, OR the two day
fields together and differ on the rest, so adapting one meant re-mapping every field; the arithmetic
is short enough to own, and a property test checks it against a minute-by-minute matcher.

All datetimes here are naive wall-clock times of the schedule's time zone (UTC for rules).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

MONTHS = {
    name: i + 1
    for i, name in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))
}
WEEKDAYS = {name: i + 1 for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
MIN_YEAR, MAX_YEAR = 1970, 2199

_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\((.*)\)")
_AT = re.compile(r"at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class InvalidExpression(ValueError):
    """The expression is not one EventBridge accepts."""


@dataclass(frozen=True)
class Rate:
    """``rate(<value> <unit>)``: every ``seconds`` from the schedule's anchor."""

    seconds: int


@dataclass(frozen=True)
class At:
    """``at(yyyy-mm-ddThh:mm:ss)``: once, at ``when`` (wall-clock time of the schedule's zone)."""

    when: datetime


@dataclass(frozen=True)
class DaySpec:
    """How a cron expression picks days: by day of month or by day of week (the other is ``?``)."""

    #: Days of month 1..31 (day-of-month field), or weekdays 1..7 with 1 = SUN (day-of-week field).
    values: frozenset[int] = frozenset()
    by_weekday: bool = False
    last_day: bool = False  # DOM ``L``
    nearest_weekday: int = 0  # DOM ``nW``
    last_weekday: int = 0  # DOW ``nL``: the last such weekday of the month
    nth: tuple[int, int] = (0, 0)  # DOW ``d#n``: (weekday, n)

    def days(self, year: int, month: int) -> list[int]:
        """The matching days of one month, ascending."""
        length = calendar.monthrange(year, month)[1]
        if not self.by_weekday:
            if self.last_day:
                return [length]
            if self.nearest_weekday:
                day = _nearest_weekday(year, month, self.nearest_weekday, length)
                return [] if day is None else [day]
            return [d for d in sorted(self.values) if d <= length]
        first = weekday_of(year, month, 1)
        if self.last_weekday:
            last = length - (weekday_of(year, month, length) - self.last_weekday) % 7
            return [last]
        if self.nth != (0, 0):
            weekday, n = self.nth
            day = 1 + (weekday - first) % 7 + 7 * (n - 1)
            return [day] if day <= length else []
        return [d for d in range(1, length + 1) if (first - 1 + d - 1) % 7 + 1 in self.values]


@dataclass(frozen=True)
class Cron:
    """A parsed six-field ``cron()`` expression."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day: DaySpec
    months: tuple[int, ...]
    years: tuple[int, ...]

    def next_after(self, after: datetime) -> datetime | None:
        """The first matching minute strictly after ``after``; None when no later one exists."""
        start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for year in self.years:
            if year < start.year:
                continue
            for month in self.months:
                if (year, month) < (start.year, start.month):
                    continue
                for day in self.day.days(year, month):
                    if (year, month, day) < (start.year, start.month, start.day):
                        continue
                    same_day = (year, month, day) == (start.year, start.month, start.day)
                    for hour in self.hours:
                        if same_day and hour < start.hour:
                            continue
                        for minute in self.minutes:
                            if same_day and hour == start.hour and minute < start.minute:
                                continue
                            return datetime(year, month, day, hour, minute)
        return None


Expression = Rate | Cron | At


def weekday_of(year: int, month: int, day: int) -> int:
    """EventBridge's weekday number of a date: 1 = SUN ... 7 = SAT."""
    return (calendar.weekday(year, month, day) + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, day: int, length: int) -> int | None:
    # unverified: a ``nW`` day beyond the month's end never matches (Quartz's behaviour).
    if day > length:
        return None
    weekday = weekday_of(year, month, day)
    if weekday == 7:  # Saturday: Friday before, unless that leaves the month
        return day - 1 if day > 1 else day + 2
    if weekday == 1:  # Sunday: Monday after, unless that leaves the month
        return day + 1 if day < length else day - 2
    return day


@lru_cache(maxsize=4096)
def parse(expression: str, *, allow_at: bool = False) -> Expression:
    """Parse a schedule expression; ``InvalidExpression`` when EventBridge would refuse it."""
    rate = _RATE.fullmatch(expression)
    if rate is not None:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1 or rate.group(1).startswith("0") or (value == 1) != (not unit.endswith("s")):
            raise InvalidExpression(expression)
        return Rate(value * _UNIT_SECONDS[unit.rstrip("s")])
    at = _AT.fullmatch(expression)
    if at is not None and allow_at:
        try:
            year, month, day, hour, minute, second = (int(g) for g in at.groups())
            return At(datetime(year, month, day, hour, minute, second))
        except ValueError as exc:
            raise InvalidExpression(expression) from exc
    cron = _CRON.fullmatch(expression)
    if cron is None:
        raise InvalidExpression(expression)
    return _parse_cron(expression, cron.group(1))


def _parse_cron(expression: str, body: str) -> Cron:
    fields = body.split(" ")
    if len(fields) != 6 or any(not f for f in fields):
        raise InvalidExpression(expression)
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise InvalidExpression(expression)
    try:
        day = _dom(dom) if dow == "?" else _dow(dow)
        return Cron(
            minutes=_values(minute, 0, 59, {}),
            hours=_values(hour, 0, 23, {}),
            day=day,
            months=_values(month, 1, 12, MONTHS),
            years=_values(year, MIN_YEAR, MAX_YEAR, {}),
        )
    except (ValueError, KeyError) as exc:
        raise InvalidExpression(expression) from exc


def _number(text: str, low: int, high: int, names: dict[str, int]) -> int:
    upper = text.upper()
    value = names[upper] if upper in names else int(text) if text.isascii() and text.isdigit() else None
    if value is None or not low <= value <= high:
        raise ValueError(text)
    return value


def _values(field: str, low: int, high: int, names: dict[str, int], steps: bool = True) -> tuple[int, ...]:
    """A comma list of ``*``, ``n``, ``a-b``, each optionally ``/step`` (where ``steps``)."""
    found: set[int] = set()
    for item in field.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash and not steps:
            raise ValueError(item)
        if slash:
            step = _number(step_text, 1, high - low, {})
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _number(a, low, high, names), _number(b, low, high, names)
            if first > last:
                # unverified: wrap-around ranges (e.g. hours 22-2) are refused here.
                raise ValueError(item)
        else:
            first = _number(base, low, high, names)
            last = high if slash else first
        found.update(range(first, last + 1, step))
    return tuple(sorted(found))


def _dom(field: str) -> DaySpec:
    if field == "L":
        return DaySpec(last_day=True)
    if field.endswith("W"):
        return DaySpec(nearest_weekday=_number(field[:-1], 1, 31, {}))
    return DaySpec(values=frozenset(_values(field, 1, 31, {})))


def _dow(field: str) -> DaySpec:
    if field == "L":
        return DaySpec(by_weekday=True, values=frozenset({7}))
    if "#" in field:
        day, _, n = field.partition("#")
        return DaySpec(by_weekday=True, nth=(_number(day, 1, 7, WEEKDAYS), _number(n, 1, 5, {})))
    if field.endswith("L"):
        return DaySpec(by_weekday=True, last_weekday=_number(field[:-1], 1, 7, WEEKDAYS))
    # EventBridge's table gives day-of-week no "/" (unlike Quartz).
    return DaySpec(by_weekday=True, values=frozenset(_values(field, 1, 7, WEEKDAYS, steps=False)))


def latest_at_or_before(cron: Cron, after: datetime, now: datetime) -> datetime | None:
    """The last matching minute in ``(after, now]``, or None; without stepping through every tick of
    a long gap when a recent window already holds one."""
    for window in (timedelta(hours=1), timedelta(days=1), timedelta(days=32), timedelta(days=367)):
        start = max(after, now - window)
        found = _last_in(cron, start, now)
        if found is not None or start == after:
            return found
    return _last_in(cron, after, now)


def _last_in(cron: Cron, start: datetime, end: datetime) -> datetime | None:
    last = None
    tick = cron.next_after(start)
    while tick is not None and tick <= end:
        last = tick
        tick = cron.next_after(tick)
    return last
