"""The metrics hook and counters, and the CloudWatch arithmetic over their series and usage records."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from squall.invoke.destinations import Destinations
from squall.metering.metrics import Metrics, resource_from_arn
from squall.models import FunctionConfig, InvokeRequest, InvokeResult, Usage, UsageRecord
from squall.services.cloudwatch.errors import InvalidParameterCombination
from squall.services.cloudwatch.service import CloudWatchService, MetricQuery, concurrency_samples, statistic
from squall.stores.sqlite import SqliteMetadataStore

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"


def config(name: str = "fn") -> FunctionConfig:
    return FunctionConfig(
        name=name, runtime="python3.11", role="r", handler="app.handler", code_size=1, code_sha256="x"
    )


def invocation(
    qualifier: str = "", *, error: str | None = None, cold: bool = False, ms: float = 12.0, at: float = 0.0
) -> tuple[InvokeRequest, InvokeResult]:
    arn = f"{ARN}fn" + (f":{qualifier}" if qualifier else "")
    request = InvokeRequest(request_id="r", payload=b"{}", invoked_arn=arn)
    usage = Usage(
        start=at or time.time(),
        duration_ms=ms,
        billed_ms=int(ms) + 1,
        memory_mb=128,
        max_memory_mb=40,
        cold=cold,
        init_ms=80.0 if cold else None,
    )
    result = InvokeResult(
        request_id="r", payload=b"{}", function_error=error, error_type=None, log=b"", log_stream="s", usage=usage
    )
    return request, result


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_hook_counts_per_resource_and_owns_its_registry() -> None:
    metrics = Metrics()
    metrics(config(), *invocation(cold=True))
    metrics(config(), *invocation(error="Unhandled"))
    metrics(config(), *invocation("live"))
    figures = samples(metrics)
    plain = (("function_name", "fn"), ("resource", "fn"))
    alias = (("function_name", "fn"), ("resource", "fn:live"))
    assert figures[("squall_invocations_total", plain)] == 2
    assert figures[("squall_invocations_total", alias)] == 1
    assert figures[("squall_errors_total", plain)] == 1
    assert figures[("squall_cold_starts_total", plain)] == 1
    assert figures[("squall_init_duration_milliseconds_sum", plain)] == 80.0
    assert figures[("squall_duration_milliseconds_count", alias)] == 1
    # Two platforms never share figures, and the process-wide default registry stays untouched.
    assert samples(Metrics()).get(("squall_invocations_total", plain)) is None
    assert REGISTRY.get_sample_value("squall_invocations_total", {"function_name": "fn", "resource": "fn"}) is None


def test_resource_of_an_invoked_arn() -> None:
    assert resource_from_arn(f"{ARN}fn") == "fn"
    assert resource_from_arn(f"{ARN}fn:7") == "fn:7"


def test_failed_destinations_are_counted_per_function() -> None:
    async def scenario() -> bool:
        async def never(name: str, qualifier: str | None, payload: bytes) -> None:
            raise AssertionError("no function destination here")

        destinations = Destinations(never)
        metrics = Metrics()
        destinations.on_delivery_failure = metrics.destination_failed
        record = {"requestContext": {"requestId": "r1", "functionArn": f"{ARN}fn:$LATEST"}}
        delivered = await destinations.send("arn:aws:events:us-east-1:000000000000:event-bus/default", record)
        assert samples(metrics)[("squall_destination_delivery_failures_total", (("function_name", "fn"),))] == 1
        assert [s.value for s in metrics.series("DestinationDeliveryFailures", "fn", None)] == [1.0]
        return delivered

    assert asyncio.run(scenario()) is False


def test_throttles_and_async_ages_keep_series() -> None:
    metrics = Metrics()
    metrics.throttled("fn", None)
    metrics.throttled("fn", "live")
    metrics.event_dispatched("fn", None, time.time() - 2.5)
    assert len(metrics.series("Throttles", "fn", None)) == 2
    assert len(metrics.series("Throttles", "fn", "fn:live")) == 1
    (age,) = metrics.series("AsyncEventAge", "fn", "fn")
    assert 2500 <= age.value < 3500


def test_statistics_are_exact() -> None:
    values = [float(v) for v in range(1, 101)]
    assert statistic("SampleCount", values) == 100
    assert statistic("Sum", values) == 5050
    assert statistic("Average", values) == 50.5
    assert (statistic("Minimum", values), statistic("Maximum", values)) == (1, 100)
    assert statistic("p99", values) == 99
    assert statistic("p50", values) == 50


def record(start: float, ms: float, outcome: str = "success") -> UsageRecord:
    return UsageRecord(
        function_name="fn",
        version="$LATEST",
        request_id=f"{start}",
        start=start,
        duration_ms=ms,
        billed_ms=int(ms),
        memory_mb=128,
        gb_seconds=0.0,
        max_memory_mb=40,
        cold=False,
        init_ms=None,
        outcome=outcome,
        trigger="api",
    )


def test_concurrency_is_counted_at_each_start() -> None:
    # Three overlapping invocations, then one alone.
    records = [record(0.0, 1000), record(0.2, 1000), record(0.5, 100), record(5.0, 10)]
    assert [s.value for s in concurrency_samples(records)] == [1, 2, 3, 1]


def test_get_metric_statistics_from_usage_records(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "squall.db")
    base = 1_700_000_040.0  # a minute boundary
    store.add_usage([record(base + 1, 10), record(base + 2, 30, "error"), record(base + 61, 20)])
    service = CloudWatchService(store, Metrics())
    query = MetricQuery("Duration", {"FunctionName": "fn"})

    async def stats() -> list[dict[str, object]]:
        return await service.get_metric_statistics(query, base, base + 120, 60, ["Sum", "Maximum"], ["p50"], None)

    points = asyncio.run(stats())
    assert [(p["Timestamp"], p["Sum"], p["Maximum"]) for p in points] == [(base, 40.0, 30.0), (base + 60, 20.0, 20.0)]
    assert points[0]["ExtendedStatistics"] == {"p50": 10.0}
    errors = asyncio.run(
        service.get_metric_statistics(
            MetricQuery("Errors", {"FunctionName": "fn"}), base, base + 120, 120, ["Sum"], [], None
        )
    )
    assert [p["Sum"] for p in errors] == [1.0]
    with pytest.raises(InvalidParameterCombination, match="exceeds the limit of 1440"):
        asyncio.run(service.get_metric_statistics(query, base, base + 1441, 1, ["Sum"], [], None))
    store.close()


def test_dimensions_lambda_does_not_publish_have_no_data(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "squall.db")
    store.add_usage([record(time.time() - 10, 10)])
    service = CloudWatchService(store, Metrics())
    assert len(asyncio.run(service.samples(MetricQuery("Invocations", {"FunctionName": "fn"}), 0, time.time()))) == 1
    assert asyncio.run(service.samples(MetricQuery("Invocations", {"InstanceId": "i-1"}), 0, time.time())) == []
    assert asyncio.run(service.samples(MetricQuery("Invocations", {}, "AWS/EC2"), 0, time.time())) == []
    store.close()
