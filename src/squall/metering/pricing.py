"""AWS Lambda's on-demand price model, as data, and the arithmetic that applies it.

All money is :class:`decimal.Decimal` (US dollars, never rounded here: rounding to cents is the
presenter's job), so sums over millions of invocations carry no float drift.

Prices are us-east-1 list prices for on-demand functions (spec section 6.3):

* Requests: $0.20 per million, both architectures. Source: AWS whitepaper "How AWS Pricing Works",
  Lambda chapter (https://docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/lambda.html).
* Duration, per GB-second, tiered on the month's aggregate usage *per architecture* (the pricing page,
  https://aws.amazon.com/lambda/pricing/: "pricing tiers are applied to aggregate monthly duration of
  your functions running on the same architecture"):

  - x86_64: $0.0000166667 for the first 6 B, $0.000015 for the next 9 B, $0.0000133334 over 15 B;
  - arm64:  $0.0000133334 for the first 7.5 B, $0.0000120001 for the next 11.25 B,
    $0.0000106667 over 18.75 B.

  Tier boundaries and discounts: AWS Compute Blog, "Introducing tiered pricing for AWS Lambda" (2022,
  https://aws.amazon.com/blogs/compute/introducing-tiered-pricing-for-aws-lambda/). The x86 first-tier
  figure is the whitepaper's; arm64's is 20 % lower (AWS News Blog on Graviton2 Lambda). The per-tier
  figures are those base prices less 10 % / 20 %, and agree with the third-party summary
  https://cloudchipr.com/blog/aws-lambda-pricing (AWS's own table is rendered client-side and was not
  in the copies consulted).
* Free tier, monthly and permanent: 1,000,000 requests and 400,000 GB-seconds, shared by x86_64 and
  arm64 (whitepaper; pricing page).
* Duration is billed rounded up to the nearest 1 ms (since December 2020). Since 1 August 2025 the
  INIT phase of on-demand ZIP functions is billed too: ``Billed Duration = ceil(Duration + Init)``
  (AWS Compute Blog, "AWS Lambda standardizes billing for INIT phase").

The pricing page's worked example (512 MB, 1 s, 3 M requests: $18.34 + $0.40) multiplies by the
*rounded* rate $0.00001667; at the list rate $0.0000166667 the duration charge is $18.33337.

Not published, so chosen here: which architecture the shared free GB-seconds are credited to. Squall
credits the architecture with the dearer first-tier price first (x86_64), the cheapest bill the
published rules allow; the free GB-seconds come off the bottom of that architecture's first tier.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Final

X86_64: Final = "x86_64"
ARM64: Final = "arm64"
ARCHITECTURES: Final = (X86_64, ARM64)

_ZERO = Decimal(0)
_MB_PER_GB = Decimal(1024)
_MS_PER_S = Decimal(1000)


@dataclass(frozen=True)
class PriceTier:
    """One band of an architecture's monthly GB-seconds, billed at one price.

    ``up_to`` is the cumulative monthly GB-seconds at which the band ends (``None``: it never ends).
    """

    up_to: Decimal | None
    price_per_gb_second: Decimal


@dataclass(frozen=True)
class PriceModel:
    """The on-demand prices of one architecture: a price per request and tiered GB-second prices."""

    architecture: str
    request_price: Decimal
    tiers: tuple[PriceTier, ...]

    def __post_init__(self) -> None:
        if not self.tiers or self.tiers[-1].up_to is not None:
            raise ValueError("the last price tier must be unbounded (up_to=None)")
        lower = _ZERO
        for tier in self.tiers[:-1]:
            if tier.up_to is None or tier.up_to <= lower:
                raise ValueError("price tier bounds must be positive and increasing")
            lower = tier.up_to

    @property
    def base_price(self) -> Decimal:
        """The first tier's price per GB-second."""
        return self.tiers[0].price_per_gb_second

    def duration_cost(self, gb_seconds: Decimal, *, starting_at: Decimal = _ZERO) -> Decimal:
        """The price of ``gb_seconds`` that begin ``starting_at`` GB-seconds into the month."""
        if gb_seconds < 0 or starting_at < 0:
            raise ValueError("GB-seconds cannot be negative")
        start, end = starting_at, starting_at + gb_seconds
        total = _ZERO
        lower = _ZERO
        for tier in self.tiers:
            upper = end if tier.up_to is None else tier.up_to
            overlap = min(end, upper) - max(start, lower)
            if overlap > 0:
                total += overlap * tier.price_per_gb_second
            if tier.up_to is None or end <= tier.up_to:
                break
            lower = tier.up_to
        return total


