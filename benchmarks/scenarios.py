"""The measured scenarios. Each returns a JSON-able dict of summaries (ms) and raw samples.

Clocks: ``time.perf_counter_ns`` around exactly the operation named; requests are signed before
the clock starts, and log tails are decoded after it stops.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import httpload
from benchmarks.harness import (
    HANDLER,
    PLAIN_SOURCE,
    ROLE,
    RUNTIME,
    BenchError,
    ServerProcess,
    SignedConnection,
    build_zip,
    create_function,
    free_port,
    parse_report,
)
from benchmarks.stats import Summary

Progress = Callable[[str], None]
BODY = b"{}"
WARM_AFTER_COLD = 5


def _ms_since(start_ns: int) -> float:
    return (time.perf_counter_ns() - start_ns) / 1e6


def _raw(values: list[float]) -> list[float]:
    return [round(v, 4) for v in values]


def cold_starts(
    server: ServerProcess, lam: Any, variant: str, source: str, samples: int, warmup: int, progress: Progress
) -> dict[str, Any]:
    """First invoke of a brand-new function (unique code each time), then a few warm ones.

    Per sample: client-observed cold latency, the REPORT line's Init Duration and Duration, the
    median of ``WARM_AFTER_COLD`` warm invokes of the same function, and cold minus that warm.
    """
    conn = SignedConnection("127.0.0.1", server.port, server.credentials())
    series: dict[str, list[float]] = {
        key: [] for key in ("cold_ms", "init_ms", "cold_duration_ms", "warm_ms", "penalty_ms", "create_ms")
    }
    try:
        for index in range(warmup + samples):
            name = f"bench-cold-{variant}-{index}-{uuid.uuid4().hex[:8]}"
            package = build_zip(source, salt=name)
            start = time.perf_counter_ns()
            create_function(lam, name, package)
            create_ms = _ms_since(start)
            headers = conn.sign(name, BODY, tail=True)
            start = time.perf_counter_ns()
            reply = conn.invoke_ok(name, BODY, headers)
            cold_ms = _ms_since(start)
            report = parse_report(reply.log)
            if "Init Duration" not in report:
                raise BenchError(f"the first invoke of {name} reported no Init Duration:\n{reply.log}")
            warm: list[float] = []
            for _ in range(WARM_AFTER_COLD):
                headers = conn.sign(name, BODY)
                start = time.perf_counter_ns()
                conn.invoke_ok(name, BODY, headers)
                warm.append(_ms_since(start))
            lam.delete_function(FunctionName=name)
            if index < warmup:
                continue
            warm_ms = statistics.median(warm)
            for key, value in (
                ("cold_ms", cold_ms),
                ("init_ms", report["Init Duration"]),
                ("cold_duration_ms", report.get("Duration", float("nan"))),
                ("warm_ms", warm_ms),
                ("penalty_ms", cold_ms - warm_ms),
                ("create_ms", create_ms),
            ):
                series[key].append(value)
            done = index - warmup + 1
            if done == samples or done % 5 == 0:
                init = report["Init Duration"]
                progress(f"  cold/{variant}: {done}/{samples} (last {cold_ms:.1f} ms, init {init:.2f} ms)")
    finally:
        conn.close()
    return {
        "samples": samples,
        "warmup": warmup,
        **{key: Summary.of(values).as_dict() for key, values in series.items()},
        "raw": {key: _raw(values) for key, values in series.items()},
    }


def warm_http(server: ServerProcess, name: str, calls: int, warmup: int) -> dict[str, Any]:
    """Sequential invokes over one keep-alive connection, each freshly signed before the clock starts.

    ``overhead_ms`` pairs each request's latency with its own REPORT ``Duration`` (which Squall
    measures around the sandbox round trip), so it is what the HTTP API and the invoke path add.
    """
    conn = SignedConnection("127.0.0.1", server.port, server.credentials())
    latency: list[float] = []
    duration: list[float] = []
    try:
        for _ in range(warmup):
            conn.invoke_ok(name, BODY, conn.sign(name, BODY, tail=True))
        for _ in range(calls):
            headers = conn.sign(name, BODY, tail=True)
            start = time.perf_counter_ns()
            reply = conn.invoke_ok(name, BODY, headers)
            latency.append(_ms_since(start))
            duration.append(parse_report(reply.log).get("Duration", float("nan")))
    finally:
        conn.close()
    overhead = [total - inside for total, inside in zip(latency, duration, strict=True)]
    return {
        "calls": calls,
        "warmup": warmup,
        "latency_ms": Summary.of(latency).as_dict(),
        "report_duration_ms": Summary.of(duration).as_dict(),
        "overhead_ms": Summary.of(overhead).as_dict(),
        "raw_latency_ms": _raw(latency),
    }


def warm_boto3(lam: Any, name: str, calls: int, warmup: int) -> dict[str, Any]:
    """The same warm invoke through boto3's ``invoke`` (client-side work included), for reference."""
    latency: list[float] = []
    for index in range(warmup + calls):
        start = time.perf_counter_ns()
        response = lam.invoke(FunctionName=name, Payload=BODY)
        response["Payload"].read()
        elapsed = _ms_since(start)
        if response.get("FunctionError"):
            raise BenchError(f"boto3 invoke of {name} failed: {response['FunctionError']}")
        if index >= warmup:
            latency.append(elapsed)
    return {"calls": calls, "warmup": warmup, "latency_ms": Summary.of(latency).as_dict()}


