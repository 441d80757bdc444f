"""Metrics after real invocations: the Prometheus endpoint, the usage records and CloudWatch agree."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from squall.stores.sqlite import SqliteMetadataStore
from tests.conftest import function_zip

from .conftest import SquallServer, error_of
from .test_cli import DOCS, code_blocks

pytestmark = pytest.mark.e2e


def scrape(server: SquallServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the metrics endpoint, by (sample name, sorted labels)."""
    with urllib.request.urlopen(f"{server.url}/_squall/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def usage_of(server: SquallServer, name: str, count: int) -> list[Any]:
    """The function's usage records, once ``count`` of them are written."""
    store = SqliteMetadataStore(server.data_dir / "squall.db")
    try:
        deadline = time.monotonic() + 10
        while True:
            records = store.usage(function_name=name)
            if len(records) >= count or time.monotonic() > deadline:
                return records
            time.sleep(0.05)
    finally:
        store.close()


def labels(name: str, resource: str | None = None) -> tuple[tuple[str, str], ...]:
    return (("function_name", name), ("resource", resource or name))


def test_metrics_agree_with_usage_records_and_cloudwatch(squall: SquallServer, lam: Any, make_function: Any) -> None:
    make_function("metrics-fn", function_zip("probe", "app"), MemorySize=256)
    make_function("metrics-throttled", function_zip("probe", "app"))
    lam.put_function_concurrency(FunctionName="metrics-throttled", ReservedConcurrentExecutions=0)
    started = datetime.now(UTC)
    for _ in range(3):
        lam.invoke(FunctionName="metrics-fn", Payload=b'{"action": "echo"}')
    for _ in range(2):
        response = lam.invoke(FunctionName="metrics-fn", Payload=b'{"action": "raise"}')
        assert response["FunctionError"] == "Unhandled"
    code, _, status, _ = error_of(lam.invoke, FunctionName="metrics-throttled", Payload=b"{}")
    assert (code, status) == ("TooManyRequestsException", 429)

    records = usage_of(squall, "metrics-fn", 5)
    assert len(records) == 5
    errors = sum(r.outcome != "success" for r in records)
    colds = sum(r.cold for r in records)
    assert (errors, colds) == (2, 1)

    samples = scrape(squall)
    fn = labels("metrics-fn")
    assert samples[("squall_invocations_total", fn)] == 5
    assert samples[("squall_errors_total", fn)] == errors
    assert samples[("squall_cold_starts_total", fn)] == colds
    assert samples[("squall_duration_milliseconds_count", fn)] == 5
    assert samples[("squall_duration_milliseconds_sum", fn)] == pytest.approx(sum(r.duration_ms for r in records))
    assert samples[("squall_init_duration_milliseconds_count", fn)] == 1
    assert samples[("squall_throttles_total", labels("metrics-throttled"))] == 1
    assert ("squall_invocations_total", labels("metrics-throttled")) not in samples
    assert samples[("squall_concurrent_executions", (("function_name", "metrics-fn"),))] == 0

    cw = squall.client("cloudwatch")
    window: dict[str, Any] = {
        "Namespace": "AWS/Lambda",
        "StartTime": started - timedelta(minutes=5),
        "EndTime": datetime.now(UTC) + timedelta(minutes=1),
        "Period": 3600,
    }
    by_function = [{"Name": "FunctionName", "Value": "metrics-fn"}]

    def stats(metric: str, dimensions: list[dict[str, str]], *statistics: str) -> dict[str, float]:
        points = cw.get_metric_statistics(
            MetricName=metric, Dimensions=dimensions, Statistics=list(statistics), **window
        )["Datapoints"]
        return {s: sum(p[s] for p in points) for s in statistics} if points else {}

    assert stats("Invocations", by_function, "Sum") == {"Sum": 5}
    assert stats("Errors", by_function, "Sum") == {"Sum": errors}
    duration = stats("Duration", by_function, "SampleCount", "Sum")
    assert duration["SampleCount"] == 5
    assert duration["Sum"] == pytest.approx(sum(r.duration_ms for r in records))
    assert stats("Throttles", [{"Name": "FunctionName", "Value": "metrics-throttled"}], "Sum") == {"Sum": 1}
    assert stats("Invocations", [{"Name": "FunctionName", "Value": "metrics-throttled"}], "Sum") == {}

    # The two invocations agree across the Resource dimension (in memory) and FunctionName (durable).
    resource = [{"Name": "FunctionName", "Value": "metrics-fn"}, {"Name": "Resource", "Value": "metrics-fn"}]
    assert stats("Invocations", resource, "Sum") == {"Sum": 5}

    data = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "p99",
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Duration", "Dimensions": by_function},
                    "Period": 3600,
                    "Stat": "p99",
                },
            },
            {
                "Id": "invocations",
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Invocations", "Dimensions": by_function},
                    "Period": 3600,
                    "Stat": "Sum",
                },
            },
        ],
        StartTime=window["StartTime"],
        EndTime=window["EndTime"],
    )
    results = {r["Id"]: r for r in data["MetricDataResults"]}
    assert sum(results["invocations"]["Values"]) == 5
    assert results["invocations"]["StatusCode"] == "Complete"
    assert results["invocations"]["Label"] == "Invocations"
    assert max(results["p99"]["Values"]) == pytest.approx(max(r.duration_ms for r in records))
    assert all(isinstance(t, datetime) for t in results["p99"]["Timestamps"])

    listed = cw.list_metrics(Namespace="AWS/Lambda", Dimensions=[{"Name": "FunctionName", "Value": "metrics-fn"}])
    names = {m["MetricName"] for m in listed["Metrics"]}
    assert {"Invocations", "Errors", "Duration", "ConcurrentExecutions"} <= names


