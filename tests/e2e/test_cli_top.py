"""``squall top --once`` against a live server, and ``squall logs --filter / --since``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from squall.cli.top import parse, quantile
from tests.conftest import function_zip

from .conftest import SquallServer, error_of

pytestmark = pytest.mark.e2e


def squall_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "squall", *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def cells(output: str, name: str) -> list[str]:
    """The cells of the table row that starts with ``name``."""
    for line in output.splitlines():
        parts = [p.strip() for p in line.replace("┃", "│").strip("│ ").split("│")]
        if parts and parts[0] == name:
            return parts
    raise AssertionError(f"no row for {name} in:\n{output}")


def test_top_once_shows_every_function(squall: SquallServer, lam: Any, make_function: Any) -> None:
    make_function("top-fn", function_zip("probe", "app"))
    make_function("top-throttled", function_zip("probe", "app"))
    lam.put_function_concurrency(FunctionName="top-throttled", ReservedConcurrentExecutions=0)
    for _ in range(4):
        lam.invoke(FunctionName="top-fn", Payload=b'{"action": "echo"}')
    lam.invoke(FunctionName="top-fn", Payload=b'{"action": "raise"}')
    error_of(lam.invoke, FunctionName="top-throttled", Payload=b"{}")

    result = squall_cli("top", "--once", "--interval", "0.5", "--endpoint", squall.url)
    assert result.returncode == 0, result.stderr
    header = cells(result.stdout, "FUNCTION")
    row = dict(zip(header, cells(result.stdout, "top-fn"), strict=True))
    assert row["INVOCATIONS"] == "5"
    assert (row["WARM"], row["COLD"], row["ERRORS"], row["THROTTLES"]) == ("4", "1", "1", "0")
    assert row["CONC"] == "0"
    assert float(row["P50 MS"]) > 0 and float(row["P99 MS"]) >= float(row["P50 MS"])
    throttled = dict(zip(header, cells(result.stdout, "top-throttled"), strict=True))
    assert (throttled["INVOCATIONS"], throttled["THROTTLES"]) == ("0", "1")


def test_top_reports_a_server_that_is_not_there() -> None:
    result = squall_cli("top", "--once", "--endpoint", "http://127.0.0.1:9")
    assert result.returncode != 0
    assert "Cannot read metrics" in result.stderr


def test_top_help() -> None:
    result = squall_cli("top", "--help")
    assert result.returncode == 0
    assert "--once" in result.stdout and "--endpoint" in result.stdout


def test_quantiles_from_buckets() -> None:
    text = "\n".join(
        [
            "# TYPE squall_duration_milliseconds histogram",
            'squall_duration_milliseconds_bucket{function_name="f",resource="f",le="10.0"} 50.0',
            'squall_duration_milliseconds_bucket{function_name="f",resource="f",le="20.0"} 100.0',
            'squall_duration_milliseconds_bucket{function_name="f",resource="f",le="+Inf"} 100.0',
            'squall_duration_milliseconds_count{function_name="f",resource="f"} 100.0',
            'squall_duration_milliseconds_sum{function_name="f",resource="f"} 1000.0',
            "",
        ]
    )
    buckets = parse(text)["f"].buckets
    assert quantile(0.5, buckets) == 10.0  # the 50th value is the last of the first bucket
    assert quantile(0.99, buckets) == pytest.approx(19.8)  # 49 of the 50 values into (10, 20]
    assert quantile(0.5, {}) is None


def test_logs_filter_and_since(squall: SquallServer, lam: Any, make_function: Any) -> None:
    make_function("top-logs", function_zip("probe", "app"))
    for text in ("alpha ZERR one", "beta ZWARN two", "gamma ZERR ZDBG three"):
        lam.invoke(FunctionName="top-logs", Payload=json.dumps({"action": "print", "text": text}).encode())
    data = ["--data-dir", str(squall.data_dir)]
    deadline = time.monotonic() + 10
    while "gamma" not in squall_cli("logs", "top-logs", *data).stdout:
        assert time.monotonic() < deadline, "the log lines were never written"
        time.sleep(0.1)

    errors = squall_cli("logs", "top-logs", "--filter", "ZERR -ZDBG", *data).stdout.splitlines()
    assert errors == ["alpha ZERR one"]
    either = squall_cli("logs", "top-logs", "--filter", "?ZWARN ?ZDBG", *data).stdout.splitlines()
    assert either == ["beta ZWARN two", "gamma ZERR ZDBG three"]
    phrase = squall_cli("logs", "top-logs", "--filter", '"ZWARN two"', *data).stdout.splitlines()
    assert phrase == ["beta ZWARN two"]

    recent = squall_cli("logs", "top-logs", "--since", "10m", "--filter", "ZERR", *data).stdout.splitlines()
    assert recent == ["alpha ZERR one", "gamma ZERR ZDBG three"]
    future = datetime.fromtimestamp(time.time() + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert squall_cli("logs", "top-logs", "--since", future, *data).stdout == ""

    bad = squall_cli("logs", "top-logs", "--since", "yesterday-ish", *data)
    assert bad.returncode == 2 and "--since" in bad.stderr
    bad = squall_cli("logs", "top-logs", "--filter", "{ $.level = 1 }", *data)
    assert bad.returncode == 2 and "--filter" in bad.stderr
