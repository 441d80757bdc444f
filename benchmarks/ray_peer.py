"""Ray, the peer for parallel Python work: a no-op task and an actor method call, each a round trip
(``ray.get`` of one call at a time), in a local ``ray.init()``.

``run`` starts this file with the interpreter of Ray's venv (``benchmarks/.peers/ray``) in a
subprocess, which prints one JSON document of raw samples; this module imports nothing outside
the standard library at the top so that it runs there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _noop() -> int:
    return 1


class _Counter:
    def __init__(self) -> None:
        self.calls = 0

    def bump(self) -> int:
        self.calls += 1
        return self.calls


def _measure(calls: int, warmup: int) -> dict[str, Any]:
    import ray  # type: ignore[import-not-found]  # only in the peer's venv

    began = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    init_s = time.perf_counter() - began
    noop = ray.remote(_noop)
    counter = ray.remote(_Counter)

    task: list[float] = []
    ran = 0
    for index in range(warmup + calls):
        start = time.perf_counter_ns()
        ran += ray.get(noop.remote())
        if index >= warmup:
            task.append((time.perf_counter_ns() - start) / 1e6)
    actor = counter.remote()
    ray.get(actor.bump.remote())
    method: list[float] = []
    last = 0
    for index in range(warmup + calls):
        start = time.perf_counter_ns()
        last = ray.get(actor.bump.remote())
        if index >= warmup:
            method.append((time.perf_counter_ns() - start) / 1e6)
    ray.shutdown()
    return {
        "ray_version": ray.__version__,
        "init_s": init_s,
        "task_ms": task,
        "actor_ms": method,
        "tasks_ran": ran,
        "actor_calls_counted": last,
    }


def run(python: Path, calls: int, warmup: int, timeout_s: float = 600.0) -> dict[str, Any]:
    """Run the measurement in Ray's venv; returns its raw samples (ms). Raises on failure."""
    with tempfile.TemporaryDirectory(prefix="squall-bench-ray-") as tmp:
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "TMPDIR": tmp}
        out = subprocess.run(
            [str(python), "-s", os.path.abspath(__file__), str(calls), str(warmup)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    if out.returncode != 0:
        lines = [line for line in (out.stderr or out.stdout).strip().splitlines() if line.strip()]
        raise RuntimeError(f"ray exited with {out.returncode}: {' | '.join(lines[-3:])[:300]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    document = _measure(int(sys.argv[1]), int(sys.argv[2]))
    sys.stdout.write("\n" + json.dumps(document) + "\n")
