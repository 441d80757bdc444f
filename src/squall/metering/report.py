"""What Squall's usage would have cost on AWS Lambda: the numbers behind ``squall cost``.

:func:`build_report` folds :class:`~squall.models.UsageRecord` s into per-function (and
per-architecture) figures priced at Lambda's list prices (:mod:`squall.metering.pricing`), then prices
the account as a whole, applying the monthly free tier once. The records' whole time range is treated
as one month, and the report says so. :func:`render_text` draws it for a terminal,
:func:`render_json` gives it to machines (money as exact decimal strings, as AWS's billing APIs do).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from squall.metering.pricing import (
    ARCHITECTURES,
    LAMBDA_FREE_TIER,
    LAMBDA_PRICES,
    CostBreakdown,
    cost,
    gb_seconds,
)
from squall.models import UsageRecord

_ZERO = Decimal(0)
_DAY_S = 86_400
_MONTH_DAYS = 31


@dataclass(frozen=True)
class FunctionUsage:
    """One function's usage on one architecture, with its cost at list price (before the free tier).

    Durations are percentiles by the nearest-rank method; ``cost_on`` prices the same usage on each
    architecture (the same durations assumed).
    """

    function_name: str
    architecture: str
    requests: int
    errors: int
    timeouts: int
    cold_starts: int
    total_duration_ms: float
    avg_duration_ms: float
    p50_duration_ms: float
    p99_duration_ms: float
    billed_ms: int
    gb_seconds: Decimal
    max_memory_used_mb: int
    cost: Decimal
    cost_on: dict[str, Decimal]


@dataclass(frozen=True)
class CostReport:
    """Usage per function and what the whole account's usage costs, priced as one month.

    ``totals`` applies the free tier once (when ``free_tier``); ``what_if`` maps each architecture to
    the account's cost had every invocation run there. ``period_start``/``period_end`` are epoch
    seconds (``None`` without records).
    """

    functions: tuple[FunctionUsage, ...]
    totals: CostBreakdown
    what_if: dict[str, CostBreakdown]
    free_tier: bool
    period_start: float | None
    period_end: float | None
    notes: tuple[str, ...] = field(default=())

    @property
    def requests(self) -> int:
        """Invocations over all functions."""
        return sum(f.requests for f in self.functions)

    @property
    def errors(self) -> int:
        """Invocations that did not succeed (errors and timeouts)."""
        return sum(f.errors for f in self.functions)

    @property
    def cold_starts(self) -> int:
        """Invocations that started a new execution environment."""
        return sum(f.cold_starts for f in self.functions)

    @property
    def billed_ms(self) -> int:
        """Billed milliseconds over all functions."""
        return sum(f.billed_ms for f in self.functions)


class _Tally:
    """Running sums for one (function, architecture)."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self.errors = 0
        self.timeouts = 0
        self.cold = 0
        self.billed = 0
        self.gbs = _ZERO
        self.max_memory = 0

    def add(self, record: UsageRecord) -> None:
        self.durations.append(record.duration_ms)
        if record.outcome != "success":
            self.errors += 1
        if record.outcome == "timeout":
            self.timeouts += 1
        if record.cold:
            self.cold += 1
        self.billed += record.billed_ms
        # Recomputed exactly from memory and billed ms rather than summing the record's float.
        self.gbs += gb_seconds(record.memory_mb, record.billed_ms)
        self.max_memory = max(self.max_memory, record.max_memory_mb)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of ``values`` (0.0 for none): the smallest value with at least
    ``pct`` per cent of the values at or below it."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def build_report(records: Iterable[UsageRecord], free_tier: bool = True) -> CostReport:
    """Aggregate usage records per function and architecture and price them at Lambda's prices."""
    tallies: dict[tuple[str, str], _Tally] = {}
    first: float | None = None
    last: float | None = None
    for record in records:
        if record.architecture not in LAMBDA_PRICES:
            raise ValueError(f"no Lambda prices for architecture {record.architecture!r}")
        tallies.setdefault((record.function_name, record.architecture), _Tally()).add(record)
        end = record.start + record.duration_ms / 1000
        first = record.start if first is None else min(first, record.start)
        last = end if last is None else max(last, end)

    functions = tuple(_function_usage(name, arch, t) for (name, arch), t in sorted(tallies.items()))
    requests = {arch: 0 for arch in ARCHITECTURES}
    usage = {arch: _ZERO for arch in ARCHITECTURES}
    for f in functions:
        requests[f.architecture] += f.requests
        usage[f.architecture] += f.gb_seconds
    totals = cost(requests, usage, apply_free_tier=free_tier)
    all_requests = sum(requests.values())
    all_usage = sum(usage.values(), _ZERO)
    what_if = {arch: cost({arch: all_requests}, {arch: all_usage}, free_tier) for arch in ARCHITECTURES}
    return CostReport(
        functions=functions,
        totals=totals,
        what_if=what_if,
        free_tier=free_tier,
        period_start=first,
        period_end=last,
        notes=_notes(free_tier, first, last),
    )


