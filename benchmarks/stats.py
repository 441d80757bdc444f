"""Summaries of samples: percentiles by linear interpolation, spread, and how to print them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, interpolating between ranks."""
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    """Order statistics of one series of samples (milliseconds unless the series says otherwise)."""

    n: int
    p50: float
    p90: float
    p99: float
    min: float
    max: float
    mean: float
    stdev: float
    q1: float
    q3: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        ordered = sorted(values)
        if not ordered:
            nan = math.nan
            return cls(0, nan, nan, nan, nan, nan, nan, nan, nan, nan)
        return cls(
            n=len(ordered),
            p50=percentile(ordered, 50),
            p90=percentile(ordered, 90),
            p99=percentile(ordered, 99),
            min=ordered[0],
            max=ordered[-1],
            mean=statistics.fmean(ordered),
            stdev=statistics.stdev(ordered) if len(ordered) > 1 else 0.0,
            q1=percentile(ordered, 25),
            q3=percentile(ordered, 75),
        )

    def as_dict(self) -> dict[str, Any]:
        return {key: _round(value) for key, value in asdict(self).items()}


def _round(value: float | int) -> float | int | None:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    return value


def fmt_ms(value: float) -> str:
    """Milliseconds with precision that suits their size: ``0.412 ms``, ``12.3 ms``, ``154 ms``."""
    if math.isnan(value):
        return "n/a"
    if abs(value) < 10:
        return f"{value:.3f} ms"
    if abs(value) < 100:
        return f"{value:.1f} ms"
    return f"{value:.0f} ms"


def fmt_us(value_ms: float) -> str:
    """Milliseconds printed as microseconds, for the floor's sub-millisecond figures."""
    if math.isnan(value_ms):
        return "n/a"
    return f"{value_ms * 1000:.1f} us"
