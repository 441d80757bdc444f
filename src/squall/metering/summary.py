"""``squall cost`` as a whole: usage grouped by function, day or trigger, the bill with and without
the free tier, and the break-even against a server; drawn with rich or given as JSON.

:func:`summarize` builds it from usage records; ``--arch`` prices every record as if it had run
on that architecture (same durations). Group costs are list prices before the free tier, which is
credited once to the whole account.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from squall.metering.breakeven import BOX_HOURLY, HOURS_PER_MONTH, BreakEven, break_even
from squall.metering.pricing import ARCHITECTURES, cost, gb_seconds
from squall.metering.report import CostReport, _gbs, _plain, build_report, render_json, usd
from squall.models import UsageRecord

GROUPINGS = ("function", "day", "trigger")


@dataclass(frozen=True)
class UsageGroup:
    """One row of the report: the usage of a function, a UTC day or a trigger, at list price."""

    key: str
    requests: int
    errors: int
    cold_starts: int
    billed_ms: int
    gb_seconds: Decimal
    cost: Decimal


@dataclass(frozen=True)
class CostSummary:
    """Everything ``squall cost`` shows."""

    by: str
    architecture: str | None
    groups: tuple[UsageGroup, ...]
    with_free_tier: CostReport
    list_price: CostReport
    break_even: BreakEven


def _key(record: UsageRecord, by: str) -> str:
    if by == "function":
        return record.function_name
    if by == "day":
        return datetime.fromtimestamp(record.start, UTC).strftime("%Y-%m-%d")
    return record.trigger


def group_usage(records: Iterable[UsageRecord], by: str) -> tuple[UsageGroup, ...]:
    """Records folded by ``by`` (function, day or trigger), each group priced at list price."""
    if by not in GROUPINGS:
        raise ValueError(f"cannot group by {by!r}; choose one of {', '.join(GROUPINGS)}")
    tallies: dict[str, dict[str, Any]] = {}
    for r in records:
        t = tallies.setdefault(_key(r, by), {"n": 0, "err": 0, "cold": 0, "ms": 0, "arch": {}})
        t["n"] += 1
        t["err"] += r.outcome != "success"
        t["cold"] += r.cold
        t["ms"] += r.billed_ms
        n, gbs = t["arch"].get(r.architecture, (0, Decimal(0)))
        t["arch"][r.architecture] = (n + 1, gbs + gb_seconds(r.memory_mb, r.billed_ms))
    groups = []
    for key in sorted(tallies):
        t = tallies[key]
        by_arch: dict[str, tuple[int, Decimal]] = t["arch"]
        price = sum((cost({a: n}, {a: g}, apply_free_tier=False).total for a, (n, g) in by_arch.items()), Decimal(0))
        total_gbs = sum((g for _, g in by_arch.values()), Decimal(0))
        groups.append(UsageGroup(key, t["n"], t["err"], t["cold"], t["ms"], total_gbs, price))
    return tuple(groups)


def summarize(
    records: list[UsageRecord],
    by: str = "function",
    architecture: str | None = None,
    server_hourly: Decimal | None = None,
) -> CostSummary:
    """The whole cost report for these records."""
    if architecture is not None:
        if architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
        records = [msgspec.structs.replace(r, architecture=architecture) for r in records]
    return CostSummary(
        by=by,
        architecture=architecture,
        groups=group_usage(records, by),
        with_free_tier=build_report(records, free_tier=True),
        list_price=build_report(records, free_tier=False),
        break_even=break_even(records, server_hourly, architecture),
    )


# --- JSON -----------------------------------------------------------------------------------------
def _rate(value: float | None) -> float | None:
    if value is None:
        return None
    return round(value, 6) if value != float("inf") else None


def summary_json(summary: CostSummary, free_tier: bool = True) -> dict[str, Any]:
    """The report as JSON: :func:`render_json`'s shape plus grouping, both bills and the break-even."""
    base = render_json(summary.with_free_tier if free_tier else summary.list_price)
    b = summary.break_even
    base.update(
        {
            "by": summary.by,
            "architecture": summary.architecture,
            "groups": [
                {
                    summary.by: g.key,
                    "requests": g.requests,
                    "errors": g.errors,
                    "cold_starts": g.cold_starts,
                    "billed_ms": g.billed_ms,
                    "gb_seconds": _plain(g.gb_seconds),
                    "cost": _plain(g.cost),
                }
                for g in summary.groups
            ],
            "cost_with_free_tier": _plain(summary.with_free_tier.totals.total),
            "cost_without_free_tier": _plain(summary.list_price.totals.total),
            "break_even": {
                "peak_concurrency": b.peak.concurrency,
                "peak_memory_mb": b.peak.memory_mb,
                "server": {
                    "vcpu": b.server.vcpu,
                    "memory_gb": b.server.memory_gb,
                    "hourly": _plain(b.server.hourly),
                    "monthly": _plain(b.server.monthly),
                },
                "architecture": b.architecture,
                "observed_requests_per_second": round(b.observed_rps, 6),
                "gb_seconds_per_request": _plain(b.gb_seconds_per_request),
                "lambda_monthly_at_observed_rate": _plain(b.lambda_monthly),
                "break_even_requests_per_second": _rate(b.break_even_rps),
                "cheaper_at_observed_rate": b.cheaper,
            },
        }
    )
    return base


