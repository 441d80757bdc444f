"""The scale-out scenario (issue 11): a function sleeping 50 ms under C concurrent clients through
(a) one embedded server (local executor), (b) one ray-tier server and (c) two ray-tier servers on a
3-node Ray cluster and one PostgreSQL schema; plain Ray tasks sleeping 50 ms as the floor of the Ray
path; and what the shared store costs per invocation.

Everything runs on this machine: the Ray nodes are ``ray.cluster_utils.Cluster`` nodes on loopback
(which never becomes the machine's "current" Ray), the schema is a scratch one, and both are gone
afterwards, failure or not. Each step goes through the runner's ``attempt``, so a failed step leaves
the others' figures and an ``ERROR`` row.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks import httpload
from benchmarks.harness import BenchError, ServerProcess, build_zip, create_function
from benchmarks.scaleout_ray import SLEEP_S, floor, ray_cluster
from benchmarks.scaleout_store import (
    STORE_BATCHES,
    postgres_dsn,
    process_cpu_s,
    rows_per_invocation,
    scratch_schema,
    store_cost,
)
from benchmarks.scenarios import signed_invoke

Progress = Callable[[str], None]
Attempt = Callable[[str, Callable[[], Any]], Any]

FUNCTION = "bench-sleep-50ms"
SLEEP_SOURCE = 'import time\n\n\ndef handler(event, context):\n    time.sleep(0.05)\n    return {"slept_ms": 50}\n'
#: Only answers carrying this (the handler's own result) count.
EXPECT = b'"slept_ms": 50'
NODES = 3


def run(clients: int, seconds: float, warmup_s: float, attempt: Attempt, progress: Progress) -> None:
    """Every variant in turn; results land in the runner under ``scaleout_*`` keys."""
    load = _Load(clients, seconds, warmup_s)
    with tempfile.TemporaryDirectory(prefix="squall-bench-scaleout-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        progress(f"scaleout: (a) one embedded server, {clients} clients, 50 ms sleep, {seconds:g} s")
        attempt("scaleout_local", lambda: _embedded(root / "local", load))
        progress(f"scaleout: a {NODES}-node Ray cluster on loopback and a scratch PostgreSQL schema")
        schema = attempt("scaleout_setup", lambda: _setup(stack, clients))
        if schema is None:
            return
        address, name = schema["address"], schema["schema"]
        tier = ["--tier", "ray", "--ray-address", address, "--postgres-dsn", postgres_dsn(), "--postgres-schema", name]
        servers: list[ServerProcess] = []  # every one started, stopped before the cluster and schema go
        stack.callback(_stop_all, servers)
        counted: list[int] = []
        progress(f"scaleout: (b) one ray-tier server, {clients} clients")
        if attempt("scaleout_ray_1", lambda: _ray_one(root, tier, servers, load, counted)) is not None:
            progress(f"scaleout: (c) two ray-tier servers, {clients // 2} clients each")
            attempt("scaleout_ray_2", lambda: _ray_two(root, tier, servers, load, counted))
            progress("scaleout: rows the ray-tier servers wrote per invocation")
            attempt("scaleout_rows", lambda: rows_per_invocation(name, FUNCTION, sum(counted)))
        _stop_all(servers)  # the floor measures Ray alone
        progress(f"scaleout: plain Ray tasks sleeping 50 ms, {clients} in flight (the Ray floor)")
        attempt("scaleout_ray_tasks", lambda: _floor(address, "tasks", load))
        progress(f"scaleout: Ray actor calls sleeping 50 ms, one actor per node, {clients} in flight")
        attempt("scaleout_ray_actors", lambda: _floor(address, "actors", load))
        progress(f"scaleout: PostgreSQL cost of one invocation's writes, batches of {STORE_BATCHES}")
        attempt("scaleout_store", lambda: store_cost(name, FUNCTION, max(0.5, seconds / 4)))


class _Load:
    """How hard and how long each variant is driven."""

    def __init__(self, clients: int, seconds: float, warmup_s: float) -> None:
        self.clients = clients
        self.seconds = seconds
        self.warmup_s = warmup_s

    def drive(self, servers: list[ServerProcess]) -> dict[str, Any]:
        """``clients`` connections split evenly between ``servers``, each sending one signed Invoke."""
        targets = [("127.0.0.1", server.port, signed_invoke(server, FUNCTION)) for server in servers]
        pids = [server.proc.pid for server in servers if server.proc is not None]
        snapshots: list[dict[str, float]] = []
        # CPU counters when the counted windows begin (after the warm-up) and when the load ends.
        timer = threading.Timer(self.warmup_s, lambda: snapshots.append(_cpu_snapshot(pids)))
        timer.start()
        try:
            run = httpload.load_targets(targets, self.clients, self.seconds, self.warmup_s, expect=EXPECT)
        finally:
            timer.cancel()
        snapshots.append(_cpu_snapshot(pids))
        latency = run["latency_ms"]
        counted = sum(run["windows"])
        if latency["p50"] is None or latency["p50"] < SLEEP_S * 1000:
            raise BenchError(f"answers came back faster than the handler sleeps: {latency}")
        return {
            "servers": len(servers),
            "clients": self.clients,
            "seconds": self.seconds,
            "warmup_s": self.warmup_s,
            "invokes_per_s": run["requests_per_s"],
            "windows": run["windows"],
            "latency_ms": latency,
            "answered": run["answered"],
            "answered_per_server": run["answered_per_target"],
            "errors": run["errors"],
            "first_errors": run["first_errors"],
            "ideal_per_s": round(self.clients / SLEEP_S, 1),
            "cpu_ms_per_invocation": {
                key: round((snapshots[-1][key] - snapshots[0][key]) / counted * 1000, 3) for key in snapshots[0]
            }
            if len(snapshots) == 2
            else None,
        }


def _cpu_snapshot(server_pids: list[int]) -> dict[str, float]:
    """CPU seconds so far: the whole machine's (every core, busy time from /proc/stat: other work on
    the machine included), the servers' processes' (without their sandboxes) and this process's
    (the load generator)."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    servers = [process_cpu_s(pid) for pid in server_pids]
    return {
        "machine": (sum(fields[:8]) - idle) / ticks,
        "servers": sum(cpu for cpu in servers if cpu is not None),
        "client": time.process_time(),
    }