@dataclass(frozen=True)
class FreeTier:
    """What each month includes at no charge, shared by all architectures."""

    requests: int = 1_000_000
    gb_seconds: Decimal = Decimal(400_000)


def _tiers(first: str, second: str, prices: tuple[str, str, str]) -> tuple[PriceTier, ...]:
    """Three bands: ``first`` billion GB-s, the ``second`` billion after it, then the rest."""
    billion = Decimal(1_000_000_000)
    return (
        PriceTier(Decimal(first) * billion, Decimal(prices[0])),
        PriceTier((Decimal(first) + Decimal(second)) * billion, Decimal(prices[1])),
        PriceTier(None, Decimal(prices[2])),
    )


REQUEST_PRICE: Final = Decimal("0.20") / Decimal(1_000_000)

X86_64_PRICES: Final = PriceModel(
    architecture=X86_64,
    request_price=REQUEST_PRICE,
    tiers=_tiers("6", "9", ("0.0000166667", "0.000015", "0.0000133334")),
)
ARM64_PRICES: Final = PriceModel(
    architecture=ARM64,
    request_price=REQUEST_PRICE,
    tiers=_tiers("7.5", "11.25", ("0.0000133334", "0.0000120001", "0.0000106667")),
)
LAMBDA_PRICES: Final[Mapping[str, PriceModel]] = MappingProxyType({X86_64: X86_64_PRICES, ARM64: ARM64_PRICES})
LAMBDA_FREE_TIER: Final = FreeTier()


def billed_ms(duration_ms: float, init_ms: float | None = None) -> int:
    """Billed Duration: ``duration_ms`` (plus ``init_ms`` when the INIT phase is billed) rounded up
    to a whole millisecond, never less than 1 ms.

    The sum is first rounded to the nanosecond so that float noise from clock arithmetic
    (``2.0000000000004``) does not bill an extra millisecond; ``0.01`` still bills 1 ms.
    """
    total = duration_ms + (init_ms or 0.0)
    if math.isnan(total) or total < 0 or math.isinf(total):
        raise ValueError(f"invalid duration: {total!r} ms")
    return max(1, math.ceil(round(total, 6)))


def gb_seconds(memory_mb: int, billed_ms: int) -> Decimal:
    """GB-seconds of one invocation: configured memory in GB (MB / 1024) times billed seconds. Exact."""
    if memory_mb < 0 or billed_ms < 0:
        raise ValueError("memory and billed duration cannot be negative")
    return Decimal(memory_mb) / _MB_PER_GB * Decimal(billed_ms) / _MS_PER_S


@dataclass(frozen=True)
class CostBreakdown:
    """What a month of usage costs: requests, duration per architecture, and the free tier's share.

    ``request_cost`` and ``duration_cost`` are after the free tier (when applied);
    ``free_tier_savings`` is what the free tier took off; ``total`` is what would be billed.
    """

    requests: int
    billable_requests: int
    request_cost: Decimal
    gb_seconds: dict[str, Decimal]
    free_gb_seconds: dict[str, Decimal]
    duration_cost: dict[str, Decimal]
    free_tier_applied: bool
    free_tier_savings: Decimal
    total: Decimal

    @property
    def total_gb_seconds(self) -> Decimal:
        """GB-seconds over all architectures."""
        return sum(self.gb_seconds.values(), _ZERO)

    @property
    def total_duration_cost(self) -> Decimal:
        """Duration cost over all architectures."""
        return sum(self.duration_cost.values(), _ZERO)