def _function_usage(name: str, arch: str, t: _Tally) -> FunctionUsage:
    count = len(t.durations)
    total_ms = math.fsum(t.durations)
    cost_on = {a: cost({a: count}, {a: t.gbs}, apply_free_tier=False).total for a in ARCHITECTURES}
    return FunctionUsage(
        function_name=name,
        architecture=arch,
        requests=count,
        errors=t.errors,
        timeouts=t.timeouts,
        cold_starts=t.cold,
        total_duration_ms=total_ms,
        avg_duration_ms=total_ms / count if count else 0.0,
        p50_duration_ms=percentile(t.durations, 50),
        p99_duration_ms=percentile(t.durations, 99),
        billed_ms=t.billed,
        gb_seconds=t.gbs,
        max_memory_used_mb=t.max_memory,
        cost=cost_on[arch],
        cost_on=cost_on,
    )


def _notes(free_tier: bool, start: float | None, end: float | None) -> tuple[str, ...]:
    notes = [
        "Priced at AWS Lambda on-demand list prices (us-east-1); the whole period is treated as one "
        "month, so duration tiers and the free tier apply once.",
        "Per-function costs are list prices before the free tier.",
        "What-if figures assume the same durations on the other architecture.",
    ]
    if free_tier:
        notes.insert(
            1,
            f"Free tier: {LAMBDA_FREE_TIER.requests:,} requests and "
            f"{LAMBDA_FREE_TIER.gb_seconds:,} GB-s per month, shared across architectures.",
        )
    else:
        notes.insert(1, "Free tier not applied.")
    if start is not None and end is not None and end - start > _MONTH_DAYS * _DAY_S:
        days = (end - start) / _DAY_S
        notes.append(
            f"The period spans {days:.0f} days; AWS would bill it as several months, each with its own free tier."
        )
    return tuple(notes)


# -- presentation ------------------------------------------------------------------------------


def usd(amount: Decimal) -> str:
    """Dollars for people: cents from one cent up, three significant digits below (``$0.000000233``)."""
    if amount == 0:
        return "$0.00"
    sign = "-" if amount < 0 else ""
    value = abs(amount)
    if value >= Decimal("0.01"):
        return f"{sign}${value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"
    shown = value.quantize(Decimal(1).scaleb(value.adjusted() - 2), rounding=ROUND_HALF_UP)
    if shown >= Decimal("0.01"):  # 0.009999 rounds up to a cent
        return f"{sign}$0.01"
    if shown.adjusted() > value.adjusted():  # 0.00000999 rounded up to 0.0000100: keep 3 digits
        shown = shown.quantize(Decimal(1).scaleb(shown.adjusted() - 2))
    return f"{sign}${shown:f}"


