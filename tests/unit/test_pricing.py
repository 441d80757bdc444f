"""Lambda's price model: billed-duration rounding, GB-seconds, tiers and the shared free tier."""

from __future__ import annotations

import dataclasses
import math
from decimal import ROUND_HALF_UP, Decimal

import pytest

from squall.metering.pricing import (
    ARM64,
    ARM64_PRICES,
    LAMBDA_FREE_TIER,
    LAMBDA_PRICES,
    X86_64,
    X86_64_PRICES,
    PriceModel,
    PriceTier,
    billed_ms,
    cost,
    gb_seconds,
)

BILLION = Decimal(1_000_000_000)
CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


# -- billed duration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "billed"),
    [
        (0.01, 1),
        (0.0, 1),
        (1.0, 1),
        (1.0001, 2),
        (15.74, 16),
        (3000.0, 3000),
        (2999.999, 3000),
        (3000.000001, 3001),  # 1 ns over still bills another millisecond
    ],
)
def test_billed_ms_rounds_up_to_whole_milliseconds(duration: float, billed: int) -> None:
    assert billed_ms(duration) == billed


def test_billed_ms_ignores_float_noise() -> None:
    noisy = (0.1 + 0.2) * 10
    assert noisy > 3  # 3.0000000000000004
    assert billed_ms(noisy) == 3


def test_billed_ms_includes_init_when_given() -> None:
    # Observed REPORT after INIT billing began: Duration 1655.10, Init 322.04, Billed 1978.
    assert billed_ms(1655.10, 322.04) == 1978
    assert billed_ms(15.74, None) == 16


@pytest.mark.parametrize("bad", [-0.5, math.nan, math.inf])
def test_billed_ms_rejects_impossible_durations(bad: float) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        billed_ms(bad)


def test_gb_seconds_is_exact() -> None:
    assert gb_seconds(128, 16) == Decimal("0.002")
    assert gb_seconds(512, 1000) == Decimal("0.5")
    assert gb_seconds(10_240, 900_000) == Decimal(9000)
    assert gb_seconds(1769, 1) == Decimal(1769) / 1024 / 1000
    with pytest.raises(ValueError):
        gb_seconds(-1, 10)


# -- the published prices ----------------------------------------------------------------------


def test_prices_are_the_published_us_east_1_figures() -> None:
    assert X86_64_PRICES.request_price * 1_000_000 == Decimal("0.20")
    assert ARM64_PRICES.request_price == X86_64_PRICES.request_price
    assert [t.price_per_gb_second for t in X86_64_PRICES.tiers] == [
        Decimal("0.0000166667"),
        Decimal("0.000015"),
        Decimal("0.0000133334"),
    ]
    assert [t.up_to for t in X86_64_PRICES.tiers] == [6 * BILLION, 15 * BILLION, None]
    assert [t.price_per_gb_second for t in ARM64_PRICES.tiers] == [
        Decimal("0.0000133334"),
        Decimal("0.0000120001"),
        Decimal("0.0000106667"),
    ]
    assert [t.up_to for t in ARM64_PRICES.tiers] == [
        Decimal("7.5") * BILLION,
        Decimal("18.75") * BILLION,
        None,
    ]
    assert LAMBDA_FREE_TIER.requests == 1_000_000
    assert LAMBDA_FREE_TIER.gb_seconds == 400_000
    assert set(LAMBDA_PRICES) == {X86_64, ARM64}


@pytest.mark.parametrize("model", [X86_64_PRICES, ARM64_PRICES])
def test_tiers_are_ten_and_twenty_percent_off_the_base_price(model: PriceModel) -> None:
    base, second, third = (t.price_per_gb_second for t in model.tiers)
    step = Decimal("0.0000000001")
    assert second == (base * Decimal("0.9")).quantize(step, rounding=ROUND_HALF_UP)
    assert third == (base * Decimal("0.8")).quantize(step, rounding=ROUND_HALF_UP)


def test_arm64_is_twenty_percent_below_x86() -> None:
    expected = (X86_64_PRICES.base_price * Decimal("0.8")).quantize(Decimal("0.0000000001"))
    assert ARM64_PRICES.base_price == expected


# -- the worked example ------------------------------------------------------------------------


def test_pricing_page_worked_example() -> None:
    # 512 MB, 1 s each, 3 M invocations in a month: 1.5 M GB-s, 1.1 M after the free tier.
    usage = gb_seconds(512, billed_ms(1000.0)) * 3_000_000
    assert usage == 1_500_000
    breakdown = cost(3_000_000, {X86_64: usage})
    assert breakdown.billable_requests == 2_000_000
    assert breakdown.request_cost == Decimal("0.40")
    # At the list price the duration charge is exactly 1.1 M x 0.0000166667.
    assert breakdown.duration_cost[X86_64] == Decimal("18.33337")
    assert breakdown.total == Decimal("18.73337")

    # The page multiplies by the rate rounded to $0.00001667 and so prints $18.34.
    rounded = dataclasses.replace(X86_64_PRICES, tiers=(PriceTier(None, Decimal("0.00001667")),))
    page = cost(3_000_000, {X86_64: usage}, prices={X86_64: rounded})
    assert cents(page.duration_cost[X86_64]) == Decimal("18.34")
    assert cents(page.request_cost) == Decimal("0.40")