def test_cloudwatch_errors_have_cloudwatch_codes(squall: SquallServer) -> None:
    cw = squall.client("cloudwatch")
    now = datetime.now(UTC)
    base = {"Namespace": "AWS/Lambda", "MetricName": "Invocations", "EndTime": now}
    code, message, status, _ = error_of(
        cw.get_metric_statistics, StartTime=now - timedelta(days=2), Period=60, Statistics=["Sum"], **base
    )
    assert (code, status) == ("InvalidParameterCombination", 400)
    assert message == (
        "You have requested up to 2880 datapoints, which exceeds the limit of 1440. "
        "You may reduce the datapoints requested by increasing Period, or decreasing the time range."
    )
    code, _, status, _ = error_of(cw.get_metric_statistics, StartTime=now - timedelta(hours=1), Period=60, **base)
    assert (code, status) == ("InvalidParameterCombination", 400)
    code, _, _, _ = error_of(
        cw.get_metric_statistics, StartTime=now - timedelta(hours=1), Period=60, ExtendedStatistics=["median"], **base
    )
    assert code == "InvalidParameterValue"
    # A namespace Squall does not publish: no data, not an error.
    other = cw.get_metric_statistics(
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        StartTime=now - timedelta(hours=1),
        EndTime=now,
        Period=60,
        Statistics=["Average"],
    )
    assert other["Datapoints"] == []


def test_async_event_age_is_recorded(squall: SquallServer, lam: Any, make_function: Any) -> None:
    make_function("metrics-async", function_zip("probe", "app"))
    lam.invoke(FunctionName="metrics-async", InvocationType="Event", Payload=json.dumps({"action": "echo"}).encode())
    deadline = time.monotonic() + 15
    key = ("squall_async_event_age_milliseconds_count", labels("metrics-async"))
    while scrape(squall).get(key, 0) < 1:
        assert time.monotonic() < deadline, "the async event was never dispatched"
        time.sleep(0.1)
    cw = squall.client("cloudwatch")
    points = cw.get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="AsyncEventAge",
        Dimensions=[{"Name": "FunctionName", "Value": "metrics-async"}],
        StartTime=datetime.now(UTC) - timedelta(minutes=10),
        EndTime=datetime.now(UTC) + timedelta(minutes=1),
        Period=600,
        Statistics=["SampleCount", "Minimum"],
    )["Datapoints"]
    assert sum(p["SampleCount"] for p in points) == 1
    assert points[0]["Minimum"] >= 0 and points[0]["Unit"] == "Milliseconds"


