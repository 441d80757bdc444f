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

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from benchmarks import httpload
from benchmarks.harness import BenchError, ServerProcess, build_zip, create_function, free_port
from benchmarks.scenarios import signed_invoke
from benchmarks.stats import Summary

Progress = Callable[[str], None]
Attempt = Callable[[str, Callable[[], Any]], Any]

FUNCTION = "bench-sleep-50ms"
SLEEP_S = 0.05
SLEEP_SOURCE = 'import time\n\n\ndef handler(event, context):\n    time.sleep(0.05)\n    return {"slept_ms": 50}\n'
#: Only answers carrying this (the handler's own result) count.
EXPECT = b'"slept_ms": 50'
NODES = 3
#: Logical memory per node: what Squall's placement divides between invocations.
NODE_MEMORY = 4 * 2**30
#: Invocations a batch of the usage writer holds, measured one after the other (see ``store_cost``).
STORE_BATCHES = (1, 16, 64)
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_dsn() -> str:
    return os.environ.get("SQUALL_BENCH_POSTGRES_DSN", DEFAULT_DSN)


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
        stack.callback(lambda: [_stop(server) for server in reversed(servers)])
        counted: list[int] = []
        progress(f"scaleout: (b) one ray-tier server, {clients} clients")
        if attempt("scaleout_ray_1", lambda: _ray_one(root, tier, servers, load, counted)) is not None:
            progress(f"scaleout: (c) two ray-tier servers, {clients // 2} clients each")
            attempt("scaleout_ray_2", lambda: _ray_two(root, tier, servers, load, counted))
            progress("scaleout: rows the ray-tier servers wrote per invocation")
            attempt("scaleout_rows", lambda: _rows_per_invocation(name, sum(counted)))
        for server in reversed(servers):  # the floor measures Ray alone
            _stop(server)
        progress(f"scaleout: plain Ray tasks sleeping 50 ms, {clients} in flight (the Ray floor)")
        attempt("scaleout_ray_tasks", lambda: _ray_floor(address, "tasks", load))
        progress(f"scaleout: Ray actor calls sleeping 50 ms, one actor per node, {clients} in flight")
        attempt("scaleout_ray_actors", lambda: _ray_floor(address, "actors", load))
        progress(f"scaleout: PostgreSQL cost of one invocation's writes, batches of {STORE_BATCHES}")
        attempt("scaleout_store", lambda: store_cost(name, max(0.5, seconds / 4)))


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
    servers = [_process_cpu_s(pid) for pid in server_pids]
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
        for server in servers:
            _stop(server)


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


def _stop(server: ServerProcess) -> None:
    if server.proc is not None and server.proc.poll() is None:
        server.stop()


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


