"""The figures behind GetMetricStatistics, GetMetricData and ListMetrics, namespace ``AWS/Lambda``.

Where they come from:

* **Durable** (the usage records, so they survive restarts and agree with ``squall cost``):
  Invocations, Errors, Duration and ConcurrentExecutions, per ``FunctionName`` or for the whole
  account (no dimensions). ConcurrentExecutions is the number of invocations running when each one
  started, so its ``Maximum`` over a period is the period's peak concurrency.
* **In memory** (:class:`~squall.metering.metrics.Metrics`, empty after a restart): Throttles,
  AsyncEventAge, DeadLetterErrors, DestinationDeliveryFailures, IteratorAge (sampled whenever it is
  read), and every metric asked for by ``Resource`` (the usage records do not keep the qualifier a
  caller named).

Each event is one raw value (1 for a count, milliseconds for a time), so every statistic, the
percentiles included, is exact. Periods are aligned to multiples of the period since the epoch.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from squall.metering import metrics as m
from squall.metering.metrics import Metrics, Sample
from squall.metering.report import percentile
from squall.models import UsageRecord
from squall.services.cloudwatch.errors import InvalidParameterCombination, InvalidParameterValue
from squall.stores.base import MetadataStore

NAMESPACE = "AWS/Lambda"
MAX_DATAPOINTS = 1440
#: GetMetricData's default and largest MaxDatapoints.
MAX_DATA_DATAPOINTS = 100_800
#: Longest an invocation runs (900 s), so records that started this long before a period may overlap it.
LONGEST_INVOCATION_S = 900
#: ListMetrics lists metrics with data in the last two weeks, as CloudWatch does.
LIST_WINDOW_S = 14 * 86_400

UNITS = {
    m.INVOCATIONS: "Count",
    m.ERRORS: "Count",
    m.THROTTLES: "Count",
    m.DURATION: "Milliseconds",
    m.CONCURRENT: "Count",
    m.ITERATOR_AGE: "Milliseconds",
    m.ASYNC_EVENT_AGE: "Milliseconds",
    m.DEAD_LETTER_ERRORS: "Count",
    m.DESTINATION_DELIVERY_FAILURES: "Count",
}
DURABLE = (m.INVOCATIONS, m.ERRORS, m.DURATION, m.CONCURRENT)
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d{1,10})?|100)$")


@dataclass(frozen=True)
class MetricQuery:
    """One metric with its dimensions (Name -> Value)."""

    metric_name: str
    dimensions: dict[str, str]
    namespace: str = NAMESPACE


@dataclass
class Bucket:
    """The raw values of one period."""

    start: float
    values: list[float] = field(default_factory=list)


def check_stat(stat: str) -> None:
    """A statistic name: one of CloudWatch's five, or a percentile ``pNN`` / ``pNN.NN``."""
    if stat in STATISTICS or _PERCENTILE.match(stat):
        return
    # unverified: CloudWatch's wording for an unknown statistic; this names the value as the model's
    # validation messages do.
    raise InvalidParameterValue(f"The value {stat} for parameter Stat is not a valid statistic.")


