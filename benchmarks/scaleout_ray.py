"""The Ray side of the scale-out scenario: a private multi-node Ray cluster on this machine, and the
floor of the Ray path, 50 ms sleeps as plain Ray tasks and as calls to one threaded actor per node.

The floor runs in a driver of its own: ``python -m benchmarks.scaleout_ray ADDRESS MODE IN_FLIGHT
SECONDS WARMUP_S`` prints one JSON document of raw samples.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import httpload
from benchmarks.harness import BenchError, free_port
from benchmarks.stats import Summary

SLEEP_S = 0.05
#: Logical memory per node: what Squall's placement divides between invocations.
NODE_MEMORY = 4 * 2**30


@contextmanager
def ray_cluster(nodes: int, cpus_per_node: int, schema: str) -> Iterator[str]:
    """``nodes`` Ray nodes on loopback (free ports); yields the address to join. Shut down afterwards,
    with the work directory the deployment's node agents leave."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray._private.utils
    from ray.cluster_utils import Cluster

    node = {
        "num_cpus": cpus_per_node,
        "memory": NODE_MEMORY,
        "object_store_memory": 200 * 2**20,
    }
    # A Cluster records itself as this machine's "current" Ray, which a bare ray.init() of any other
    # process would then join: keep it private.
    original = ray._private.utils.write_ray_address
    ray._private.utils.write_ray_address = lambda *args, **kwargs: None
    cluster = None
    try:
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"gcs_server_port": free_port(), "include_dashboard": False, **node},
        )
        for _ in range(nodes - 1):
            cluster.add_node(**node)
        cluster.wait_for_nodes()
        ray._private.utils.write_ray_address = original
        yield str(cluster.address)
    finally:
        ray._private.utils.write_ray_address = original
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(Path(tempfile.gettempdir()) / "squall-ray" / schema, ignore_errors=True)


def floor(address: str, mode: str, in_flight: int, seconds: float, warmup_s: float) -> dict[str, Any]:
    """The Ray floor (``mode`` "tasks" or "actors", see ``_drive``), measured by a driver of its own
    (this file run as a script): a driver that fails to connect retries for minutes, so it runs under
    a deadline and is stopped with its process group."""
    argv = [sys.executable, "-m", "benchmarks.scaleout_ray", address, mode, str(in_flight), str(seconds)]
    argv.append(str(warmup_s))
    out = subprocess.run(
        argv,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120 + warmup_s + seconds,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    if out.returncode != 0:
        lines = [line for line in (out.stderr or out.stdout).strip().splitlines() if line.strip()]
        raise BenchError(f"the Ray task driver exited with {out.returncode}: {' | '.join(lines[-3:])[:300]}")
    raw: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    windows, latency = httpload.count_windows(raw["done"], raw["began"] + warmup_s, seconds)
    if not any(windows):
        raise BenchError(f"no Ray task finished in the measured windows ({len(raw['done'])} in all)")
    return {
        "in_flight": in_flight,
        "seconds": seconds,
        "warmup_s": warmup_s,
        "calls_per_s": Summary.of([float(w) for w in windows]).as_dict(),
        "windows": windows,
        "latency_ms": Summary.of(latency).as_dict(),
        "mode": mode,
        "calls_ran": len(raw["done"]),
        "wrong_results": raw["wrong"],
        "ideal_per_s": round(in_flight / SLEEP_S, 1),
    }


def _drive(address: str, mode: str, in_flight: int, seconds: float, warmup_s: float) -> dict[str, Any]:
    """In the driver process: ``in_flight`` calls of ``time.sleep(0.05)`` at all times, a new one as
    each finishes; (sent, finished) of each whose result is the call's own. ``mode`` "tasks": plain
    tasks (one CPU each); "actors": methods of one threaded actor per node (the shape of Squall's
    node agents), called in turn."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray.init(address=address, namespace=f"squall-bench-{uuid.uuid4().hex[:8]}", log_to_driver=False)
    try:
        submit: Callable[[int], Any]
        if mode == "tasks":
            task = ray.remote(num_cpus=1)(_sleep_task)

            def submit(_: int) -> Any:
                return task.remote()

            # Warm-up: one task on every CPU slot at once, so that every slot has a worker process
            # wherever the scheduler puts the measured tasks.
            slots = max(in_flight, int(ray.cluster_resources().get("CPU", 0)))
        else:
            sleeper = ray.remote(num_cpus=0, max_concurrency=in_flight)(_Sleeper)
            nodes = [node["NodeID"] for node in ray.nodes() if node["Alive"]]
            pinned = [NodeAffinitySchedulingStrategy(node, soft=False) for node in nodes]
            actors = [sleeper.options(scheduling_strategy=strategy).remote() for strategy in pinned]

            def submit(index: int) -> Any:
                return actors[index % len(actors)].sleep.remote()

            slots = in_flight
        ray.get([submit(i) for i in range(slots)])
        began = time.perf_counter()
        stop_at = began + warmup_s + seconds
        sent_calls = in_flight
        pending = {submit(i): time.perf_counter() for i in range(in_flight)}
        done: list[tuple[float, float]] = []
        wrong = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            now = time.perf_counter()
            for ref in ready:
                sent = pending.pop(ref)
                if ray.get(ref) == int(SLEEP_S * 1000):
                    done.append((sent, now))
                else:
                    wrong += 1
                if now < stop_at:
                    pending[submit(sent_calls)] = time.perf_counter()
                    sent_calls += 1
    finally:
        ray.shutdown()
    return {"began": began, "done": done, "wrong": wrong}


def _sleep_task() -> int:
    time.sleep(SLEEP_S)
    return int(SLEEP_S * 1000)


class _Sleeper:
    def sleep(self) -> int:
        return _sleep_task()


if __name__ == "__main__":
    found = _drive(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    sys.stdout.write("\n" + json.dumps(found) + "\n")
