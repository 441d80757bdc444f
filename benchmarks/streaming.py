"""Streamed responses, measured side by side (``python -m benchmarks.streaming``).

1. Time to first chunk against the total for a Node function streaming 10 chunks 100 ms apart,
   read with boto3's ``invoke_with_response_stream``.
2. Warm latency of the same small Node handler (``streamifyResponse``, one write) through
   InvokeWithResponseStream and through plain Invoke (which gathers the stream), p50 and p99.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from benchmarks.harness import ROLE, ServerProcess

HANDLERS = """
export const ten = awslambda.streamifyResponse(async (event, stream) => {
  for (let i = 0; i < 10; i++) {
    stream.write(`chunk ${i}\\n`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  stream.end();
});
export const one = awslambda.streamifyResponse(async (event, stream) => {
  stream.end('{"ok":true}');
});
"""


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.mjs", HANDLERS)
    return buffer.getvalue()


def _create(lam: Any, name: str, handler: str) -> None:
    lam.create_function(
        FunctionName=name, Runtime="nodejs20.x", Role=ROLE, Handler=handler, Code={"ZipFile": _zip()}, Timeout=30
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 600})


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def first_chunk(lam: Any, runs: int) -> list[tuple[float, float]]:
    """(time to first chunk, total) in ms, per warm run."""
    results = []
    lam.invoke(FunctionName="bench-stream-ten")  # cold start out of the way
    for _ in range(runs):
        began = time.perf_counter()
        response = lam.invoke_with_response_stream(FunctionName="bench-stream-ten", Payload=b"{}")
        first = None
        for event in response["EventStream"]:
            if "PayloadChunk" in event and first is None:
                first = time.perf_counter() - began
        assert first is not None
        results.append((first * 1000, (time.perf_counter() - began) * 1000))
    return results


def side_by_side(lam: Any, runs: int) -> dict[str, list[float]]:
    """Warm round trips (ms) of the one-write handler through both operations, interleaved."""
    times: dict[str, list[float]] = {"InvokeWithResponseStream": [], "Invoke": []}
    lam.invoke(FunctionName="bench-stream-one")
    for _ in range(runs):
        began = time.perf_counter()
        for _event in lam.invoke_with_response_stream(FunctionName="bench-stream-one", Payload=b"{}")["EventStream"]:
            pass
        times["InvokeWithResponseStream"].append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        lam.invoke(FunctionName="bench-stream-one", Payload=b"{}")["Payload"].read()
        times["Invoke"].append((time.perf_counter() - began) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200, help="warm invocations per operation")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "data")
        server.start()
        try:
            lam = server.lambda_client()
            _create(lam, "bench-stream-ten", "app.ten")
            _create(lam, "bench-stream-one", "app.one")
            runs = first_chunk(lam, 5)
            firsts, totals = [f for f, _ in runs], [t for _, t in runs]
            print(
                f"10 chunks 100 ms apart: first chunk {statistics.median(firsts):.1f} ms, "
                f"total {statistics.median(totals):.1f} ms (median of {len(runs)})"
            )
            for operation, values in side_by_side(lam, args.runs).items():
                print(f"{operation:>25}: p50 {_percentile(values, 0.5):.2f} ms, p99 {_percentile(values, 0.99):.2f} ms")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
