"""``make bench``: start a Squall server of our own, measure cold starts, warm invokes (HTTP, boto3,
in-process) and throughput against the floor the machine sets, print a table, save the figures.

    python -m benchmarks.run [--quick] [--only NAME ...]

NAME is one of: floor, cold, warm-http, in-process, throughput, streams.
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

from benchmarks import floor, scenarios, streams
from benchmarks.harness import (
    BOTO3_SOURCE,
    PLAIN_SOURCE,
    ServerProcess,
    build_zip,
    create_function,
)
from benchmarks.report import build_rows, render_table
from benchmarks.stats import Summary

SCENARIOS = ("floor", "cold", "warm-http", "in-process", "throughput", "streams")
SERVER_SCENARIOS = {"cold", "warm-http", "throughput", "streams"}
#: (batch size, records) of the stream delivery runs; --quick divides the records by 5.
STREAM_RUNS = ((1, 2_000), (100, 20_000), (1000, 50_000))
#: Records of the PutRecords-alone run (each client kind), divided by 5 too.
STREAM_PUT_RECORDS = 20_000
ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
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

    @classmethod
    def for_run(cls, quick: bool) -> Plan:
        if quick:
            return cls(8, 2, 200, 20, 100, 10, 200, 20, 8, 2, 0.5, 10_000, 100, 5, 3.0)
        return cls(30, 3, 2000, 100, 500, 50, 2000, 100, 8, 5, 1.0, 10_000, 200, 10, 10.0)


class Runner:
    """Runs the selected scenarios, keeping going past a failed one, and collects the results."""

    def __init__(self, plan: Plan, selected: list[str]) -> None:
        self.plan = plan
        self.selected = selected
        self.results: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
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
        if SERVER_SCENARIOS & set(self.selected):
            self._with_server()

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
                if "throughput" in self.selected and "warm_function" not in self.errors:
                    self.progress(f"throughput: {plan.clients} clients for {plan.throughput_s} s")
                    self.attempt(
                        "throughput",
                        lambda: scenarios.throughput(
                            server, WARM_FUNCTION, plan.clients, plan.throughput_s, plan.throughput_warmup_s
                        ),
                        server,
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


def save(document: dict[str, Any], suffix: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    name = f"{document['date']}-{document['commit'] or 'nogit'}{suffix}.json"
    path = RESULTS_DIR / name
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples: under a minute")
    parser.add_argument(
        "--only",
        action="append",
        choices=SCENARIOS,
        metavar="NAME",
        help=f"run only NAME ({', '.join(SCENARIOS)}); repeatable",
    )
    args = parser.parse_args(argv)
    selected = list(dict.fromkeys(args.only or SCENARIOS))
    plan = Plan.for_run(args.quick)
    runner = Runner(plan, selected)
    now = datetime.now(UTC).astimezone()
    machine = machine_info()  # before the run: its load average says how busy the machine was
    runner.progress(f"squall benchmarks ({'quick' if args.quick else 'full'}): {', '.join(selected)}")
    runner.run()
    rows = build_rows(runner.results, runner.errors)
    print()
    print(render_table(rows))
    document = {
        "date": now.date().isoformat(),
        "timestamp": now.isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain")),
        "quick": args.quick,
        "scenarios": selected,
        "plan": dataclasses.asdict(plan),
        "machine": {**machine, "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "wall_s": round(time.perf_counter() - runner.began, 1),
        "results": runner.results,
        "errors": runner.errors,
        "table": [row.as_dict() for row in rows],
    }
    suffix = ("-quick" if args.quick else "") + ("" if args.only is None else "-" + "-".join(selected))
    path = save(document, suffix)
    print(f"\nwrote {path.relative_to(ROOT)} ({document['wall_s']} s)")
    if runner.errors:
        print(f"{len(runner.errors)} step(s) failed: {', '.join(runner.errors)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