@contextmanager
def scratch_schema(dsn: str) -> Iterator[str]:
    """A fresh schema name, dropped afterwards with the schemas named after it (``<schema>_streams``)."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT 1")
    try:
        yield schema
    finally:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = %s OR starts_with(nspname, %s)",
                (schema, f"{schema}_"),
            ).fetchall()
            for (name,) in rows:
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


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


def _rows_per_invocation(schema: str, answered: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """Usage and log rows in the schema per answered invocation (the usage writer batches every 50 ms:
    wait until every answer's record is there)."""
    import psycopg

    deadline = time.monotonic() + timeout_s
    with psycopg.connect(postgres_dsn(), autocommit=True) as conn:
        while True:
            usage = _count(conn, f"SELECT COUNT(*) FROM {schema}.usage WHERE function_name = %s", FUNCTION)
            if usage >= answered or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        logs = _count(conn, f"SELECT COUNT(*) FROM {schema}.log_events WHERE log_group = %s", f"/aws/lambda/{FUNCTION}")
        # Only this run's invocations are in the schema yet: their rows and indexes, on disk.
        size = conn.execute(
            "SELECT pg_total_relation_size(%s) + pg_total_relation_size(%s)",
            (f"{schema}.usage", f"{schema}.log_events"),
        ).fetchone()
    return {
        "answered": answered,
        "usage_rows": usage,
        "log_rows": logs,
        "usage_rows_per_invocation": round(usage / answered, 3) if answered else None,
        "log_rows_per_invocation": round(logs / answered, 3) if answered else None,
        "stored_bytes_per_invocation": round(int(size[0]) / answered) if answered and size else None,
    }


def _count(conn: Any, sql: str, arg: str) -> int:
    row = conn.execute(sql, (arg,)).fetchone()
    return int(row[0]) if row else 0


def _ray_floor(address: str, mode: str, load: _Load) -> dict[str, Any]:
    """The Ray floor (``mode`` "tasks" or "actors", see ``_drive``), measured by a driver of its own
    (this file run as a script): a driver that fails to connect retries for minutes, so it runs under
    a deadline and is stopped with its process group."""
    argv = [sys.executable, "-m", "benchmarks.scaleout", address, mode, str(load.clients), str(load.seconds)]
    argv.append(str(load.warmup_s))
    out = subprocess.run(
        argv,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120 + load.warmup_s + load.seconds,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    if out.returncode != 0:
        lines = [line for line in (out.stderr or out.stdout).strip().splitlines() if line.strip()]
        raise BenchError(f"the Ray task driver exited with {out.returncode}: {' | '.join(lines[-3:])[:300]}")
    raw: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    windows, latency = httpload.count_windows(raw["done"], raw["began"] + load.warmup_s, load.seconds)
    if not any(windows):
        raise BenchError(f"no Ray task finished in the measured windows ({len(raw['done'])} in all)")
    return {
        "nodes": NODES,
        "in_flight": load.clients,
        "seconds": load.seconds,
        "warmup_s": load.warmup_s,
        "calls_per_s": Summary.of([float(w) for w in windows]).as_dict(),
        "windows": windows,
        "latency_ms": Summary.of(latency).as_dict(),
        "mode": mode,
        "calls_ran": len(raw["done"]),
        "wrong_results": raw["wrong"],
        "ideal_per_s": round(load.clients / SLEEP_S, 1),
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


def store_cost(schema: str, seconds: float) -> dict[str, Any]:
    """What one invocation's writes cost PostgreSQL: ``MetadataStore.record`` of B invocations at a time
    (a usage row and the invocation's real START/END/REPORT lines each, read back from the schema),
    back to back over one connection. Per invocation: wall time of the call (commit included) and the
    CPU time of the PostgreSQL backend that served it (from /proc, when PostgreSQL runs here)."""
    from squall.stores.postgres import PostgresDatabase, PostgresMetadataStore

    database = PostgresDatabase(postgres_dsn(), schema, max_size=1)  # one connection: one backend to watch
    store = PostgresMetadataStore(postgres_dsn(), schema, database=database)
    try:
        usage = store.usage(function_name=FUNCTION)
        if not usage:
            raise BenchError(f"no usage record of {FUNCTION} in {schema} to model an invocation on")
        record = usage[-1]
        with database.transaction() as conn:
            pid = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
            lines = conn.execute(
                "SELECT log_group, stream, timestamp, message FROM log_events WHERE position(%s in message) > 0"
                " ORDER BY id",
                (record.request_id,),
            ).fetchall()
        from squall.models import LogEvent

        group, stream = lines[0][0], lines[0][1]
        events = [LogEvent(timestamp=int(row[2]), message=str(row[3])) for row in lines]
        batches: dict[str, Any] = {}
        for size in STORE_BATCHES:
            batch_logs = [(group, stream, events)] * size
            batch_usage = [record] * size
            store.record(batch_usage, batch_logs)  # warm: plans cached
            calls = 0
            cpu_before = _backend_cpu_s(pid)
            began = time.perf_counter()
            while time.perf_counter() - began < seconds:
                store.record(batch_usage, batch_logs)
                calls += 1
            wall = time.perf_counter() - began
            cpu_after = _backend_cpu_s(pid)
            invocations = calls * size
            cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
            batches[str(size)] = {
                "calls": calls,
                "invocations": invocations,
                "wall_us_per_invocation": round(wall / invocations * 1e6, 2),
                "backend_cpu_us_per_invocation": None if cpu is None else round(cpu / invocations * 1e6, 2),
                "invocations_per_s_one_connection": round(invocations / wall, 1),
            }
    finally:
        store.close()
        database.close()
    return {
        "log_lines_per_invocation": len(events),
        "log_bytes_per_invocation": sum(len(e.message) for e in events),
        "clock_tick_s": 1 / os.sysconf("SC_CLK_TCK"),
        "batches": batches,
    }


def _backend_cpu_s(pid: int) -> float | None:
    """CPU seconds of a local PostgreSQL backend, None when it is not on this machine (or this
    machine's process ``pid`` is another program: PostgreSQL in a container, say)."""
    try:
        if not Path(f"/proc/{pid}/comm").read_text().startswith("postgres"):
            return None
    except OSError:
        return None
    return _process_cpu_s(pid)


def _process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    found = _drive(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    sys.stdout.write("\n" + json.dumps(found) + "\n")