def _by_dearest(models: Mapping[str, PriceModel], archs: list[str], key: str) -> list[str]:
    order = {arch: i for i, arch in enumerate(ARCHITECTURES)}

    def price(arch: str) -> Decimal:
        model = models[arch]
        return model.request_price if key == "request" else model.base_price

    return sorted(archs, key=lambda a: (-price(a), order.get(a, len(order)), a))


def _charge(
    requests: Mapping[str, int],
    usage: Mapping[str, Decimal],
    models: Mapping[str, PriceModel],
    free: FreeTier | None,
) -> tuple[int, Decimal, dict[str, Decimal], dict[str, Decimal]]:
    free_requests_left = free.requests if free else 0
    billable_requests = 0
    request_cost = _ZERO
    for arch in _by_dearest(models, list(requests), "request"):
        count = requests[arch]
        waived = min(count, free_requests_left)
        free_requests_left -= waived
        billable_requests += count - waived
        request_cost += (count - waived) * models[arch].request_price

    free_gbs_left = free.gb_seconds if free else _ZERO
    free_used: dict[str, Decimal] = {}
    duration: dict[str, Decimal] = {}
    for arch in _by_dearest(models, list(usage), "duration"):
        amount = usage[arch]
        waived_gbs = min(amount, free_gbs_left)
        free_gbs_left -= waived_gbs
        free_used[arch] = waived_gbs
        duration[arch] = models[arch].duration_cost(amount - waived_gbs, starting_at=waived_gbs)
    in_order = list(usage)
    free_used = {arch: free_used[arch] for arch in in_order}
    duration = {arch: duration[arch] for arch in in_order}
    return billable_requests, request_cost, free_used, duration


def cost(
    requests: int | Mapping[str, int],
    gb_seconds_by_arch: Mapping[str, Decimal | int | float],
    apply_free_tier: bool = True,
    *,
    prices: Mapping[str, PriceModel] = LAMBDA_PRICES,
    free_tier: FreeTier = LAMBDA_FREE_TIER,
) -> CostBreakdown:
    """Price one month of usage: ``requests`` (a count, or counts per architecture) and GB-seconds
    per architecture. The free tier is applied once, across architectures.

    A plain request count needs every architecture to share one request price (true of Lambda's).
    Floats are converted through ``str`` so ``0.1`` means ``Decimal("0.1")``.
    """
    usage = {arch: _decimal(v) for arch, v in gb_seconds_by_arch.items()}
    if isinstance(requests, int):
        request_prices = {m.request_price for m in prices.values()}
        if len(request_prices) != 1:
            raise ValueError("request prices differ by architecture: pass requests per architecture")
        first = next(iter(prices))
        by_arch_requests: dict[str, int] = {first: requests}
    else:
        by_arch_requests = dict(requests)
    for arch in {*usage, *by_arch_requests}:
        if arch not in prices:
            raise ValueError(f"no prices for architecture {arch!r}; known: {', '.join(prices)}")
    if any(n < 0 for n in by_arch_requests.values()) or any(v < 0 for v in usage.values()):
        raise ValueError("usage cannot be negative")

    billable, request_cost, free_used, duration = _charge(
        by_arch_requests, usage, prices, free_tier if apply_free_tier else None
    )
    total = request_cost + sum(duration.values(), _ZERO)
    if apply_free_tier:
        _, list_requests, _, list_duration = _charge(by_arch_requests, usage, prices, None)
        savings = list_requests + sum(list_duration.values(), _ZERO) - total
    else:
        savings = _ZERO
    return CostBreakdown(
        requests=sum(by_arch_requests.values()),
        billable_requests=billable,
        request_cost=request_cost,
        gb_seconds=usage,
        free_gb_seconds=free_used,
        duration_cost=duration,
        free_tier_applied=apply_free_tier,
        free_tier_savings=savings,
        total=total,
    )


def _decimal(value: Decimal | int | float) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    return Decimal(repr(value))