def _gbs(value: Decimal) -> str:
    if value == 0:
        return "0"
    if value >= 1:
        return f"{value.quantize(Decimal('0.001'), rounding=ROUND_HALF_UP):,}"
    return f"{value.quantize(Decimal('0.000001'), rounding=ROUND_HALF_UP):f}"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(header: list[str], rows: list[list[str]], left: int) -> list[str]:
    """Columns padded to their widest cell; the first ``left`` columns flush left, the rest right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in pairs]
        return "  ".join(parts).rstrip()

    return [line(header), *(line(r) for r in rows)]


def render_text(report: CostReport) -> str:
    """The report as an aligned plain-text table, for ``squall cost``."""
    out: list[str] = []
    if report.period_start is None or report.period_end is None:
        out.append("No invocations recorded.")
    else:
        out.append(
            f"Usage {_when(report.period_start)} to {_when(report.period_end)}, "
            "priced as ONE month at AWS Lambda list prices (us-east-1)."
        )
    out.append("")
    header = ["FUNCTION", "ARCH", "REQUESTS", "ERRORS", "COLD", "AVG MS", "P50 MS", "P99 MS"]
    header += ["BILLED MS", "GB-S", "COST"]
    rows = [
        [
            f.function_name,
            f.architecture,
            f"{f.requests:,}",
            f"{f.errors:,}",
            f"{f.cold_starts:,}",
            f"{f.avg_duration_ms:,.2f}",
            f"{f.p50_duration_ms:,.2f}",
            f"{f.p99_duration_ms:,.2f}",
            f"{f.billed_ms:,}",
            _gbs(f.gb_seconds),
            usd(f.cost),
        ]
        for f in report.functions
    ]
    out += _table(header, rows, left=2)
    out.append("")

    t = report.totals
    totals = [["Requests", f"{t.requests:,} ({t.billable_requests:,} billable)", usd(t.request_cost)]]
    for arch in ARCHITECTURES:
        used = t.gb_seconds.get(arch, _ZERO)
        free = t.free_gb_seconds.get(arch, _ZERO)
        detail = f"{_gbs(used)} GB-s" + (f" ({_gbs(free)} free)" if free else "")
        totals.append([f"Duration {arch}", detail, usd(t.duration_cost.get(arch, _ZERO))])
    if report.free_tier:
        totals.append(["Free tier saved", "", usd(t.free_tier_savings)])
    totals.append(["TOTAL", "", usd(t.total)])
    title = "Account total (free tier applied once)" if report.free_tier else "Account total (no free tier)"
    out.append(title)
    out += ["  " + row for row in _table(["", "USAGE", "COST"], totals, left=2)[1:]]
    out.append("")

    out.append("What if everything ran on one architecture")
    whatif_header = ["", "COST", "VS ACTUAL"] + (["BEFORE FREE TIER"] if report.free_tier else [])
    whatif = []
    for arch in ARCHITECTURES:
        scenario = report.what_if[arch]
        delta = scenario.total - t.total
        change = "same" if delta == 0 else (f"+{usd(delta)}" if delta > 0 else usd(delta))
        row = [arch, usd(scenario.total), change]
        if report.free_tier:
            row.append(usd(scenario.total + scenario.free_tier_savings))
        whatif.append(row)
    out += ["  " + row for row in _table(whatif_header, whatif, left=1)]
    out.append("")
    out += [f"Note: {note}" for note in report.notes]
    return "\n".join(out) + "\n"


def _plain(value: Decimal) -> str:
    """A decimal as a plain string without exponent or trailing zeros: ``18.33337``, ``400000``."""
    return f"{value.normalize():f}" if value else "0"


def _breakdown_json(b: CostBreakdown) -> dict[str, Any]:
    return {
        "requests": b.requests,
        "billable_requests": b.billable_requests,
        "request_cost": _plain(b.request_cost),
        "gb_seconds": {a: _plain(v) for a, v in b.gb_seconds.items()},
        "free_gb_seconds": {a: _plain(v) for a, v in b.free_gb_seconds.items()},
        "duration_cost": {a: _plain(v) for a, v in b.duration_cost.items()},
        "free_tier_applied": b.free_tier_applied,
        "free_tier_savings": _plain(b.free_tier_savings),
        "total": _plain(b.total),
        "currency": "USD",
    }


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render_json(report: CostReport) -> dict[str, Any]:
    """The report as JSON-ready data. Money and GB-seconds are exact decimal strings."""
    return {
        "period": {
            "start": _iso(report.period_start),
            "end": _iso(report.period_end),
            "priced_as": "one month",
        },
        "free_tier": report.free_tier,
        "functions": [
            {
                "function_name": f.function_name,
                "architecture": f.architecture,
                "requests": f.requests,
                "errors": f.errors,
                "timeouts": f.timeouts,
                "cold_starts": f.cold_starts,
                "duration_ms": {
                    "total": round(f.total_duration_ms, 2),
                    "avg": round(f.avg_duration_ms, 2),
                    "p50": round(f.p50_duration_ms, 2),
                    "p99": round(f.p99_duration_ms, 2),
                },
                "billed_ms": f.billed_ms,
                "gb_seconds": _plain(f.gb_seconds),
                "max_memory_used_mb": f.max_memory_used_mb,
                "cost": _plain(f.cost),
                "cost_on": {a: _plain(v) for a, v in f.cost_on.items()},
            }
            for f in report.functions
        ],
        "totals": {
            "errors": report.errors,
            "cold_starts": report.cold_starts,
            "billed_ms": report.billed_ms,
            **_breakdown_json(report.totals),
        },
        "what_if": {arch: _breakdown_json(b) for arch, b in report.what_if.items()},
        "notes": list(report.notes),
    }