# --- rich -----------------------------------------------------------------------------------------
def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def render_rich(summary: CostSummary) -> Group:
    """The report as rich tables: usage by group, the account's bill, the break-even."""
    free, listed = summary.with_free_tier, summary.list_price
    parts: list[Any] = []
    if free.period_start is None or free.period_end is None:
        parts.append(Text("No invocations recorded."))
    else:
        parts.append(
            Text(
                f"Usage {_when(free.period_start)} to {_when(free.period_end)}, priced as ONE month at "
                "AWS Lambda list prices (us-east-1)"
                + (f", every invocation on {summary.architecture}" if summary.architecture else "")
                + "."
            )
        )
    # Box-less, columns two spaces apart: the same layout as the plain-text report, easy to grep.
    usage = Table(title=f"Usage by {summary.by}", title_justify="left", box=None, pad_edge=False)
    if summary.by == "function":
        usage.add_column("FUNCTION", no_wrap=True)
        usage.add_column("ARCH", no_wrap=True)
        for name in ("REQUESTS", "ERRORS", "COLD", "P50 MS", "P99 MS", "BILLED MS", "GB-S", "COST (LIST)"):
            usage.add_column(name, justify="right", no_wrap=True)
        for f in free.functions:
            usage.add_row(
                f.function_name,
                f.architecture,
                f"{f.requests:,}",
                f"{f.errors:,}",
                f"{f.cold_starts:,}",
                f"{f.p50_duration_ms:,.2f}",
                f"{f.p99_duration_ms:,.2f}",
                f"{f.billed_ms:,}",
                _gbs(f.gb_seconds),
                usd(f.cost),
            )
    else:
        usage.add_column(summary.by.upper(), no_wrap=True)
        for name in ("REQUESTS", "ERRORS", "COLD", "BILLED MS", "GB-S", "COST (LIST)"):
            usage.add_column(name, justify="right", no_wrap=True)
        for g in summary.groups:
            usage.add_row(
                g.key,
                f"{g.requests:,}",
                f"{g.errors:,}",
                f"{g.cold_starts:,}",
                f"{g.billed_ms:,}",
                _gbs(g.gb_seconds),
                usd(g.cost),
            )
    parts.append(usage)

    bill = Table(title="Account bill (one month)", title_justify="left")
    bill.add_column("", no_wrap=True)
    bill.add_column("USAGE", justify="right", no_wrap=True)
    bill.add_column("WITHOUT FREE TIER", justify="right", no_wrap=True)
    bill.add_column("WITH FREE TIER", justify="right", no_wrap=True)
    t, lt = free.totals, listed.totals
    bill.add_row("Requests", f"{t.requests:,}", usd(lt.request_cost), usd(t.request_cost))
    for arch in ARCHITECTURES:
        gbs = t.gb_seconds.get(arch, Decimal(0))
        bill.add_row(
            f"Duration {arch}",
            f"{_gbs(gbs)} GB-s",
            usd(lt.duration_cost.get(arch, Decimal(0))),
            usd(t.duration_cost.get(arch, Decimal(0))),
        )
    bill.add_row(Text("TOTAL", style="bold"), "", usd(lt.total), Text(usd(t.total), style="bold"))
    parts.append(bill)

    b = summary.break_even
    server = Table(title="Lambda or an always-on server?", title_justify="left", show_header=False)
    server.add_column("", no_wrap=True)
    server.add_column("")
    server.add_row("Peak load", f"{b.peak.concurrency:,} concurrent invocations holding {b.peak.memory_mb:,} MB")
    server.add_row(
        "Smallest server",
        f"{b.server.vcpu} vCPU, {b.server.memory_gb} GiB at ${b.server.hourly}/h = "
        f"{usd(b.server.monthly)}/month ({HOURS_PER_MONTH} h)",
    )
    server.add_row(
        "Observed rate",
        f"{b.observed_rps:,.4f} req/s, {_gbs(b.gb_seconds_per_request)} GB-s each ({b.architecture}): "
        f"Lambda {usd(b.lambda_monthly)}/month with the free tier",
    )
    if b.break_even_rps is None:
        crossing = "no invocations to extrapolate from"
    elif b.break_even_rps == float("inf"):
        crossing = "never: Lambda stays cheaper at any rate"
    else:
        crossing = f"{b.break_even_rps:,.4f} req/s sustained ({b.break_even_rps * 3600 * HOURS_PER_MONTH:,.0f}/month)"
    server.add_row("Server cheaper above", crossing)
    server.add_row("Cheaper now", Text(b.cheaper, style="bold"))
    parts.append(server)
    notes = [n for n in free.notes if not n.startswith("What-if")]
    notes.append(
        f"Server price: --server-price, or whole 2 vCPU / 4 GiB boxes at ${BOX_HOURLY}/h "
        "(EC2 t3.medium on-demand, us-east-1)."
    )
    parts.extend(Text(f"Note: {n}", style="dim") for n in notes)
    return Group(*parts)


def print_rich(summary: CostSummary, console: Console) -> None:
    """Print the report (tables on a terminal, the same text when piped)."""
    console.print(render_rich(summary))
