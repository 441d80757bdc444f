"""The floor: what the operating system and the interpreter cost before Squall adds anything.

* a pipe round trip between two warm processes (a forked echo child), the least a warm invoke
  through a sandbox channel can cost;
* ``os.fork()`` + ``waitpid`` of a small process, the least a forked sandbox can cost;
* a fresh interpreter running ``import boto3`` (and one running nothing), what a cold start costs
  without a zygote.

The first two run in a small child interpreter (``python -s floor.py``, stdlib only) rather than in
the benchmark process, which has boto3 loaded and would make ``fork`` look slower than it is. This
module therefore imports nothing but the standard library at the top.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

MESSAGE = b"x" * 64


def pipe_round_trips(trips: int) -> list[float]:
    """Milliseconds per round trip of a small message to a forked echo child over two pipes."""
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the echo child
        os.close(to_child_w)
        os.close(to_parent_r)
        while True:
            data = os.read(to_child_r, 4096)
            if not data:
                os._exit(0)
            os.write(to_parent_w, data)
    os.close(to_child_r)
    os.close(to_parent_w)
    samples: list[float] = []
    clock = time.perf_counter_ns
    size = len(MESSAGE)
    for _ in range(trips // 10):  # warm-up: both processes hot, pages touched
        os.write(to_child_w, MESSAGE)
        os.read(to_parent_r, size)
    for _ in range(trips):
        start = clock()
        os.write(to_child_w, MESSAGE)
        received = os.read(to_parent_r, size)
        samples.append((clock() - start) / 1e6)
        if len(received) != size:
            raise RuntimeError("short read from the echo child")
    os.close(to_child_w)
    os.close(to_parent_r)
    os.waitpid(pid, 0)
    return samples


def fork_waits(forks: int) -> list[float]:
    """Milliseconds of ``os.fork()`` of this (small) process + ``waitpid`` for the child's exit."""
    samples: list[float] = []
    clock = time.perf_counter_ns
    for index in range(forks + forks // 10):
        start = clock()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        if index >= forks // 10:  # the first tenth warms up
            samples.append((clock() - start) / 1e6)
    return samples


def small_process_floor(trips: int, forks: int) -> dict[str, list[float]]:
    """Run the pipe and fork measurements in a fresh stdlib-only interpreter; raw samples in ms."""
    argv = [sys.executable, "-s", os.path.abspath(__file__), "--trips", str(trips), "--forks", str(forks)]
    out = subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
    result: dict[str, list[float]] = json.loads(out.stdout)
    return result


def interpreter_starts(code: str, runs: int) -> list[float]:
    """Milliseconds for a fresh ``python -c CODE`` (this venv's interpreter) to start and exit."""
    argv = [sys.executable, "-c", code]
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)  # warm the page cache
    samples: list[float] = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trips", type=int, default=10_000)
    parser.add_argument("--forks", type=int, default=200)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {
        "pipe_rtt_ms": pipe_round_trips(args.trips),
        "fork_waitpid_ms": fork_waits(args.forks),
    }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