@pytest.mark.slow
def test_observability_doc_examples_run(squall: SquallServer, lam: Any) -> None:
    """docs/observability.md: the boto3 session prints what it promises; every command line runs."""
    blocks = code_blocks((DOCS / "observability.md").read_text())
    python = [code for language, code in blocks if language == "python"]
    assert len(python) == 1
    env = {**squall.cli_env(), "SQUALL_PORT": str(squall.port)}
    result = subprocess.run(
        [sys.executable, "-c", python[0].replace("http://127.0.0.1:8990", squall.url)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Invocations: 3.0"]
    try:
        commands = [
            line.split("  #")[0].strip()
            for language, code in blocks
            if language == ""
            for line in code.splitlines()
            if line.strip()
        ]
        assert any(c.startswith("curl") for c in commands) and any(c.startswith("squall top") for c in commands)
        bin_dir = Path(sys.executable).parent
        for command in commands:
            if "--follow" in command or (command.startswith("squall top") and "--once" not in command):
                continue  # these run until Ctrl-C
            command = command.replace("http://127.0.0.1:8990", squall.url)
            if command.startswith(("squall cost", "squall logs")):
                command += f" --data-dir {squall.data_dir}"
            if command.startswith("squall"):
                command = f"{bin_dir}/{command}"
            ran = subprocess.run(command, shell=True, capture_output=True, text=True, env=env, timeout=60)
            assert ran.returncode == 0, f"{command}: {ran.stderr}"
            if command.startswith("curl"):
                assert 'squall_invocations_total{function_name="observed",resource="observed"} 3.0' in ran.stdout
    finally:
        lam.delete_function(FunctionName="observed")


def test_iterator_age_of_a_stream_mapping(squall: SquallServer, lam: Any, make_function: Any) -> None:
    kinesis = squall.client("kinesis")
    kinesis.create_stream(StreamName="metrics-src", ShardCount=1)
    source = kinesis.describe_stream_summary(StreamName="metrics-src")["StreamDescriptionSummary"]["StreamARN"]
    make_function("metrics-stream", function_zip("probe", "app"))
    kinesis.put_record(StreamName="metrics-src", Data=b'{"action": "echo"}', PartitionKey="k")
    mapping = lam.create_event_source_mapping(
        EventSourceArn=source, FunctionName="metrics-stream", StartingPosition="TRIM_HORIZON"
    )
    try:
        key = ("squall_iterator_age_milliseconds", (("function_name", "metrics-stream"), ("mapping", mapping["UUID"])))
        deadline = time.monotonic() + 30
        while True:
            found = {
                (name, tuple(p for p in labels if p[0] != "resource")): value
                for (name, labels), value in scrape(squall).items()
            }
            if key in found:
                break
            assert time.monotonic() < deadline, "no IteratorAge after the first batch"
            time.sleep(0.2)
        assert found[key] >= 0
        points = squall.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName="IteratorAge",
            Dimensions=[{"Name": "FunctionName", "Value": "metrics-stream"}],
            StartTime=datetime.now(UTC) - timedelta(minutes=10),
            EndTime=datetime.now(UTC) + timedelta(minutes=1),
            Period=600,
            Statistics=["Maximum", "SampleCount"],
        )["Datapoints"]
        assert sum(p["SampleCount"] for p in points) >= 1
        assert all(p["Unit"] == "Milliseconds" for p in points)
    finally:
        lam.delete_event_source_mapping(UUID=mapping["UUID"])