def _embedded(root: Path, load: _Load) -> dict[str, Any]:
    servers: list[ServerProcess] = []
    try:
        server, _ = _start(root / "data", [], servers)
        create_function(server.lambda_client(), FUNCTION, build_zip(SLEEP_SOURCE))
        return {"tier": "embedded", "nodes": 0, **load.drive([server])}
    finally:
        _stop_all(servers)


def _start(data_dir: Path, args: list[str], servers: list[ServerProcess]) -> tuple[ServerProcess, float]:
    """A server started on free ports (added to ``servers`` to be stopped), and how long it took. A port
    found free can be taken by another process before the server binds it: then again, on new ports."""
    for attempt in range(3):
        server = ServerProcess(data_dir, args)
        servers.append(server)
        try:
            return server, server.start()
        except BenchError as exc:
            if "address already in use" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _stop_all(servers: list[ServerProcess]) -> None:
    """Stop those still running, the last started first; one that will not stop does not keep the
    others running (its error is raised after)."""
    failed: BenchError | None = None
    for server in reversed(servers):
        if server.proc is not None and server.proc.poll() is None:
            try:
                server.stop()
            except BenchError as exc:
                failed = failed or exc
    if failed is not None:
        raise failed


def _setup(stack: ExitStack, clients: int) -> dict[str, Any]:
    schema = stack.enter_context(scratch_schema(postgres_dsn()))
    began = time.perf_counter()
    address = stack.enter_context(ray_cluster(NODES, math.ceil(clients / NODES), schema))
    started = round(time.perf_counter() - began, 3)
    return {"schema": schema, "address": address, "nodes": NODES, "cluster_start_s": started}


def _ray_one(
    root: Path, tier: list[str], servers: list[ServerProcess], load: _Load, counted: list[int]
) -> dict[str, Any]:
    server, started = _start(root / "ray-a" / "data", tier, servers)
    create_function(server.lambda_client(), FUNCTION, build_zip(SLEEP_SOURCE))
    result = {"tier": "ray", "nodes": NODES, "server_start_s": round(started, 3), **load.drive([server])}
    counted.append(result["answered"])
    return result


def _ray_two(
    root: Path, tier: list[str], servers: list[ServerProcess], load: _Load, counted: list[int]
) -> dict[str, Any]:
    first = servers[-1]
    # One account: the second server gets the first one's root key.
    data_dir = root / "ray-b" / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(first.data_dir / "credentials", data_dir / "credentials")
    second, started = _start(data_dir, tier, servers)
    result = {"tier": "ray", "nodes": NODES, "server_start_s": round(started, 3), **load.drive([first, second])}
    counted.append(result["answered"])
    return result


def _floor(address: str, mode: str, load: _Load) -> dict[str, Any]:
    return {"nodes": NODES, **floor(address, mode, load.clients, load.seconds, load.warmup_s)}
