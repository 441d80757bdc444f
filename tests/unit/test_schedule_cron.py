"""EventBridge's schedule-expression grammar and next-fire computation, checked against a brute-force
minute-by-minute matcher written here from the grammar's definition (spec §7)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squall.sources import cron
from squall.sources.schedules import latest_tick

VALID = [
    "cron(15 10 * * ? *)",
    "cron(0 18 ? * MON-FRI *)",
    "cron(0 8 1 * ? *)",
    "cron(0/10 * ? * MON-FRI *)",
    "cron(0/5 8-17 ? * MON-FRI *)",
    "cron(0 9 ? * 2#1 *)",
    "cron(0 0 L * ? *)",
    "cron(0 0 3W * ? *)",
    "cron(0 0 ? * 6L *)",
    "cron(0 0 ? * L *)",
    "cron(0,30 1-3 ? JAN-MAR,DEC SUN 2027-2030)",
    "cron(0-15/1 8-8 ? * 2,3,4,5,6,7 *)",
    "cron(1-31/30 1-1 ? * 1,7 *)",
    "cron(5 4 */2 * ? *)",
    "rate(1 minute)",
    "rate(5 minutes)",
    "rate(1 hour)",
    "rate(12 hours)",
    "rate(1 day)",
    "rate(7 days)",
]
INVALID = [
    "rate(1 minutes)",
    "rate(2 minute)",
    "rate(0 minutes)",
    "rate(-1 minutes)",
    "rate(01 minutes)",
    "rate(1 second)",
    "rate(5  minutes)",
    "cron(0 0 * * * *)",  # a value in both day fields
    "cron(0 0 ? * ? *)",  # ? in both
    "cron(7 20 * * 1-7 *)",
    "cron(*/60 * * * ? *)",
    "cron(0/5, 9-18, ?, *, MON-FRI, *)",
    "cron(0/10 * ? * *)",  # five fields
    "cron(15 12 ? * -1 *)",
    "cron(0 24 * * ? *)",
    "cron(60 0 * * ? *)",
    "cron(0 0 32 * ? *)",
    "cron(0 0 * 13 ? *)",
    "cron(0 0 ? * 8 *)",
    "cron(0 0 ? * 2#6 *)",
    "cron(0 0 * * ? 1969)",
    "cron(0 0 * * ? 2200)",
    "cron(0 0 ? * MON#1,TUE *)",
    "cron(0 0 1W,2 * ? *)",
    "cron(0 0 5-3 * ? *)",
    "cron(0 0 ? * 1/2 *)",  # no "/" in day-of-week
    "at(2030-01-01T00:00:00)",  # only Scheduler takes at()
    "every 5 minutes",
    "",
]


@pytest.mark.parametrize("expression", VALID)
def test_accepts_what_eventbridge_documents(expression: str) -> None:
    cron.parse(expression)


@pytest.mark.parametrize("expression", INVALID)
def test_refuses_what_eventbridge_refuses(expression: str) -> None:
    with pytest.raises(cron.InvalidExpression):
        cron.parse(expression)


def test_at_for_scheduler() -> None:
    parsed = cron.parse("at(2030-02-03T04:05:06)", allow_at=True)
    assert parsed == cron.At(datetime(2030, 2, 3, 4, 5, 6))
    with pytest.raises(cron.InvalidExpression):
        cron.parse("at(2030-02-30T04:05:06)", allow_at=True)


def test_rates_in_seconds() -> None:
    assert cron.parse("rate(1 minute)") == cron.Rate(60)
    assert cron.parse("rate(3 hours)") == cron.Rate(3 * 3600)
    assert cron.parse("rate(2 days)") == cron.Rate(2 * 86400)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("cron(15 10 * * ? *)", datetime(2026, 11, 29, 10, 15), datetime(2026, 11, 30, 10, 15)),
        ("cron(0 18 ? * MON-FRI *)", datetime(2026, 11, 27, 18, 0), datetime(2026, 11, 30, 18, 0)),
        ("cron(0 9 ? * 2#1 *)", datetime(2026, 11, 29), datetime(2026, 12, 7, 9, 0)),  # first Monday
        ("cron(0 0 L * ? *)", datetime(2028, 2, 1), datetime(2028, 2, 29)),  # leap year
        ("cron(0 0 ? * 6L *)", datetime(2026, 12, 1), datetime(2026, 12, 25)),  # last Friday
        ("cron(0 0 1W * ? *)", datetime(2026, 7, 31), datetime(2026, 8, 3)),  # Aug 1 is a Saturday
        ("cron(0 0 31W * ? *)", datetime(2026, 1, 1), datetime(2026, 1, 30)),  # Jan 31 is a Saturday
        ("cron(0 0 15W * ? *)", datetime(2026, 11, 1), datetime(2026, 11, 16)),  # Nov 15 is a Sunday
        ("cron(0 0 ? * 1 *)", datetime(2026, 11, 28), datetime(2026, 11, 29)),  # 1 = SUN
        ("cron(0 0 1 1 ? 2027)", datetime(2027, 1, 1), None),
    ],
)
def test_next_after(expression: str, after: datetime, expected: datetime | None) -> None:
    parsed = cron.parse(expression)
    assert isinstance(parsed, cron.Cron)
    assert parsed.next_after(after) == expected


# --- the brute-force matcher, from the grammar's definition --------------------------------------
def _weekday(moment: datetime) -> int:
    return moment.isoweekday() % 7 + 1  # ISO Monday 1 .. Sunday 7  ->  SUN 1 .. SAT 7


def matches(fields: list[str], moment: datetime) -> bool:
    minute, hour, dom, month, dow, year = fields
    length = calendar.monthrange(moment.year, moment.month)[1]
    if not (_star_list(minute, moment.minute, 0) and _star_list(hour, moment.hour, 0)):
        return False
    if not (_star_list(month, moment.month, 1, cron.MONTHS) and _star_list(year, moment.year, 1970)):
        return False
    if dow == "?":
        if dom == "L":
            return moment.day == length
        if dom.endswith("W"):
            target = int(dom[:-1])
            if target > length:
                return False
            candidates = [d for d in range(1, length + 1) if _weekday(moment.replace(day=d)) not in (1, 7)]
            # The weekday nearest the target, within the month (ties cannot happen within a month edge).
            nearest = min(candidates, key=lambda d: (abs(d - target), d))
            return moment.day == nearest
        return _star_list(dom, moment.day, 1)
    weekday = _weekday(moment)
    if dow == "L":
        return weekday == 7
    if "#" in dow:
        day, n = dow.split("#")
        return weekday == _name_or_int(day) and (moment.day - 1) // 7 + 1 == int(n)
    if dow.endswith("L"):
        return weekday == _name_or_int(dow[:-1]) and moment.day + 7 > length
    return _star_list(dow, weekday, 1, cron.WEEKDAYS)


def _name_or_int(text: str) -> int:
    return cron.WEEKDAYS.get(text.upper()) or int(text)


def _star_list(field: str, value: int, low: int, names: dict[str, int] | None = None) -> bool:
    """``value`` matches a comma list of ``*``, ``n``, ``a-b`` and ``x/step`` (start x or the field's low)."""
    names = names or {}

    def num(text: str) -> int:
        return names.get(text.upper()) or int(text)

    for item in field.split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = low, 10_000
        elif "-" in base:
            a, b = base.split("-")
            first, last = num(a), num(b)
        else:
            first = num(base)
            last = 10_000 if step_text else first
        if first <= value <= last and (value - first) % step == 0:
            return True
    return False


def brute_next(fields: list[str], after: datetime, horizon: datetime) -> datetime | None:
    moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while moment <= horizon:
        if matches(fields, moment):
            return moment
        moment += timedelta(minutes=1)
    return None


# --- generated expressions -----------------------------------------------------------------------
def _list_field(low: int, high: int, names: list[str] | None = None, steps: bool = True) -> st.SearchStrategy[str]:
    def number(value: int) -> str:
        return names[value - low] if names else str(value)

    single = st.integers(low, high).map(number)
    span = st.tuples(st.integers(low, high), st.integers(low, high)).map(
        lambda ab: f"{number(min(ab))}-{number(max(ab))}"
    )
    stepped = st.tuples(st.one_of(st.just("*"), st.integers(low, high).map(str)), st.integers(1, high - low)).map(
        lambda bs: f"{bs[0]}/{bs[1]}"
    )
    item = st.one_of(single, span, stepped) if steps else st.one_of(single, span)
    return st.one_of(st.just("*"), st.lists(item, min_size=1, max_size=3).map(",".join))


_MONTH_NAMES = list(cron.MONTHS)
_DAY_NAMES = list(cron.WEEKDAYS)

dom_field = st.one_of(
    _list_field(1, 31),
    st.just("L"),
    st.integers(1, 31).map(lambda d: f"{d}W"),
)
dow_field = st.one_of(
    _list_field(1, 7, steps=False),
    _list_field(1, 7, _DAY_NAMES, steps=False),
    st.just("L"),
    st.integers(1, 7).map(lambda d: f"{d}L"),
    st.tuples(st.integers(1, 7), st.integers(1, 5)).map(lambda dn: f"{dn[0]}#{dn[1]}"),
)


@st.composite
def expressions(draw: st.DrawFn) -> list[str]:
    by_weekday = draw(st.booleans())
    return [
        draw(_list_field(0, 59)),
        draw(_list_field(0, 23)),
        "?" if by_weekday else draw(dom_field),
        draw(st.one_of(_list_field(1, 12), _list_field(1, 12, _MONTH_NAMES))),
        draw(dow_field) if by_weekday else "?",
        draw(st.one_of(st.just("*"), st.integers(2024, 2031).map(str), st.just("2025-2030"))),
    ]


@settings(max_examples=150, deadline=None)
@given(
    fields=expressions(),
    after=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)),
)
def test_next_after_matches_brute_force(fields: list[str], after: datetime) -> None:
    parsed = cron.parse(f"cron({' '.join(fields)})")
    assert isinstance(parsed, cron.Cron)
    horizon = after + timedelta(days=400)
    # Minute by minute, skipping the rest of a day whose date cannot match at any minute.
    moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    expected = None
    while moment <= horizon:
        if not matches(["*", "*", *fields[2:]], moment):
            moment = moment.replace(hour=0, minute=0) + timedelta(days=1)
        elif matches(fields, moment):
            expected = moment
            break
        else:
            moment += timedelta(minutes=1)
    actual = parsed.next_after(after)
    if expected is None:
        assert actual is None or actual > horizon
    else:
        assert actual == expected