# -- tiers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "usage", "expected"),
    [
        (X86_64, 6 * BILLION, 6 * BILLION * Decimal("0.0000166667")),
        (X86_64, 6 * BILLION + 1, Decimal("100000.2") + Decimal("0.000015")),
        (X86_64, 15 * BILLION, Decimal("100000.2") + Decimal(135_000)),
        (X86_64, 15 * BILLION + 1, Decimal("235000.2") + Decimal("0.0000133334")),
        (ARM64, Decimal("7.5") * BILLION, Decimal("100000.5")),
        (ARM64, Decimal("7.5") * BILLION + 1, Decimal("100000.5") + Decimal("0.0000120001")),
        (ARM64, Decimal("18.75") * BILLION, Decimal("100000.5") + Decimal("135001.125")),
        (ARM64, Decimal("18.75") * BILLION + 1, Decimal("235001.625") + Decimal("0.0000106667")),
    ],
)
def test_duration_tiers_change_price_exactly_at_the_boundary(arch: str, usage: Decimal, expected: Decimal) -> None:
    breakdown = cost(0, {arch: usage}, apply_free_tier=False)
    assert breakdown.duration_cost[arch] == expected


def test_tiers_count_each_architecture_separately() -> None:
    five = 5 * BILLION
    breakdown = cost(0, {X86_64: five, ARM64: five}, apply_free_tier=False)
    # 10 B GB-s in all, but each architecture stays inside its own first tier.
    assert breakdown.duration_cost[X86_64] == five * Decimal("0.0000166667")
    assert breakdown.duration_cost[ARM64] == five * Decimal("0.0000133334")


def test_duration_cost_can_start_part_way_through_the_month() -> None:
    # 2 B GB-s starting at 5 B: 1 B in the first tier, 1 B in the second.
    assert X86_64_PRICES.duration_cost(2 * BILLION, starting_at=5 * BILLION) == BILLION * (
        Decimal("0.0000166667") + Decimal("0.000015")
    )
    with pytest.raises(ValueError):
        X86_64_PRICES.duration_cost(Decimal(-1))


def test_price_model_rejects_malformed_tiers() -> None:
    with pytest.raises(ValueError, match="unbounded"):
        PriceModel(X86_64, Decimal(0), (PriceTier(Decimal(10), Decimal(1)),))
    with pytest.raises(ValueError, match="increasing"):
        PriceModel(
            X86_64,
            Decimal(0),
            (
                PriceTier(Decimal(10), Decimal(1)),
                PriceTier(Decimal(5), Decimal(1)),
                PriceTier(None, Decimal(1)),
            ),
        )


# -- the free tier -----------------------------------------------------------------------------


def test_free_tier_is_applied_once_across_architectures() -> None:
    breakdown = cost({X86_64: 600_000, ARM64: 600_000}, {X86_64: 300_000, ARM64: 300_000})
    # 1 M free requests in all, not 1 M per architecture.
    assert breakdown.billable_requests == 200_000
    assert breakdown.request_cost == Decimal("0.04")
    # 400 k free GB-s in all, credited to the dearer x86_64 first.
    assert breakdown.free_gb_seconds == {X86_64: Decimal(300_000), ARM64: Decimal(100_000)}
    assert breakdown.duration_cost[X86_64] == 0
    assert breakdown.duration_cost[ARM64] == 200_000 * Decimal("0.0000133334")
    assert breakdown.total == Decimal("0.04") + Decimal("2.66668")


def test_free_tier_savings_are_the_difference_from_list_price() -> None:
    usage = {X86_64: Decimal(1_000_000)}
    with_free = cost(2_000_000, usage)
    without = cost(2_000_000, usage, apply_free_tier=False)
    assert without.free_tier_savings == 0
    assert without.billable_requests == 2_000_000
    assert without.total == Decimal("0.40") + Decimal("16.6667")
    assert with_free.free_tier_savings == Decimal("0.20") + 400_000 * Decimal("0.0000166667")
    assert with_free.total + with_free.free_tier_savings == without.total


def test_usage_inside_the_free_tier_costs_nothing() -> None:
    breakdown = cost(1_000_000, {X86_64: 250_000, ARM64: 150_000})
    assert breakdown.total == 0
    assert breakdown.free_tier_savings > 0
    assert breakdown.total_gb_seconds == 400_000


def test_float_usage_is_read_as_its_decimal_text() -> None:
    breakdown = cost(0, {X86_64: 0.1}, apply_free_tier=False)
    assert breakdown.gb_seconds[X86_64] == Decimal("0.1")


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="riscv64"):
        cost(1, {"riscv64": 1})


def test_a_plain_request_count_needs_one_request_price() -> None:
    dear = dataclasses.replace(ARM64_PRICES, request_price=Decimal("0.000001"))
    prices = {X86_64: X86_64_PRICES, ARM64: dear}
    with pytest.raises(ValueError, match="per architecture"):
        cost(10, {X86_64: 1}, prices=prices)
    breakdown = cost({ARM64: 10}, {ARM64: 1}, apply_free_tier=False, prices=prices)
    assert breakdown.request_cost == Decimal("0.00001")