def statistic(stat: str, values: Sequence[float]) -> float:
    """One statistic over a period's raw values (never empty)."""
    if stat == "SampleCount":
        return float(len(values))
    if stat == "Sum":
        return math.fsum(values)
    if stat == "Average":
        return math.fsum(values) / len(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Maximum":
        return max(values)
    return percentile(list(values), float(stat[1:]))


def concurrency_samples(records: Iterable[UsageRecord]) -> list[Sample]:
    """At each invocation's start, how many invocations of the set were running (itself included)."""
    ordered = sorted(records, key=lambda r: r.start)
    running: list[float] = []  # end times, a heap
    out: list[Sample] = []
    for record in ordered:
        while running and running[0] <= record.start:
            heapq.heappop(running)
        heapq.heappush(running, record.start + record.duration_ms / 1000)
        out.append(Sample(record.start, float(len(running))))
    return out


class CloudWatchService:
    """Lambda's CloudWatch metrics, read from the usage records and the platform's metrics."""

    def __init__(self, store: MetadataStore, metrics: Metrics, flush: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.metrics = metrics
        #: Writes the usage records still batched in memory, so every finished invocation counts.
        self.flush = flush

    async def _usage(self, since: float, until: float | None, function: str | None) -> list[UsageRecord]:
        await asyncio.to_thread(self.flush)
        return await asyncio.to_thread(self.store.usage, since, until, function)

    # --- samples ---------------------------------------------------------------------------------
    async def samples(self, query: MetricQuery, start: float, end: float) -> list[Sample]:
        """The raw values of a metric in ``[start, end)``; empty for anything Lambda does not publish."""
        dims = query.dimensions
        if query.namespace != NAMESPACE or query.metric_name not in UNITS or set(dims) - {"FunctionName", "Resource"}:
            return []
        function = dims.get("FunctionName")
        resource = dims.get("Resource")
        if function is None and resource is not None:
            function = resource.split(":", 1)[0]
        if query.metric_name in DURABLE and resource is None:
            return await self._durable(query.metric_name, function, start, end)
        if query.metric_name == m.ITERATOR_AGE:
            self.metrics.sample_iterator_ages()
        series = self.metrics.series(query.metric_name, function, resource)
        return [s for s in series if start <= s.at < end]

    async def _durable(self, metric: str, function: str | None, start: float, end: float) -> list[Sample]:
        since = start - LONGEST_INVOCATION_S if metric == m.CONCURRENT else start
        records = await self._usage(since, end, function)
        if metric == m.CONCURRENT:
            return [s for s in concurrency_samples(records) if start <= s.at < end]
        if metric == m.INVOCATIONS:
            return [Sample(r.start, 1.0) for r in records]
        if metric == m.ERRORS:
            return [Sample(r.start, 1.0) for r in records if r.outcome != "success"]
        return [Sample(r.start, r.duration_ms) for r in records]

    # --- GetMetricStatistics ---------------------------------------------------------------------
    async def get_metric_statistics(
        self,
        query: MetricQuery,
        start: float,
        end: float,
        period: int,
        statistics: Sequence[str],
        extended: Sequence[str],
        unit: str | None,
    ) -> list[dict[str, Any]]:
        """Datapoints (oldest first) with the requested statistics, one per period that has data."""
        if not statistics and not extended:
            # unverified: CloudWatch's message when neither list is given (not found in the sources searched).
            raise InvalidParameterCombination("Must specify either Statistics or ExtendedStatistics.")
        for stat in extended:
            if not _PERCENTILE.match(stat):
                # unverified: CloudWatch's wording for a bad percentile (not found in the sources searched).
                raise InvalidParameterValue(f"The value {stat} for parameter ExtendedStatistics is not valid.")
        _check_range(start, end)
        wanted = math.ceil((end - start) / period)
        if wanted > MAX_DATAPOINTS:
            raise InvalidParameterCombination(
                f"You have requested up to {wanted} datapoints, which exceeds the limit of {MAX_DATAPOINTS}. "
                "You may reduce the datapoints requested by increasing Period, or decreasing the time range."
            )
        metric_unit = UNITS.get(query.metric_name)
        if unit is not None and unit != metric_unit:
            return []
        datapoints = []
        for bucket in _buckets(await self.samples(query, start, end), period):
            point: dict[str, Any] = {"Timestamp": bucket.start, "Unit": metric_unit}
            for stat in statistics:
                point[stat] = statistic(stat, bucket.values)
            if extended:
                point["ExtendedStatistics"] = {p: statistic(p, bucket.values) for p in extended}
            datapoints.append(point)
        return datapoints

    # --- GetMetricData ---------------------------------------------------------------------------
    async def metric_data(
        self,
        query: MetricQuery,
        start: float,
        end: float,
        period: int,
        stat: str,
        unit: str | None,
        newest_first: bool,
        limit: int,
    ) -> tuple[list[float], list[float]]:
        """(timestamps, values) of one MetricStat query."""
        check_stat(stat)
        if unit is not None and unit != UNITS.get(query.metric_name):
            return [], []
        buckets = _buckets(await self.samples(query, start, end), period)
        if newest_first:
            buckets.reverse()
        buckets = buckets[:limit]
        return [b.start for b in buckets], [statistic(stat, b.values) for b in buckets]

    # --- ListMetrics -----------------------------------------------------------------------------
    async def list_metrics(
        self, namespace: str | None, metric_name: str | None, filters: Sequence[tuple[str, str | None]]
    ) -> list[MetricQuery]:
        """The metrics with data in the last two weeks, as (name, dimensions), filtered."""
        if namespace is not None and namespace != NAMESPACE:
            return []
        now = time.time()
        records = await self._usage(now - LIST_WINDOW_S, None, None)
        found: dict[tuple[str, tuple[tuple[str, str], ...]], None] = {}
        functions = sorted({r.function_name for r in records})
        for metric in DURABLE:
            if functions:
                found[(metric, ())] = None
            for fn in functions:
                found[(metric, (("FunctionName", fn),))] = None
        for metric, fn, resource in self.metrics.series_keys():
            found[(metric, (("FunctionName", fn),))] = None
            found[(metric, (("FunctionName", fn), ("Resource", resource)))] = None
        out = []
        for (metric, dims), _ in sorted(found.items()):
            if metric_name is not None and metric != metric_name:
                continue
            as_dict = dict(dims)
            if all(name in as_dict and (value is None or as_dict[name] == value) for name, value in filters):
                out.append(MetricQuery(metric, as_dict))
        return out


def _check_range(start: float, end: float) -> None:
    if end <= start:
        # unverified: CloudWatch's wording for an empty time range (recalled, not found in the sources searched).
        raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")


def _buckets(samples: Iterable[Sample], period: int) -> list[Bucket]:
    """Samples grouped by period (aligned to multiples of ``period`` since the epoch), oldest first."""
    grouped: defaultdict[float, Bucket] = defaultdict(lambda: Bucket(0.0))
    for sample in samples:
        key = float(math.floor(sample.at / period) * period)
        bucket = grouped[key]
        bucket.start = key
        bucket.values.append(sample.value)
    return [grouped[k] for k in sorted(grouped)]
