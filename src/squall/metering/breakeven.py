"""Lambda or a server? The smallest always-on server that carries the observed load, and the
sustained request rate above which that server is the cheaper choice.

Sizing: Lambda gives a function CPU in proportion to its memory (1,769 MB is one vCPU, spec
section 6), so the server needs the memory of the invocations that ran at the same moment at the
observed peak, and one vCPU per 1,769 MB of it, each rounded up to a whole unit (at least 1).

Price: a configurable hourly price. Without one, Squall prices the server in multiples of a
2 vCPU / 4 GiB general-purpose box at $0.0416 an hour (the us-east-1 on-demand list price of an
EC2 t3.medium, Linux), enough of them to hold both the vCPUs and the memory. A month is 730 hours,
the figure AWS's own pricing examples use.

Break-even: Lambda's monthly bill at a sustained rate ``r`` (requests per second, each with the
observed average GB-seconds, at the observed architecture, the free tier applied) grows with ``r``;
the break-even rate is where it reaches the server's monthly price. Bills are exact decimals; the
rate is found by bisection to a millionth of a request per second.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from squall.metering.pricing import X86_64, cost, gb_seconds
from squall.models import UsageRecord

MB_PER_VCPU = 1769
HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
#: The default server unit: vCPUs, GiB and US dollars per hour (EC2 t3.medium, us-east-1, Linux).
BOX_VCPU = 2
BOX_MEMORY_GB = 4
BOX_HOURLY = Decimal("0.0416")


@dataclass(frozen=True)
class Peak:
    """The most invocations that ran at once, and the configured memory they held together then."""

    concurrency: int
    memory_mb: int


@dataclass(frozen=True)
class Server:
    """An always-on server: its size and what it costs."""

    vcpu: int
    memory_gb: int
    hourly: Decimal

    @property
    def monthly(self) -> Decimal:
        return self.hourly * HOURS_PER_MONTH


@dataclass(frozen=True)
class BreakEven:
    """The server that would carry the load, the load observed, and where the two bills cross.

    ``break_even_rps`` is None when nothing was invoked; ``lambda_monthly`` is Lambda's monthly
    bill at the observed rate (free tier applied).
    """

    peak: Peak
    server: Server
    architecture: str
    requests: int
    period_s: float
    gb_seconds_per_request: Decimal
    observed_rps: float
    lambda_monthly: Decimal
    break_even_rps: float | None

    @property
    def cheaper(self) -> str:
        """``lambda`` or ``server`` at the observed rate."""
        return "lambda" if self.lambda_monthly <= self.server.monthly else "server"


def peak_load(records: Iterable[UsageRecord]) -> Peak:
    """The peak concurrency and the memory held at that moment, over the records' intervals."""
    running: list[tuple[float, int]] = []  # (end, memory) heap
    memory = 0
    best = Peak(0, 0)
    for record in sorted(records, key=lambda r: r.start):
        while running and running[0][0] <= record.start:
            memory -= heapq.heappop(running)[1]
        heapq.heappush(running, (record.start + record.duration_ms / 1000, record.memory_mb))
        memory += record.memory_mb
        if (len(running), memory) > (best.concurrency, best.memory_mb):
            best = Peak(len(running), memory)
    return best


def smallest_server(peak: Peak, hourly: Decimal | None = None) -> Server:
    """The server for a peak: its own vCPUs and memory at ``hourly``, or whole default boxes."""
    vcpu = max(1, math.ceil(peak.memory_mb / MB_PER_VCPU))
    memory_gb = max(1, math.ceil(peak.memory_mb / 1024))
    if hourly is not None:
        return Server(vcpu, memory_gb, hourly)
    boxes = max(math.ceil(vcpu / BOX_VCPU), math.ceil(memory_gb / BOX_MEMORY_GB))
    return Server(boxes * BOX_VCPU, boxes * BOX_MEMORY_GB, boxes * BOX_HOURLY)


def lambda_monthly(rps: float, gbs_per_request: Decimal, architecture: str) -> Decimal:
    """Lambda's monthly bill (free tier applied) for a sustained ``rps``."""
    requests = int(rps * SECONDS_PER_MONTH)
    return cost({architecture: requests}, {architecture: gbs_per_request * requests}).total


def break_even(
    records: list[UsageRecord],
    hourly: Decimal | None = None,
    architecture: str | None = None,
    period_s: float | None = None,
) -> BreakEven:
    """Compare Lambda with the smallest server for these records. ``period_s`` defaults to the
    records' own span (first start to last end); ``architecture`` to the one with most GB-seconds."""
    peak = peak_load(records)
    server = smallest_server(peak, hourly)
    usage: dict[str, Decimal] = {}
    for record in records:
        arch = architecture or record.architecture
        usage[arch] = usage.get(arch, Decimal(0)) + gb_seconds(record.memory_mb, record.billed_ms)
    arch = architecture or (max(usage, key=lambda a: usage[a]) if usage else X86_64)
    if period_s is None:
        period_s = (
            max(r.start + r.duration_ms / 1000 for r in records) - min(r.start for r in records) if records else 0.0
        )
    count = len(records)
    per_request = sum(usage.values(), Decimal(0)) / count if count else Decimal(0)
    observed = count / period_s if period_s > 0 else 0.0
    crossing = _crossing(per_request, arch, server.monthly) if count else None
    return BreakEven(
        peak=peak,
        server=server,
        architecture=arch,
        requests=count,
        period_s=period_s,
        gb_seconds_per_request=per_request,
        observed_rps=observed,
        lambda_monthly=lambda_monthly(observed, per_request, arch),
        break_even_rps=crossing,
    )


def _crossing(per_request: Decimal, arch: str, monthly: Decimal) -> float:
    low, high = 0.0, 1.0
    while lambda_monthly(high, per_request, arch) < monthly:
        low, high = high, high * 2
        if high > 1e9:
            return math.inf
    while high - low > 1e-6:
        mid = (low + high) / 2
        if lambda_monthly(mid, per_request, arch) < monthly:
            low = mid
        else:
            high = mid
    return high