def throughput(server: ServerProcess, name: str, clients: int, seconds: int, warmup_s: float) -> dict[str, Any]:
    """``clients`` keep-alive connections invoking back to back, counted in one-second windows after
    ``warmup_s`` (which lets Squall start a sandbox per client).

    The client is the asyncio load generator of the HTTP scenarios (``httpload``), sending one
    SigV4-signed Invoke (valid for the whole run): a client must not spend the two cores' time the
    server is measured on (8 ``http.client`` threads took ~170 us of CPU per call). Only answers
    carrying the handler's own result count.
    """
    request = signed_invoke(server, name)
    run = httpload.load_request("127.0.0.1", server.port, request, clients, seconds, warmup_s, expect=b'"ok": true')
    if run["errors"] and not run["latency_ms"]["n"]:
        raise BenchError(f"throughput: no invoke succeeded: {run['first_errors'][:1]}")
    return {
        "clients": clients,
        "seconds": seconds,
        "warmup_s": warmup_s,
        "client": "httpload (asyncio, one signed Invoke per connection)",
        "invokes_per_s": run["requests_per_s"],
        "windows": run["windows"],
        "latency_ms": run["latency_ms"],
        "errors": run["errors"],
        "first_errors": run["first_errors"],
    }


def signed_invoke(server: ServerProcess, name: str, body: bytes = BODY) -> bytes:
    """The raw HTTP/1.1 request of one SigV4-signed Invoke of ``name`` (valid for the signature's 5 minutes)."""
    headers = SignedConnection("127.0.0.1", server.port, server.credentials()).sign(name, body)
    head = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    return (
        f"POST {SignedConnection.path(name)} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{head}"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    ).encode() + body


def in_process(calls: int, warmup: int, progress: Progress) -> dict[str, Any]:
    """Warm invokes through ``Platform.invoke`` in this process: the invoke path without HTTP."""
    try:
        import uvloop

        return uvloop.run(_in_process(calls, warmup, progress))
    except ImportError:
        return asyncio.run(_in_process(calls, warmup, progress))


async def _in_process(calls: int, warmup: int, progress: Progress) -> dict[str, Any]:
    from squall.config import Settings
    from squall.models import FunctionConfig
    from squall.platform import Platform

    name = "bench-inprocess"
    with tempfile.TemporaryDirectory(prefix="squall-bench-inproc-") as tmp:
        settings = Settings.load(data_dir=Path(tmp) / "data", port=free_port(), shutdown_grace_s=2.0)
        platform = Platform.build(settings, "SQUALLBENCHKEY", "squall-bench-secret")
        start = time.perf_counter_ns()
        await platform.start()
        start_ms = _ms_since(start)
        progress(f"  in-process platform started in {start_ms:.0f} ms")
        try:
            config = FunctionConfig(name=name, runtime=RUNTIME, role=ROLE, handler=HANDLER, code_sha256="", code_size=0)
            await platform.create_function(config, build_zip(PLAIN_SOURCE), False)
            await _wait_active(platform, name)
            start = time.perf_counter_ns()
            first = await platform.invoke(name, None, BODY, log_type="Tail")
            cold_ms = _ms_since(start)
            for _ in range(warmup):
                await platform.invoke(name, None, BODY)
            latency: list[float] = []
            overhead: list[float] = []
            for _ in range(calls):
                start = time.perf_counter_ns()
                outcome = await platform.invoke(name, None, BODY, log_type="Tail")
                elapsed = _ms_since(start)
                if outcome.status_code != 200 or outcome.function_error:
                    raise BenchError(f"in-process invoke failed: {outcome.payload[:300]!r}")
                latency.append(elapsed)
                tail = _decode(outcome.log_result)
                overhead.append(elapsed - parse_report(tail).get("Duration", float("nan")))
        finally:
            await platform.stop()
    return {
        "calls": calls,
        "warmup": warmup,
        "platform_start_ms": round(start_ms, 3),
        "first_invoke_ms": round(cold_ms, 3),
        "first_init_ms": parse_report(_decode(first.log_result)).get("Init Duration"),
        "latency_ms": Summary.of(latency).as_dict(),
        "overhead_ms": Summary.of(overhead).as_dict(),
    }


def _decode(log_result: str | None) -> str:
    import base64

    return base64.b64decode(log_result).decode(errors="replace") if log_result else ""


async def _wait_active(platform: Any, name: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        config = await platform.get_function(name)
        if config.state == "Active":
            return
        if config.state == "Failed" or time.monotonic() > deadline:
            raise BenchError(f"{name} did not become Active: {config.state} {config.state_reason}")
        await asyncio.sleep(0.01)
