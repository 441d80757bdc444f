"""How long idle sandboxes stay warm: a fixed keep-alive, or the hybrid histogram policy.

The adaptive policy follows Shahrad et al., "Serverless in the Wild" (USENIX ATC'20, section 4.2).
Per pool key it keeps a histogram of idle times (from the end of the key's last running invocation
to the next arrival) in bins of ``bin_s`` (the paper: one minute) over ``bins`` bins (the paper: 240,
four hours). When the histogram is representative (enough samples, and the coefficient of variation
of its bin counts at least the paper's threshold of 2) it sets two windows:

- the *pre-warming window*: the head percentile (5th) minus a margin. When it is longer than zero,
  sandboxes are not kept after an invocation; the executor starts them again that long after the key
  went idle, just before the expected next arrival;
- the *keep-alive window*: from then (or from the end of the invocation) until the tail percentile
  (99th) plus a margin.

Otherwise (too few samples, a flat histogram, or a tail out of the histogram's range) it falls back to
the fixed keep-alive. The paper predicts out-of-range functions with an ARIMA model instead; Squall
keeps the fixed window for them. Margins are the paper's 10 % (optionally capped at
``max_margin_bins`` bins). The fixed keep-alive is also the upper bound of the keep-alive window: a
longer pre-warmed window loses its margins first, so it still spans head to tail where it can.
Nothing here does I/O or reads a clock: every call takes its timestamps, so the policy can be
unit-tested and replayed in a simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: The coefficient of variation of bin counts above which the paper calls a histogram representative.
CV_THRESHOLD = 2.0


@dataclass(frozen=True)
class HistogramConfig:
    """The histogram's shape and the policy's thresholds (the paper's values by default)."""

    bin_s: float = 60.0
    bins: int = 240
    head_percentile: float = 5.0
    tail_percentile: float = 99.0
    margin: float = 0.10
    #: The largest margin, in bins; None (the default) leaves the paper's 10 % uncapped.
    max_margin_bins: float | None = None
    cv_threshold: float = CV_THRESHOLD
    #: Samples needed before the histogram is trusted at all.
    min_samples: int = 10
    #: When this many samples are counted, every count is halved so old behaviour fades.
    max_samples: int = 2000

    def __post_init__(self) -> None:
        if self.bin_s <= 0 or self.bins < 1:
            raise ValueError("the histogram needs a positive bin width and at least one bin")


@dataclass(frozen=True)
class Windows:
    """What the policy says for a key: pre-warm after ``prewarm_s`` idle (0: keep the sandbox after
    the invocation), then keep warm for ``keep_alive_s``."""

    prewarm_s: float
    keep_alive_s: float
    representative: bool


class IdleHistogram:
    """Idle times of one pool key in fixed-width bins, with those beyond the range counted apart."""

    def __init__(self, config: HistogramConfig) -> None:
        self.config = config
        self.counts = [0] * config.bins
        self.out_of_bounds = 0

    @property
    def total(self) -> int:
        return sum(self.counts) + self.out_of_bounds

    def add(self, idle_s: float) -> None:
        index = int(max(idle_s, 0.0) // self.config.bin_s)
        if index < self.config.bins:
            self.counts[index] += 1
        else:
            self.out_of_bounds += 1
        if self.total >= self.config.max_samples:
            self.counts = [count // 2 for count in self.counts]
            self.out_of_bounds //= 2

    def percentile_bin(self, percentile: float) -> int | None:
        """The bin holding the percentile, or None when it lies beyond the range."""
        needed = percentile / 100.0 * self.total
        running = 0
        for index, count in enumerate(self.counts):
            running += count
            if count and running >= needed:
                return index
        return None

    def cv(self) -> float:
        """The coefficient of variation of the bin counts (0 for an empty histogram)."""
        n = len(self.counts)
        mean = sum(self.counts) / n
        if mean == 0:
            return 0.0
        variance = sum((count - mean) ** 2 for count in self.counts) / n
        return math.sqrt(variance) / mean

    def windows(self, fixed_s: float) -> Windows:
        cfg = self.config
        fallback = Windows(0.0, fixed_s, False)
        if self.total < cfg.min_samples or self.cv() < cfg.cv_threshold:
            return fallback
        head = self.percentile_bin(cfg.head_percentile)
        tail = self.percentile_bin(cfg.tail_percentile)
        if head is None or tail is None:
            return fallback
        head_s = head * cfg.bin_s  # the lower edge: never later than any idle time in the bin
        tail_s = (tail + 1) * cfg.bin_s  # the upper edge
        prewarm_s = max(0.0, head_s - self._margin(head_s))
        end_s = tail_s + self._margin(tail_s)
        if end_s - prewarm_s > fixed_s and prewarm_s > 0:
            # Bounded by the fixed keep-alive: shrink the margins first, keeping head to tail covered.
            spare = max(0.0, fixed_s - (tail_s - head_s))
            prewarm_s = head_s - spare / 2
        return Windows(prewarm_s, min(end_s - prewarm_s, fixed_s), True)

    def median_s(self) -> float | None:
        middle = self.percentile_bin(50.0)
        return None if middle is None else (middle + 0.5) * self.config.bin_s

    def _margin(self, seconds: float) -> float:
        margin = seconds * self.config.margin
        if self.config.max_margin_bins is not None:
            margin = min(margin, self.config.max_margin_bins * self.config.bin_s)
        return margin


@dataclass
class _KeyState:
    histogram: IdleHistogram
    busy: int = 0
    #: When the key last went idle (its last running invocation ended); None before the first end.
    idle_since: float | None = None
    #: The most invocations running at once in the current (or last) busy period.
    peak: int = 0
    #: The ``idle_since`` of the idle period already pre-warmed for.
    prewarmed_for: float | None = None
    windows: Windows | None = field(default=None)


@dataclass(frozen=True)
class Prewarm:
    """Start ``count`` sandboxes now, to be kept warm until ``until``."""

    count: int
    until: float


class KeepAlivePolicy:
    """Tracks arrivals and ends per pool key and answers how long its idle sandboxes stay warm.

    ``adaptive=False`` is the fixed keep-alive: every idle sandbox stays ``fixed_s``.
    """

    def __init__(self, fixed_s: float, adaptive: bool = True, config: HistogramConfig | None = None) -> None:
        self.fixed_s = fixed_s
        self.adaptive = adaptive
        self.config = config or HistogramConfig()
        self._keys: dict[str, _KeyState] = {}

    def _state(self, key: str) -> _KeyState:
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState(IdleHistogram(self.config))
        return state

    def arrival(self, key: str, now: float) -> None:
        """An invocation of ``key`` starts. An arrival while another runs is no idle time."""
        state = self._state(key)
        if state.busy == 0:
            if state.idle_since is not None and self.adaptive:
                state.histogram.add(now - state.idle_since)
                state.windows = None
            state.peak = 0
        state.busy += 1
        state.peak = max(state.peak, state.busy)

    def end(self, key: str, now: float) -> None:
        """An invocation of ``key`` ended (whatever its outcome)."""
        state = self._state(key)
        state.busy = max(0, state.busy - 1)
        if state.busy == 0:
            state.idle_since = now

    def set_fixed(self, fixed_s: float) -> None:
        """Change the fixed keep-alive (the fallback and upper bound)."""
        if fixed_s != self.fixed_s:
            self.fixed_s = fixed_s
            for state in self._keys.values():
                state.windows = None

    def forget(self, key: str) -> None:
        self._keys.pop(key, None)

    def windows(self, key: str) -> Windows:
        if not self.adaptive:
            return Windows(0.0, self.fixed_s, False)
        state = self._state(key)
        if state.windows is None:
            state.windows = state.histogram.windows(self.fixed_s)
        return state.windows

    def keep_used_s(self, key: str) -> float:
        """How long a sandbox that served an invocation stays idle before it is stopped: not at all
        once the key is idle when the key is pre-warmed instead (while others of its invocations
        run, it stays for the next arrival of the busy period)."""
        windows = self.windows(key)
        state = self._keys.get(key)
        if windows.prewarm_s > 0 and (state is None or not state.busy):
            return 0.0
        return windows.keep_alive_s

    def prewarm(self, key: str, now: float) -> Prewarm | None:
        """Whether to pre-warm ``key`` now: once per idle period, when its pre-warming window has
        passed and its keep-alive window has not, with as many sandboxes as its last busy period
        ran at once."""
        windows = self.windows(key)
        state = self._keys.get(key)
        if windows.prewarm_s <= 0 or state is None or state.busy or state.idle_since is None:
            return None
        start = state.idle_since + windows.prewarm_s
        until = start + windows.keep_alive_s
        if state.prewarmed_for == state.idle_since or not start <= now < until:
            return None
        state.prewarmed_for = state.idle_since
        return Prewarm(max(state.peak, 1), until)

    def prewarm_plan(self, key: str) -> tuple[float, float] | None:
        """The pre-warming window of the current idle period as (start, end), if there is one."""
        windows = self.windows(key)
        state = self._keys.get(key)
        if windows.prewarm_s <= 0 or state is None or state.idle_since is None:
            return None
        start = state.idle_since + windows.prewarm_s
        return start, start + windows.keep_alive_s

    def peak(self, key: str) -> int:
        state = self._keys.get(key)
        return max(state.peak, 1) if state is not None else 1

    def predicted_next_use(self, key: str, now: float) -> float:
        """When ``key`` is next expected to run: now if it is running, else the end of its last
        invocation plus its median idle time (the fixed keep-alive when it has no idle times yet).
        Memory pressure evicts the sandboxes whose next use is furthest away first."""
        state = self._keys.get(key)
        if state is None or state.idle_since is None:
            return now + self.fixed_s
        if state.busy:
            return now
        median = state.histogram.median_s() if self.adaptive else None
        return state.idle_since + (self.fixed_s if median is None else median)
