"""``squall top``: a live table of every function, read from a running server's metrics endpoint.

Each frame compares two scrapes of ``/_squall/metrics`` one interval apart: invocations per
second, and p50/p99 durations estimated from the histogram buckets of the invocations of that
interval (of every invocation since the server started when the interval had none), as
Prometheus' ``histogram_quantile`` does. Counts are since the server started.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

import click
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.live import Live
from rich.table import Table

from squall.config import Settings


@dataclass
class FunctionFigures:
    """One function's counters and duration buckets in one scrape (summed over its resources)."""

    invocations: float = 0.0
    errors: float = 0.0
    throttles: float = 0.0
    cold: float = 0.0
    concurrency: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound (ms) -> cumulative count


_COUNTERS = {
    "squall_invocations_total": "invocations",
    "squall_errors_total": "errors",
    "squall_throttles_total": "throttles",
    "squall_cold_starts_total": "cold",
}


def parse(text: str) -> dict[str, FunctionFigures]:
    """Per-function figures from the Prometheus text of ``/_squall/metrics``."""
    figures: defaultdict[str, FunctionFigures] = defaultdict(FunctionFigures)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.labels.get("function_name")
            if name is None:
                continue
            f = figures[name]
            if sample.name in _COUNTERS:
                attr = _COUNTERS[sample.name]
                setattr(f, attr, getattr(f, attr) + sample.value)
            elif sample.name == "squall_concurrent_executions":
                f.concurrency += sample.value
            elif sample.name == "squall_duration_milliseconds_bucket":
                bound = float(sample.labels["le"])
                f.buckets[bound] = f.buckets.get(bound, 0.0) + sample.value
    return dict(figures)


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The ``q`` quantile of a cumulative histogram, interpolated within its bucket (None: empty)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


@dataclass(frozen=True)
class Row:
    """One function's line of the frame."""

    function_name: str
    rate: float
    invocations: int
    p50_ms: float | None
    p99_ms: float | None
    concurrency: int
    warm: int
    cold: int
    errors: int
    throttles: int


def rows(before: dict[str, FunctionFigures], after: dict[str, FunctionFigures], seconds: float) -> list[Row]:
    """The frame's rows from two scrapes ``seconds`` apart, busiest first."""
    out = []
    for name, now in after.items():
        then = before.get(name, FunctionFigures())
        delta = {b: c - then.buckets.get(b, 0.0) for b, c in now.buckets.items()}
        recent = delta if any(v > 0 for v in delta.values()) else now.buckets
        out.append(
            Row(
                function_name=name,
                rate=max(0.0, now.invocations - then.invocations) / seconds if seconds > 0 else 0.0,
                invocations=int(now.invocations),
                p50_ms=quantile(0.5, recent),
                p99_ms=quantile(0.99, recent),
                concurrency=int(now.concurrency),
                warm=int(now.invocations - now.cold),
                cold=int(now.cold),
                errors=int(now.errors),
                throttles=int(now.throttles),
            )
        )
    out.sort(key=lambda r: (-r.rate, -r.invocations, r.function_name))
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def table(frame: list[Row], endpoint: str) -> Table:
    """One frame as a rich table."""
    t = Table(title=f"squall top: {endpoint} at {time.strftime('%H:%M:%S')}", title_justify="left")
    t.add_column("FUNCTION", no_wrap=True)
    for name in ("INV/S", "INVOCATIONS", "P50 MS", "P99 MS", "CONC", "WARM", "COLD", "ERRORS", "THROTTLES"):
        t.add_column(name, justify="right", no_wrap=True)
    for r in frame:
        t.add_row(
            r.function_name,
            f"{r.rate:,.1f}",
            f"{r.invocations:,}",
            _ms(r.p50_ms),
            _ms(r.p99_ms),
            f"{r.concurrency:,}",
            f"{r.warm:,}",
            f"{r.cold:,}",
            f"{r.errors:,}",
            f"{r.throttles:,}",
        )
    if not frame:
        t.caption = "No function has been invoked since the server started."
    return t


def scrape(endpoint: str) -> dict[str, FunctionFigures]:
    """Read and parse the server's metrics."""
    try:
        with urllib.request.urlopen(f"{endpoint.rstrip('/')}/_squall/metrics", timeout=5) as response:
            return parse(response.read().decode())
    except (urllib.error.URLError, OSError) as exc:
        raise click.ClickException(f"Cannot read metrics from {endpoint}: {exc}. Is `squall server` running?") from None


@click.command()
@click.option("--endpoint", help="The server's API URL [env SQUALL_HOST/SQUALL_PORT; default http://127.0.0.1:8990]")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between refreshes")
@click.option("--once", is_flag=True, help="Print one frame (two scrapes an interval apart) and exit")
def top(endpoint: str | None, interval: float, once: bool) -> None:
    """A live view of every function: invocations/s, p50/p99 duration, concurrency, warm and cold
    starts, errors and throttles, refreshed every second from a running server's /_squall/metrics.

    Ctrl-C quits. With --once it prints a single frame, for scripts and tests.
    """
    url = endpoint or Settings.load().endpoint_url
    if interval <= 0:
        raise click.BadParameter("must be positive", param_hint="--interval")
    before, at = scrape(url), time.monotonic()
    # Piped (--once in a script), rich would squeeze the table into 80 columns: give it room.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    if once:
        time.sleep(interval)
        after, now = scrape(url), time.monotonic()
        console.print(table(rows(before, after, now - at), url))
        return
    try:
        with Live(table([], url), console=console, refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(interval)
                after, now = scrape(url), time.monotonic()
                live.update(table(rows(before, after, now - at), url))
                before, at = after, now
    except KeyboardInterrupt:
        return
