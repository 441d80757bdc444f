"""Lambda's per-function metrics: a Prometheus registry for scrapers and short in-memory series.

:class:`Metrics` is an after-invoke hook (like the usage recorder) plus a few counters the invoke
path calls where throttles, dead-letter errors and destination failures happen. It owns its
:class:`prometheus_client.CollectorRegistry` (one per platform, never the global default one), so
two platforms in one process never mix their figures.

Labels: ``function_name``, and ``resource``: the name, or ``name:qualifier`` when the caller named
a version or alias (CloudWatch's ``Resource`` dimension). ConcurrentExecutions and IteratorAge are
read when scraped, from callbacks the platform registers (in-flight invocations per function, and
the last batch's IteratorAge per event source mapping).

Besides Prometheus, every event is kept in a bounded in-memory series per (metric, function,
resource) for the CloudWatch API's figures that the durable usage records do not hold: throttles,
async event ages, dead-letter and destination failures, IteratorAge, and anything asked for by
``Resource``. Those series start empty at every server start.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from squall.models import FunctionConfig, InvokeRequest, InvokeResult

if TYPE_CHECKING:
    from squall.invoke.async_queue import AsyncDispatcher
    from squall.invoke.destinations import Destinations
    from squall.invoke.sync import Invoker
    from squall.sources.mappings import MappingStore
    from squall.sources.streams import StreamMappings

#: Prometheus' text exposition format, version 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Duration buckets in milliseconds: from a warm no-op to Lambda's 15-minute maximum.
DURATION_BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 900000)
INIT_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
AGE_BUCKETS_MS = (10, 100, 1000, 10000, 60000, 300000, 3600000, 21600000)

#: Samples kept per series for the CloudWatch API (the oldest are dropped first).
SERIES_LIMIT = 100_000

#: CloudWatch metric names of the in-memory series.
INVOCATIONS = "Invocations"
ERRORS = "Errors"
THROTTLES = "Throttles"
DURATION = "Duration"
CONCURRENT = "ConcurrentExecutions"
ITERATOR_AGE = "IteratorAge"
ASYNC_EVENT_AGE = "AsyncEventAge"
DEAD_LETTER_ERRORS = "DeadLetterErrors"
DESTINATION_DELIVERY_FAILURES = "DestinationDeliveryFailures"

#: (function name, resource, mapping id, IteratorAge in ms) of each stream mapping with a last batch.
IteratorAges = Callable[[], Iterable[tuple[str, str, str, int]]]
#: In-flight invocations per function name.
Running = Callable[[], Mapping[str, int]]

_LABELS = ("function_name", "resource")


def resource_of(function_name: str, qualifier: str | None) -> str:
    """CloudWatch's ``Resource``: the function name, with ``:qualifier`` when one was named."""
    return f"{function_name}:{qualifier}" if qualifier else function_name


def resource_from_arn(invoked_arn: str) -> str:
    """The ``Resource`` of an invoked function ARN (``...:function:name[:qualifier]``)."""
    return invoked_arn.rsplit(":function:", 1)[-1]


@dataclass(frozen=True)
class Sample:
    """One observation of a series: when (epoch seconds) and its value."""

    at: float
    value: float


class _Children:
    """The labelled children of one (function, resource), looked up once instead of per call."""

    __slots__ = ("cold", "duration", "errors", "init", "invocations")

    def __init__(self, metrics: Metrics, labels: tuple[str, str]) -> None:
        self.invocations = metrics.invocations.labels(*labels)
        self.errors = metrics.errors.labels(*labels)
        self.duration = metrics.duration.labels(*labels)
        self.cold = metrics.cold_starts.labels(*labels)
        self.init = metrics.init_duration.labels(*labels)


