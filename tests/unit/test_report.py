"""Cost reports: aggregation per function and architecture, account totals, what-if, rendering."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from squall.metering.pricing import ARM64, X86_64, cost
from squall.metering.report import build_report, percentile, render_json, render_text, usd
from squall.models import UsageRecord

T0 = 1_714_557_600.0  # 2024-05-01 10:00:00 UTC
X86_RATE = Decimal("0.0000166667")
ARM_RATE = Decimal("0.0000133334")


def record(
    name: str = "hello",
    *,
    duration_ms: float = 15.74,
    billed: int = 16,
    memory_mb: int = 128,
    start: float = T0,
    outcome: str = "success",
    cold: bool = False,
    arch: str = X86_64,
    max_memory_mb: int = 56,
) -> UsageRecord:
    return UsageRecord(
        function_name=name,
        version="$LATEST",
        request_id=f"{name}-{start}",
        start=start,
        duration_ms=duration_ms,
        billed_ms=billed,
        memory_mb=memory_mb,
        gb_seconds=memory_mb / 1024 * billed / 1000,
        max_memory_mb=max_memory_mb,
        cold=cold,
        init_ms=130.49 if cold else None,
        outcome=outcome,
        trigger="api",
        architecture=arch,
    )


def heavy(name: str, count: int, arch: str = X86_64) -> list[UsageRecord]:
    """``count`` invocations of 10 GB for 900 s: 9,000 GB-s each."""
    return [
        record(name, duration_ms=900_000.0, billed=900_000, memory_mb=10_240, start=T0 + i, arch=arch)
        for i in range(count)
    ]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([5.0, 1.0, 4.0, 2.0, 3.0], 50) == 3.0  # rank ceil(2.5) = 3
    assert percentile([float(v) for v in range(1, 11)], 25) == 3.0
    assert percentile([], 50) == 0.0


def test_aggregates_per_function_and_architecture() -> None:
    records = [
        record("hello", duration_ms=10.0, billed=10, cold=True),
        record("hello", duration_ms=20.0, billed=20, outcome="error", max_memory_mb=80),
        record("hello", duration_ms=30.0, billed=30, outcome="timeout"),
        record("hello", duration_ms=40.0, billed=40, arch=ARM64),
        record("resize", duration_ms=3000.0, billed=3000, memory_mb=1024),
    ]
    report = build_report(records)
    rows = {(f.function_name, f.architecture): f for f in report.functions}
    assert list(rows) == [("hello", ARM64), ("hello", X86_64), ("resize", X86_64)]

    hello = rows["hello", X86_64]
    assert hello.requests == 3
    assert hello.errors == 2
    assert hello.timeouts == 1
    assert hello.cold_starts == 1
    assert hello.total_duration_ms == 60.0
    assert hello.avg_duration_ms == 20.0
    assert hello.p50_duration_ms == 20.0
    assert hello.p99_duration_ms == 30.0
    assert hello.billed_ms == 60
    assert hello.gb_seconds == Decimal("0.0075")  # 128/1024 GB x 0.06 s
    assert hello.max_memory_used_mb == 80
    assert hello.cost == 3 * Decimal("0.0000002") + Decimal("0.0075") * X86_RATE

    assert rows["hello", ARM64].requests == 1
    assert rows["resize", X86_64].gb_seconds == 3

    assert report.requests == 5
    assert report.errors == 2
    assert report.cold_starts == 1
    assert report.billed_ms == 3100
    assert report.period_start == T0
    assert report.period_end == T0 + 3.0


def test_gb_seconds_are_recomputed_exactly_not_summed_from_floats() -> None:
    records = [record(memory_mb=128, billed=1) for _ in range(1000)]  # 0.000125 GB-s each
    report = build_report(records)
    assert report.functions[0].gb_seconds == Decimal("0.125")
    assert report.totals.gb_seconds[X86_64] == Decimal("0.125")


def test_free_tier_is_applied_once_across_the_account() -> None:
    # Two functions of 450,000 GB-s each: 900,000 in all, 400,000 of them free once.
    report = build_report(heavy("a", 50) + heavy("b", 50))
    assert report.totals.gb_seconds[X86_64] == 900_000
    assert report.totals.free_gb_seconds[X86_64] == 400_000
    assert report.totals.request_cost == 0  # 100 requests, inside the free million
    assert report.totals.total == 500_000 * X86_RATE
    # Per-function figures are list prices, before the free tier.
    for f in report.functions:
        assert f.cost == 50 * Decimal("0.0000002") + 450_000 * X86_RATE


def test_free_tier_is_shared_between_architectures() -> None:
    report = build_report(heavy("a", 30) + heavy("b", 30, arch=ARM64))  # 270,000 GB-s each
    totals = report.totals
    assert totals.free_gb_seconds == {X86_64: Decimal(270_000), ARM64: Decimal(130_000)}
    assert totals.duration_cost[X86_64] == 0
    assert totals.duration_cost[ARM64] == 140_000 * ARM_RATE
    assert totals.total == 140_000 * ARM_RATE


def test_without_free_tier_totals_are_list_price() -> None:
    report = build_report(heavy("a", 50), free_tier=False)
    assert report.totals.total == 50 * Decimal("0.0000002") + 450_000 * X86_RATE
    assert report.totals.free_tier_savings == 0


def test_what_if_prices_the_same_usage_on_each_architecture() -> None:
    report = build_report(heavy("a", 100))  # 900,000 GB-s on x86_64
    assert report.what_if[X86_64].total == report.totals.total == 500_000 * X86_RATE
    assert report.what_if[ARM64].total == 500_000 * ARM_RATE
    assert report.what_if[ARM64].gb_seconds == {ARM64: Decimal(900_000)}
    only = report.functions[0]
    assert only.cost_on[X86_64] == only.cost
    assert only.cost_on[ARM64] == 100 * Decimal("0.0000002") + 900_000 * ARM_RATE


def test_what_if_matches_pricing_cost() -> None:
    records = [record("f", memory_mb=512, billed=1000, duration_ms=1000.0) for _ in range(10)]
    report = build_report(records, free_tier=False)
    assert report.what_if[ARM64] == cost({ARM64: 10}, {ARM64: Decimal(5)}, apply_free_tier=False)


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="sparc"):
        build_report([record(arch="sparc")])


def test_empty_report() -> None:
    report = build_report([])
    assert report.functions == ()
    assert report.totals.total == 0
    assert report.period_start is None
    assert "No invocations recorded." in render_text(report)
    assert render_json(report)["period"]["start"] is None


def test_usd_formatting() -> None:
    assert usd(Decimal("18.73337")) == "$18.73"
    assert usd(Decimal("12345.675")) == "$12,345.68"
    assert usd(Decimal("0.000000233333")) == "$0.000000233"
    assert usd(Decimal("0.0000099999")) == "$0.0000100"
    assert usd(Decimal("0.00999999")) == "$0.01"
    assert usd(Decimal("-6.86668")) == "-$6.87"
    assert usd(Decimal(0)) == "$0.00"


def test_render_text_shows_the_figures_aligned() -> None:
    records = [
        *heavy("thumbnailer", 100),
        record("hello", duration_ms=15.74, billed=16, cold=True),
        record("hello", duration_ms=24.26, billed=25, outcome="error"),
    ]
    report = build_report(records)
    text = render_text(report)
    lines = text.splitlines()

    assert "2024-05-01 10:00:00Z" in lines[0]
    assert "ONE month" in lines[0]
    table = lines[2:5]
    assert table[0].split() == [
        "FUNCTION", "ARCH", "REQUESTS", "ERRORS", "COLD", "AVG", "MS", "P50", "MS", "P99", "MS",
        "BILLED", "MS", "GB-S", "COST",
    ]  # fmt: skip
    assert len({len(line) for line in table}) == 1  # right-aligned columns end together
    hello = next(line for line in table if line.startswith("hello "))
    assert hello.split() == [
        "hello",
        "x86_64",
        "2",
        "1",
        "1",
        "20.00",
        "15.74",
        "24.26",
        "41",
        "0.005125",
        "$0.000000485",
    ]
    thumb = next(line for line in table if line.startswith("thumbnailer"))
    assert "900,000.000" in thumb  # GB-s
    assert "90,000,000" in thumb  # billed ms
    assert "$15.00" in thumb  # 900,000 x 0.0000166667 + 100 requests

    # Totals: 500,000 billable GB-s on x86_64; the free tier saved the rest.
    assert "$8.33" in text  # 500,000 x 0.0000166667 = 8.333350
    assert "400,000.000 free" in text
    assert "Free tier saved" in text
    total_line = next(line for line in lines if line.strip().startswith("TOTAL"))
    assert total_line.split()[-1] == "$8.33"
    arm_line = next(line for line in lines if line.strip().startswith("arm64"))
    assert arm_line.split()[1] == "$6.67"  # 500,000 x 0.0000133334 = 6.6667
    assert arm_line.split()[2] == "-$1.67"
    assert "treated as one month" in text


def test_render_text_warns_when_the_range_is_longer_than_a_month() -> None:
    text = render_text(build_report([record(start=T0), record(start=T0 + 90 * 86_400)]))
    assert "spans 90 days" in text


def test_render_json_is_exact_and_serialisable() -> None:
    report = build_report([*heavy("a", 100), record("b", arch=ARM64)])
    data = render_json(report)
    json.dumps(data)  # no Decimal or other non-JSON values
    assert data["period"] == {
        "start": "2024-05-01T10:00:00.000Z",
        "end": "2024-05-01T10:16:39.000Z",
        "priced_as": "one month",
    }
    assert Decimal(data["totals"]["total"]) == report.totals.total
    # x86_64 takes the whole free allowance (dearer first), so arm64's 0.002 GB-s are billed.
    assert data["totals"]["total"] == "8.3333500266668"
    assert data["totals"]["free_gb_seconds"] == {X86_64: "400000", ARM64: "0"}
    assert data["totals"]["gb_seconds"] == {X86_64: "900000", ARM64: "0.002"}
    assert data["totals"]["requests"] == 101
    assert data["totals"]["currency"] == "USD"
    assert data["what_if"][ARM64]["total"] == str(Decimal("500000.002") * ARM_RATE).rstrip("0")
    b = next(f for f in data["functions"] if f["function_name"] == "b")
    assert b["architecture"] == ARM64
    assert b["duration_ms"] == {"total": 15.74, "avg": 15.74, "p50": 15.74, "p99": 15.74}
    assert data["notes"] == list(report.notes)
    assert data["free_tier"] is True