@settings(max_examples=100, deadline=None)
@given(
    fields=expressions(),
    after=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)),
    gap=st.integers(1, 3 * 24 * 60),
)
def test_latest_tick_is_the_last_brute_force_match(fields: list[str], after: datetime, gap: int) -> None:
    parsed = cron.parse(f"cron({' '.join(fields)})")
    assert isinstance(parsed, cron.Cron)
    after = after.replace(second=0, microsecond=0)
    now = after + timedelta(minutes=gap)
    last = None
    moment = after + timedelta(minutes=1)
    while moment <= now:
        if matches(fields, moment):
            last = moment
        moment += timedelta(minutes=1)
    assert cron.latest_at_or_before(parsed, after, now) == last


# --- time zones: the zoned tick against the same matcher walked over real (UTC) minutes -----------
#: Zones with an instant near one of their daylight-saving changes (and the local hour it happens in),
#: so that skipped and repeated local times are exercised.
NEAR_CHANGES = [
    ("America/New_York", datetime(2026, 3, 8, 7, 0, tzinfo=UTC), 2),  # springs forward at 02:00
    ("America/New_York", datetime(2026, 11, 1, 6, 0, tzinfo=UTC), 1),  # falls back at 02:00 (01:xx twice)
    ("Europe/Paris", datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 2),
    ("Europe/Paris", datetime(2026, 10, 25, 1, 0, tzinfo=UTC), 2),
    ("Australia/Lord_Howe", datetime(2026, 4, 4, 15, 0, tzinfo=UTC), 1),  # half an hour back at 02:00
    ("Asia/Kolkata", datetime(2026, 6, 15, 12, 0, tzinfo=UTC), 2),  # no changes
    ("UTC", datetime(2026, 6, 15, 12, 0, tzinfo=UTC), 2),
]


@settings(max_examples=200, deadline=None)
@given(
    fields=expressions(),
    change=st.sampled_from(NEAR_CHANGES),
    at_change_hour=st.booleans(),
    offset=st.integers(-30 * 60, 6 * 60),
    gap=st.integers(1, 24 * 60),
)
def test_zoned_latest_tick_matches_brute_force(
    fields: list[str], change: tuple[str, datetime, int], at_change_hour: bool, offset: int, gap: int
) -> None:
    zone, near, hour = change
    if at_change_hour:
        fields = [fields[0], str(hour), *fields[2:]]
    fields = [*fields[:5], "*"]  # any year, so that the changes above are in range
    expression = f"cron({' '.join(fields)})"
    tz = ZoneInfo(zone)
    after = near.timestamp() + offset * 60
    now = after + gap * 60
    expected = None
    minute = after // 60 * 60 + 60
    while minute <= now:
        local = datetime.fromtimestamp(minute, tz)
        # A repeated local hour fires once: only its first occurrence (fold 0) counts.
        if local.fold == 0 and matches(fields, local.replace(tzinfo=None)):
            expected = minute
        minute += 60
    assert latest_tick(expression, 0, after, now, zone) == expected