class _Callbacks(Collector):
    """The gauges read when scraped: ConcurrentExecutions and IteratorAge."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        concurrent = GaugeMetricFamily(
            "squall_concurrent_executions",
            "Invocations of the function running now (ConcurrentExecutions)",
            labels=["function_name"],
        )
        for name, running in sorted(self.metrics.running().items()):
            concurrent.add_metric([name], running)
        yield concurrent
        ages = GaugeMetricFamily(
            "squall_iterator_age_milliseconds",
            "Age of the last record of the last batch a stream mapping sent to the function (IteratorAge)",
            labels=["function_name", "resource", "mapping"],
        )
        for name, resource, mapping, age in self.metrics.iterator_ages():
            ages.add_metric([name, resource, mapping], age)
        yield ages


def _none() -> Mapping[str, int]:
    return {}


def _no_ages() -> Iterable[tuple[str, str, str, int]]:
    return ()


class Metrics:
    """Per-function Lambda metrics: an after-invoke hook, event counters, and their registry."""

    def __init__(self, running: Running = _none, iterator_ages: IteratorAges = _no_ages) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.running = running
        self.iterator_ages = iterator_ages
        r = self.registry
        self.invocations = Counter("squall_invocations", "Invocations run (Invocations)", _LABELS, registry=r)
        self.errors = Counter(
            "squall_errors", "Invocations that ended in a function error (Errors)", _LABELS, registry=r
        )
        self.throttles = Counter("squall_throttles", "Invoke requests throttled (Throttles)", _LABELS, registry=r)
        self.duration = Histogram(
            "squall_duration_milliseconds",
            "Time the function code ran, in ms (Duration)",
            _LABELS,
            registry=r,
            buckets=DURATION_BUCKETS_MS,
        )
        self.cold_starts = Counter(
            "squall_cold_starts", "Invocations that started a new execution environment", _LABELS, registry=r
        )
        self.init_duration = Histogram(
            "squall_init_duration_milliseconds",
            "INIT phase of cold starts, in ms (InitDuration)",
            _LABELS,
            registry=r,
            buckets=INIT_BUCKETS_MS,
        )
        self.async_event_age = Histogram(
            "squall_async_event_age_milliseconds",
            "Time an async event waited in the queue before it was dispatched, in ms (AsyncEventAge)",
            _LABELS,
            registry=r,
            buckets=AGE_BUCKETS_MS,
        )
        self.dead_letter_errors = Counter(
            "squall_dead_letter_errors",
            "Failed async events that could not be sent to the dead-letter queue (DeadLetterErrors)",
            ["function_name"],
            registry=r,
        )
        self.destination_failures = Counter(
            "squall_destination_delivery_failures",
            "Records that could not be sent to a destination (DestinationDeliveryFailures)",
            ["function_name"],
            registry=r,
        )
        r.register(_Callbacks(self))
        self._children: dict[tuple[str, str], _Children] = {}
        self._series: dict[tuple[str, str, str], deque[Sample]] = {}
        self._lock = threading.Lock()

    # --- recording -------------------------------------------------------------------------------
    def __call__(self, config: FunctionConfig, request: InvokeRequest, result: InvokeResult) -> None:
        """The after-invoke hook: one invocation's counters, duration and cold start."""
        resource = resource_from_arn(request.invoked_arn)
        key = (config.name, resource)
        children = self._children.get(key)
        if children is None:
            children = self._children.setdefault(key, _Children(self, key))
        usage = result.usage
        children.invocations.inc()
        children.duration.observe(usage.duration_ms)
        failed = result.outcome != "success"
        if failed:
            children.errors.inc()
        if usage.cold:
            children.cold.inc()
            if usage.init_ms is not None:
                children.init.observe(usage.init_ms)
        # The usage records do not keep the qualifier a caller named: per-Resource figures come from here.
        self._add(INVOCATIONS, config.name, resource, usage.start, 1.0)
        self._add(DURATION, config.name, resource, usage.start, usage.duration_ms)
        if failed:
            self._add(ERRORS, config.name, resource, usage.start, 1.0)

    def throttled(self, function_name: str, qualifier: str | None = None) -> None:
        """An invoke request refused with 429 for want of concurrency."""
        resource = resource_of(function_name, qualifier)
        self.throttles.labels(function_name, resource).inc()
        self._add(THROTTLES, function_name, resource, time.time(), 1.0)

    def event_dispatched(self, function_name: str, qualifier: str | None, enqueued_at: float) -> None:
        """An async event leaves the queue for its function: its age then (AsyncEventAge)."""
        resource = resource_of(function_name, qualifier)
        now = time.time()
        age_ms = max(0.0, (now - enqueued_at) * 1000)
        self.async_event_age.labels(function_name, resource).observe(age_ms)
        self._add(ASYNC_EVENT_AGE, function_name, resource, now, age_ms)

    def dead_letter_failed(self, function_name: str) -> None:
        """A failed async event could not be sent to its dead-letter queue."""
        self.dead_letter_errors.labels(function_name).inc()
        self._add(DEAD_LETTER_ERRORS, function_name, function_name, time.time(), 1.0)

    def destination_failed(self, function: str) -> None:
        """A record could not be delivered to a destination of the function (its name or ARN)."""
        function_name = function.rsplit(":function:", 1)[-1].split(":", 1)[0] or "unknown"
        self.destination_failures.labels(function_name).inc()
        self._add(DESTINATION_DELIVERY_FAILURES, function_name, function_name, time.time(), 1.0)

    def sample_iterator_ages(self) -> None:
        """Record the current IteratorAge of every stream mapping as a sample (done when read)."""
        now = time.time()
        for name, resource, _mapping, age in self.iterator_ages():
            self._add(ITERATOR_AGE, name, resource, now, float(age))

    def _add(self, metric: str, function_name: str, resource: str, at: float, value: float) -> None:
        key = (metric, function_name, resource)
        series = self._series.get(key)
        if series is None:
            with self._lock:
                series = self._series.setdefault(key, deque(maxlen=SERIES_LIMIT))
        series.append(Sample(at, value))

    def attach(self, invoker: Invoker, dispatcher: AsyncDispatcher, destinations: Destinations) -> None:
        """Hook into the invoke path: after every invocation, and where throttles, async dispatches
        and failed deliveries happen; read in-flight invocations from the invoker."""
        invoker.hooks.append(self)
        invoker.on_throttle = self.throttled
        dispatcher.on_dispatch = self.event_dispatched
        destinations.on_delivery_failure = self.destination_failed
        destinations.on_dead_letter_error = self.dead_letter_failed
        running = invoker.running
        self.running = lambda: dict(running)  # every function invoked since start, 0 when idle

    # --- reading ---------------------------------------------------------------------------------
    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format."""
        self.sample_iterator_ages()
        return generate_latest(self.registry)

    def series(self, metric: str, function_name: str | None, resource: str | None) -> list[Sample]:
        """The in-memory samples of a metric for a function (or every function), and a resource
        (None: all the function's resources, the unqualified one included), oldest first."""
        out: list[Sample] = []
        for (name, fn, res), samples in list(self._series.items()):
            if name != metric or (function_name is not None and fn != function_name):
                continue
            if resource is not None and res != resource:
                continue
            out.extend(list(samples))
        out.sort(key=lambda s: s.at)
        return out

    def series_keys(self) -> list[tuple[str, str, str]]:
        """(metric, function, resource) of every in-memory series."""
        return sorted(self._series)


def stream_iterator_ages(mappings: MappingStore, streams: StreamMappings) -> IteratorAges:
    """The IteratorAge source of a platform: each stream mapping's last batch on this server."""

    def ages() -> Iterable[tuple[str, str, str, int]]:
        for mapping in mappings.all():
            age = streams.iterator_age_ms(mapping.uuid)
            if age is None:
                continue
            resource = mapping.function_arn.rsplit(":function:", 1)[-1]
            yield resource.split(":", 1)[0], resource, mapping.uuid, age

    return ages
