"""``make bench``: start a Squall server of our own, measure cold starts, warm invokes (HTTP, boto3,
in-process), throughput, streams, queues and the gateway against the floor the machine sets and
against the peers (MiniStack, Ray, chalice local), print a table, save the figures, write
BENCHMARKS.md with the plots.

    python -m benchmarks.run [--quick] [--only NAME ...] [--compare] [--no-peers]

NAME is one of: floor, cold, warm-http, in-process, throughput, streams, queues, http, ministack, ray,
workloads, burst, warm-provided, tables, buckets, memory, capacity, scaleout.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import (
    buckets,
    burst,
    capacity,
    compare,
    floor,
    goals,
    http_peers,
    markdown,
    ministack,
    peers,
    queues,
    ray_peer,
    runtimes,
    scaleout,
    scenarios,
    streams,
    tables,
    workloads,
)
from benchmarks.harness import (
    BOTO3_SOURCE,
    PLAIN_SOURCE,
    ServerProcess,
    build_zip,
    create_function,
)
from benchmarks.peer_report import (
    burst_rows,
    memory_rows,
    not_run_rows,
    peer_rows,
    scaleout_rows,
    workload_rows,
)
from benchmarks.report import build_rows, render_table
from benchmarks.stats import Summary

SCENARIOS = (
    "floor", "cold", "warm-http", "in-process", "throughput", "streams", "queues", "http", "ministack", "ray",
    "workloads", "burst", "warm-provided", "tables", "buckets", "memory", "capacity", "scaleout",
)  # fmt: skip
SERVER_SCENARIOS = {"cold", "warm-http", "throughput", "streams", "queues", "http", "workloads", "burst"}
SERVER_SCENARIOS.add("warm-provided")
SERVER_SCENARIOS.add("tables")
SERVER_SCENARIOS.add("buckets")
SERVER_SCENARIOS.update(("memory", "capacity"))
PEER_SCENARIOS = {"ministack", "ray"}
#: Connection counts of the HTTP curves (gateway, chalice local, raw ceiling).
HTTP_CONNECTIONS = (1, 16, 64)
#: (batch size, records) of the stream delivery runs; --quick divides the records by 5.
STREAM_RUNS = ((1, 2_000), (100, 20_000), (1000, 50_000))
#: Records of the PutRecords-alone run (each client kind), divided by 5 too.
STREAM_PUT_RECORDS = 20_000
ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PLOTS_DIR = Path(__file__).resolve().parent / "plots"
MARKDOWN = ROOT / "BENCHMARKS.md"
WARM_FUNCTION = "bench-warm"


@dataclass(frozen=True)
class Plan:
    """How many samples each scenario takes."""

    cold_samples: int
    cold_warmup: int
    http_calls: int
    http_warmup: int
    boto3_calls: int
    boto3_warmup: int
    inproc_calls: int
    inproc_warmup: int
    clients: int
    throughput_s: int
    throughput_warmup_s: float
    pipe_trips: int
    forks: int
    interpreter_runs: int
    latency_s: float
    queue_messages: int = 20_000
    queue_runs: int = 3
    http_seconds: float = 5.0
    peer_calls: int = 300
    peer_boto3_calls: int = 100
    peer_warmup: int = 20
    peer_cold_samples: int = 10
    peer_queue_messages: int = 5_000
    peer_stream_records: int = 5_000
    workload_invokes: int = 50
    workload_objects: int = 200
    workload_records: int = 10_000
    workload_http_s: float = 5.0
    #: Burst sizes; the 500 one is the issue's goal (results key ``burst``), the others ``burst_<N>``.
    burst_sizes: tuple[int, ...] = (100, 500, 1000)
    #: Idle warm sandboxes measured per function (memory) and warmed to extrapolate from (capacity).
    memory_sandboxes: int = 50
    capacity_sandboxes: int = 200
    #: Scale-out (issue 11): clients invoking the 50 ms function, seconds counted, warm-up before.
    scaleout_clients: int = 16
    scaleout_s: float = 5.0
    scaleout_warmup_s: float = 2.0

    @classmethod
    def for_run(cls, quick: bool) -> Plan:
        if quick:
            return cls(8, 2, 200, 20, 100, 10, 200, 20, 8, 2, 0.5, 10_000, 100, 5, 3.0,
                       2_000, 1, 2.0, 100, 30, 10, 3, 1_000, 1_000, 10, 30, 2_000, 2.0, (100, 500), 10, 50,
                       scaleout_clients=8, scaleout_s=2.0, scaleout_warmup_s=1.5)  # fmt: skip
        return cls(30, 3, 2000, 100, 500, 50, 2000, 100, 8, 5, 1.0, 10_000, 200, 10, 10.0)


class Runner:
    """Runs the selected scenarios, keeping going past a failed one, and collects the results."""

    def __init__(self, plan: Plan, selected: list[str], no_peers: bool = False) -> None:
        self.plan = plan
        self.selected = [name for name in selected if not (no_peers and name in PEER_SCENARIOS)]
        self.no_peers = no_peers
        self.results: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        #: Peers (or scenarios) that could not run, and why: shown as "not run: <why>", not as errors.
        self.not_run: dict[str, str] = {}
        self.began = time.perf_counter()

    def progress(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.began:6.1f}s] {message}", file=sys.stderr, flush=True)

    def attempt(self, key: str, step: Callable[[], Any], server: ServerProcess | None = None) -> Any:
        try:
            result = step()
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(exc)).strip()
            self.errors[key] = detail
            self.progress(f"  FAILED {key}: {detail}")
            if server is not None and server.proc is not None and server.proc.poll() is not None:
                self.progress(f"  the server exited; its log ends with:\n{server.log_tail()}")
            return None
        if result is not None:
            self.results[key] = round(result, 3) if isinstance(result, float) else result
        return result

    def attempt_peer(self, key: str, step: Callable[[], Any]) -> Any:
        """Like ``attempt`` for a peer: a failure is recorded as "not run: <why>" and the run goes on."""
        try:
            result = step()
        except Exception as exc:
            why = " ".join("".join(traceback.format_exception_only(exc)).split())[:300]
            self.not_run[key] = why
            self.progress(f"  not run: {key}: {why}")
            return None
        if result is not None:
            self.results[key] = result
        return result

    def run(self) -> None:
        if "floor" in self.selected:
            self.progress("floor: pipe round trips, fork+waitpid, fresh interpreters")
            self.attempt("floor", self._floor)
        if "in-process" in self.selected:
            self.progress(f"in-process: {self.plan.inproc_calls} warm Platform.invoke calls")
            self.attempt(
                "in_process",
                lambda: scenarios.in_process(self.plan.inproc_calls, self.plan.inproc_warmup, self.progress),
            )
        if "http" in self.selected:
            self._http_peers()
        if "ministack" in self.selected:
            self._ministack()
        if "ray" in self.selected:
            self.progress(f"ray: {self.plan.peer_calls} no-op tasks and actor calls (ray.init() in its venv)")
            self.attempt_peer("ray", self._ray)
        if SERVER_SCENARIOS & set(self.selected):
            self._with_server()
        if "scaleout" in self.selected:
            plan = self.plan
            # Each step records its own result or error; this catches a failure to clean up.
            self.attempt(
                "scaleout",
                lambda: scaleout.run(
                    plan.scaleout_clients, plan.scaleout_s, plan.scaleout_warmup_s, self.attempt, self.progress
                ),
            )

    def _workloads(self, server: ServerProcess) -> None:
        plan = self.plan
        creds = server.credentials()
        endpoint = queues.Endpoint(server.url, creds.access_key, creds.secret_key)
        self.progress(f"workloads: graph BFS, {plan.workload_invokes} invokes")
        self.attempt("workload_bfs", lambda: workloads.graph_bfs(server, endpoint, plan.workload_invokes), server)
        self.progress(f"workloads: gzip of {plan.workload_objects} 64 KiB objects from a queue")
        self.attempt("workload_gzip", lambda: workloads.gzip_objects(server, endpoint, plan.workload_objects), server)
        self.progress(f"workloads: JSON ETL over {plan.workload_records} stream records")
        self.attempt("workload_etl", lambda: workloads.json_etl(server, endpoint, plan.workload_records), server)
        self.progress(f"workloads: jinja2 HTML behind the gateway for {plan.workload_http_s:g} s")
        self.attempt(
            "workload_html",
            lambda: workloads.dynamic_html(server, endpoint, plan.workload_http_s, 8, self.progress),
            server,
        )

    def _peer_python(self, name: str) -> Path:
        return peers.ensure(name, self.progress)

    def _http_peers(self) -> None:
        plan = self.plan
        with tempfile.TemporaryDirectory(prefix="squall-bench-http-") as tmp:
            self.progress(f"http: the raw uvloop ceiling at {HTTP_CONNECTIONS} connections")

            def ceiling() -> dict[str, Any]:
                with http_peers.ceiling_server(Path(tmp) / "ceiling") as port:
                    return http_peers.curve(port, "/", HTTP_CONNECTIONS, plan.http_seconds, self.progress, "ceiling")

            self.attempt("http_ceiling", ceiling)
            if self.no_peers:
                self.not_run["http_chalice"] = "peers skipped (--no-peers)"
                return
            self.progress(f"http: chalice local at {HTTP_CONNECTIONS} connections")

            def chalice() -> dict[str, Any]:
                python = self._peer_python("chalice")
                with http_peers.chalice_local(python, Path(tmp) / "chalice") as port:
                    return http_peers.curve(port, "/", HTTP_CONNECTIONS, plan.http_seconds, self.progress, "chalice")

            self.attempt_peer("http_chalice", chalice)

    def _ministack(self) -> None:
        plan = self.plan
        self.progress("ministack: install (first run), start on a free port")
        try:
            python = self._peer_python("ministack")
        except Exception as exc:
            for key in ("ministack_warm", "ministack_cold", "ministack_queue", "ministack_kinesis"):
                self.not_run[key] = f"MiniStack could not be installed: {exc}"
            self.progress(f"  not run: ministack: {exc}")
            return
        with tempfile.TemporaryDirectory(prefix="squall-bench-ministack-") as tmp:
            try:
                server = ministack.MiniStack(python, Path(tmp)).__enter__()
            except Exception as exc:
                for key in ("ministack_warm", "ministack_cold", "ministack_queue", "ministack_kinesis"):
                    self.not_run[key] = f"MiniStack did not start: {exc}"
                self.progress(f"  not run: ministack: {exc}")
                return
            try:
                self.results["ministack_version"] = server.version()
                endpoint = server.endpoint
                self.progress(f"ministack: warm invokes, {plan.peer_calls} HTTP + {plan.peer_boto3_calls} boto3")
                self.attempt_peer(
                    "ministack_warm",
                    lambda: ministack.warm(endpoint, plan.peer_calls, plan.peer_boto3_calls, plan.peer_warmup),
                )
                self.progress(f"ministack: {plan.peer_cold_samples} cold starts")
                self.attempt_peer("ministack_cold", lambda: ministack.cold(endpoint, plan.peer_cold_samples))
                self.progress(f"ministack: queue drain of {plan.peer_queue_messages} messages, batch 100")
                self.attempt_peer(
                    "ministack_queue",
                    lambda: _repeat(
                        lambda: queues.drain(endpoint, plan.peer_queue_messages, 100), plan.queue_runs, "msgs_per_s"
                    ),
                )
                self.progress(f"ministack: Kinesis delivery of {plan.peer_stream_records} records, batch 100")
                self.attempt_peer(
                    "ministack_kinesis", lambda: ministack.kinesis_delivery(endpoint, plan.peer_stream_records)
                )
            finally:
                server.__exit__(None, None, None)

    def _ray(self) -> dict[str, Any]:
        raw = ray_peer.run(self._peer_python("ray"), self.plan.peer_calls, self.plan.peer_warmup)
        if raw["tasks_ran"] != self.plan.peer_calls + self.plan.peer_warmup:
            raise RuntimeError(f"ray ran {raw['tasks_ran']} tasks, not {self.plan.peer_calls + self.plan.peer_warmup}")
        return {
            "ray_version": raw["ray_version"],
            "init_s": round(raw["init_s"], 3),
            "task_ms": Summary.of(raw["task_ms"]).as_dict(),
            "actor_ms": Summary.of(raw["actor_ms"]).as_dict(),
            "actor_calls_counted": raw["actor_calls_counted"],
            "raw_task_ms": [round(v, 4) for v in raw["task_ms"]],
            "raw_actor_ms": [round(v, 4) for v in raw["actor_ms"]],
        }

    def _floor(self) -> dict[str, Any]:
        plan = self.plan
        small = floor.small_process_floor(plan.pipe_trips, plan.forks)
        boto3_starts = floor.interpreter_starts("import boto3", plan.interpreter_runs)
        bare_starts = floor.interpreter_starts("pass", plan.interpreter_runs)
        return {
            "pipe_rtt_ms": Summary.of(small["pipe_rtt_ms"]).as_dict(),
            "fork_waitpid_ms": Summary.of(small["fork_waitpid_ms"]).as_dict(),
            "python_import_boto3_ms": Summary.of(boto3_starts).as_dict(),
            "python_bare_ms": Summary.of(bare_starts).as_dict(),
            "pipe_trips": plan.pipe_trips,
            "forks": plan.forks,
            "interpreter_runs": plan.interpreter_runs,
        }

    def _with_server(self) -> None:
        plan = self.plan
        with tempfile.TemporaryDirectory(prefix="squall-bench-") as tmp:
            server = ServerProcess(Path(tmp) / "data")
            self.progress("starting squall server")
            started = self.attempt("server_start_s", server.start, server)
            if started is None:
                return
            self.progress(f"  healthy after {started:.2f} s on {server.url}")
            try:
                lam = server.lambda_client()
                if "cold" in self.selected:
                    for variant, source in (("plain", PLAIN_SOURCE), ("boto3", BOTO3_SOURCE)):
                        self.progress(f"cold/{variant}: {plan.cold_samples} new functions, first invoke each")
                        self.attempt(
                            f"cold_{variant}",
                            functools.partial(
                                scenarios.cold_starts,
                                server,
                                lam,
                                variant,
                                source,
                                plan.cold_samples,
                                plan.cold_warmup,
                                self.progress,
                            ),
                            server,
                        )
                if {"warm-http", "throughput"} & set(self.selected):
                    self.attempt("warm_function", lambda: create_function(lam, WARM_FUNCTION, build_zip(PLAIN_SOURCE)))
                if "warm-http" in self.selected and "warm_function" not in self.errors:
                    self.progress(f"warm-http: {plan.http_calls} signed invokes over one keep-alive connection")
                    self.attempt(
                        "warm_http",
                        lambda: scenarios.warm_http(server, WARM_FUNCTION, plan.http_calls, plan.http_warmup),
                        server,
                    )
                    self.progress(f"warm-http: {plan.boto3_calls} boto3 invokes (reference)")
                    self.attempt(
                        "warm_boto3",
                        lambda: scenarios.warm_boto3(lam, WARM_FUNCTION, plan.boto3_calls, plan.boto3_warmup),
                        server,
                    )
                if "warm-provided" in self.selected:
                    for subject in runtimes.SUBJECTS:
                        self.attempt(subject.step, functools.partial(subject.create, lam))
                        if subject.step not in self.errors:
                            self.progress(f"warm-provided: {plan.http_calls} invokes of {subject.label}")
                            warm = functools.partial(
                                runtimes.warm_provided, server, plan.http_calls, plan.http_warmup, subject.function
                            )
                            self.attempt(subject.result, warm, server)
                if "throughput" in self.selected and "warm_function" not in self.errors:
                    self.progress(f"throughput: {plan.clients} clients for {plan.throughput_s} s")
                    self.attempt(
                        "throughput",
                        lambda: scenarios.throughput(
                            server, WARM_FUNCTION, plan.clients, plan.throughput_s, plan.throughput_warmup_s
                        ),
                        server,
                    )
                if "queues" in self.selected:
                    creds = server.credentials()
                    endpoint = queues.Endpoint(server.url, creds.access_key, creds.secret_key)
                    self.progress(f"queues: drain of {plan.queue_messages} messages, batch 100, {plan.queue_runs}x")
                    self.attempt(
                        "queue_drain",
                        lambda: _repeat(
                            lambda: queues.drain(endpoint, plan.queue_messages, 100), plan.queue_runs, "msgs_per_s"
                        ),
                        server,
                    )
                    small = plan.queue_messages // 4
                    self.progress(f"queues: drain of {small} messages, batch 10, {plan.queue_runs}x")
                    self.attempt(
                        "queue_drain_batch10",
                        lambda: _repeat(lambda: queues.drain(endpoint, small, 10), plan.queue_runs, "msgs_per_s"),
                        server,
                    )
                if "tables" in self.selected:
                    count = plan.queue_messages // 10
                    self.progress(f"tables: {count} PutItem/GetItem and {count // 5} Query, through HTTP and alone")
                    self.attempt("tables_ops", lambda: tables.operations(server, count), server)
                    self.progress(f"tables: change-to-function latency for {plan.latency_s:g} s")
                    self.attempt("tables_latency", lambda: tables.change_latency(server, lam, plan.latency_s), server)
                if "buckets" in self.selected:
                    self.progress(f"buckets: object put to function latency for {plan.latency_s:g} s")
                    self.attempt("buckets_latency", lambda: buckets.put_latency(server, lam, plan.latency_s), server)
                    megabytes = 1024 if plan.cold_samples >= 30 else 128
                    self.progress(f"buckets: aws s3 cp of {megabytes} MB up and down")
                    self.attempt("buckets_cp", lambda: buckets.cli_copy(server, megabytes), server)
                if "http" in self.selected:
                    self.progress(f"http: Squall's gateway at {HTTP_CONNECTIONS} connections")
                    self.attempt(
                        "http_gateway",
                        lambda: http_peers.squall_gateway(
                            server, lam, HTTP_CONNECTIONS, plan.http_seconds, self.progress
                        ),
                        server,
                    )
                if "workloads" in self.selected:
                    self._workloads(server)
                if "burst" in self.selected:
                    for size in plan.burst_sizes:
                        self.progress(f"burst: {size} invokes at once, each holding its sandbox")
                        key = "burst" if size == 500 else f"burst_{size}"
                        self.attempt(key, functools.partial(burst.burst, server, lam, size), server)
                if "memory" in self.selected:
                    for variant in capacity.VARIANTS:
                        self.progress(f"memory: USS and PSS of {plan.memory_sandboxes} idle warm sandboxes ({variant})")
                        self.attempt(
                            f"memory_{variant}",
                            functools.partial(capacity.idle_memory, server, lam, variant, plan.memory_sandboxes),
                            server,
                        )
                if "capacity" in self.selected:
                    self.progress(f"capacity: {plan.capacity_sandboxes} warm sandboxes, then MemAvailable")
                    self.attempt(
                        "capacity", functools.partial(capacity.capacity, server, lam, plan.capacity_sandboxes), server
                    )
                if "streams" in self.selected:
                    divisor = 5 if self.plan.cold_samples < 30 else 1
                    count = STREAM_PUT_RECORDS // divisor
                    self.progress(f"streams: {count} records with PutRecords alone, pre-signed then boto3")
                    self.attempt("streams_puts", lambda: streams.put_rates(server, count), server)
                    for batch, count in STREAM_RUNS:
                        self.progress(
                            f"streams: {count // divisor} records over 4 shards at batch size {batch}"
                            f" ({streams.PRODUCERS} producers; then the backlog again; then the ceiling loop)"
                        )
                        self.attempt(
                            f"streams_batch_{batch}",
                            functools.partial(streams.delivery, server, lam, batch, count // divisor),
                            server,
                        )
                    self.progress(f"streams: put-to-handler latency at 100 records/s for {plan.latency_s:g} s")
                    self.attempt("streams_latency", lambda: streams.latency(server, lam, plan.latency_s), server)
            finally:
                self.progress("stopping squall server (SIGTERM)")
                began = time.perf_counter()
                code = self.attempt("server_exit_code", server.stop, server)
                self.results["server_stop_s"] = round(time.perf_counter() - began, 3)
                if code not in (0, None):
                    self.errors["server_exit"] = f"squall server exited with {code}:\n{server.log_tail()}"


def _repeat(step: Callable[[], dict[str, Any]], runs: int, key: str) -> dict[str, Any]:
    """Run ``step`` ``runs`` times; every run's figures, and the summary of their ``key``."""
    done = [step() for _ in range(runs)]
    values = [float(run[key]) for run in done if run.get(key) is not None]
    return {"runs": done, key: Summary.of(values).as_dict()}


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def machine_info() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "root": hasattr(os, "geteuid") and os.geteuid() == 0,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def save(document: dict[str, Any], suffix: str, results_dir: Path = RESULTS_DIR) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    name = f"{document['date']}-{document['commit'] or 'nogit'}{suffix}.json"
    path = results_dir / name
    path.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
    return path


def parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples: a few minutes")
    parser.add_argument(
        "--only",
        action="append",
        choices=SCENARIOS,
        metavar="NAME",
        help=f"run only NAME ({', '.join(SCENARIOS)}); repeatable",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="print the change against the last committed results; flag regressions above 10%%",
    )
    parser.add_argument("--no-peers", action="store_true", help="skip MiniStack, Ray and chalice local (no installs)")
    parser.add_argument(
        "--markdown",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write BENCHMARKS.md and the plots (default: only for a full run of every scenario)",
    )
    parser.add_argument(
        "--output-root",
        type=Path,
        default=None,
        help="write results/, plots/ and BENCHMARKS.md under this directory instead of the repository",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    selected = list(dict.fromkeys(args.only or SCENARIOS))
    plan = Plan.for_run(args.quick)
    runner = Runner(plan, selected, no_peers=args.no_peers)
    now = datetime.now(UTC).astimezone()
    machine = machine_info()  # before the run: its load average says how busy the machine was
    mode = "quick" if args.quick else "full"
    runner.progress(f"squall benchmarks ({mode}{', no peers' if args.no_peers else ''}): {', '.join(runner.selected)}")
    runner.run()
    failed = {key: "failed: " + (why.strip().splitlines() or [""])[0][:200] for key, why in runner.errors.items()}
    missing = {**failed, **runner.not_run}
    if args.no_peers:
        for key in ("ministack_warm", "ministack_cold", "ministack_queue", "ministack_kinesis", "ray"):
            missing.setdefault(key, "peers skipped (--no-peers)")
    rows = build_rows(runner.results, runner.errors) + peer_rows(runner.results) + workload_rows(runner.results)
    rows += burst_rows(runner.results) + memory_rows(runner.results) + scaleout_rows(runner.results)
    rows += not_run_rows(runner.not_run)
    judged = goals.judge(runner.results, missing)
    print()
    print(render_table(rows))
    print()
    print(goals.render(judged))
    document = {
        "date": now.date().isoformat(),
        "timestamp": now.isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain")),
        "quick": args.quick,
        "scenarios": runner.selected,
        "plan": dataclasses.asdict(plan),
        "machine": {**machine, "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "wall_s": round(time.perf_counter() - runner.began, 1),
        "results": runner.results,
        "errors": runner.errors,
        "not_run": runner.not_run,
        "table": [row.as_dict() for row in rows],
        "goals": [goal.as_dict() for goal in judged],
    }
    changes = None
    if args.compare:
        changes = compare.compare(document, compare.committed_results(ROOT, RESULTS_DIR))
        print("\nchange against the last committed results:")
        print(compare.render(changes))
    root = args.output_root
    results_dir = RESULTS_DIR if root is None else root / "benchmarks" / "results"
    suffix = ("-quick" if args.quick else "") + ("" if args.only is None else "-" + "-".join(selected))
    path = save(document, suffix, results_dir)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"\nwrote {shown} ({document['wall_s']} s)")
    write_markdown = args.markdown if args.markdown is not None else (args.only is None and not args.quick)
    if write_markdown:
        md_path = MARKDOWN if root is None else root / "BENCHMARKS.md"
        plot_dir = PLOTS_DIR if root is None else root / "benchmarks" / "plots"
        from benchmarks import plots  # matplotlib: only when drawing

        drawn = plots.draw_all(runner.results, plot_dir)
        document["not_run"] = missing
        md_path.write_text(markdown.render(document, rows, judged, drawn, md_path, changes, path))
        print(f"wrote {md_path} and {len(drawn)} plot(s) in {plot_dir}")
    if changes and any(change.regression for change in changes):
        print("regressions above 10% against the last committed results (see above)", file=sys.stderr)
    if runner.errors:
        print(f"{len(runner.errors)} step(s) failed: {', '.join(runner.errors)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
