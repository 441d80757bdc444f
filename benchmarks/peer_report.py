"""Table rows for the peers, the HTTP curves, the queue drain and the workloads, next to Squall's own
figures, and a "not run: <why>" row for each peer or scenario that could not run."""

from __future__ import annotations

from typing import Any

from benchmarks.report import Row, _latency_row
from benchmarks.stats import fmt_ms

HTTP_TARGETS = (
    ("http_gateway", "Squall gateway (HTTP API -> function)"),
    ("http_chalice", "chalice local"),
    ("http_ceiling", "ceiling: raw uvloop server -> warm worker"),
)


def _rate_summary(summary: dict[str, Any], unit: str) -> str:
    return f"{summary['p50']:,.0f}{unit}"


def _drain_row(label: str, run: dict[str, Any]) -> Row:
    rates = run["msgs_per_s"]
    last = run["runs"][-1]
    return Row(
        label,
        _rate_summary(rates, "/s"),
        f"min {rates['min']:,.0f}, max {rates['max']:,.0f} over {rates['n']} runs of {last['messages']} msgs; "
        f"median batch {last['median_batch']}; first batch {last['first_batch_after_s']:.2f} s after create",
    )


def peer_rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    warm = results.get("ministack_warm")
    if warm:
        for variant in ("silent", "printing"):
            if variant in warm:
                rows.append(
                    _latency_row(f"MiniStack warm invoke over HTTP, {variant} handler", warm[variant]["http_ms"])
                )
                rows.append(_latency_row(f"  MiniStack via boto3, {variant}", warm[variant]["boto3_ms"]))
    cold = results.get("ministack_cold")
    if cold:
        rows.append(_latency_row("MiniStack cold start (first invoke)", cold["cold_ms"], "iqr"))
        rows.append(_latency_row("  MiniStack CreateFunction -> Active", cold["create_ms"], "iqr"))
    for key, label in (("queue_drain", "Squall queue drain, batch 100 (msgs/s)"),
                       ("queue_drain_batch10", "Squall queue drain, batch 10 (msgs/s)"),
                       ("ministack_queue", "MiniStack queue drain, batch 100 (msgs/s)")):  # fmt: skip
        if results.get(key):
            rows.append(_drain_row(label, results[key]))
    kinesis = results.get("ministack_kinesis")
    if kinesis:
        rows.append(
            Row(
                f"MiniStack Kinesis delivery, batch {kinesis['batch_size']}, backlog (records/s)",
                f"{kinesis['records_per_s']:,.0f}/s",
                f"{kinesis['records']} records over 4 shards, {kinesis['batches']} batches",
            )
        )
    ray = results.get("ray")
    if ray:
        rows.append(_latency_row(f"Ray {ray['ray_version']}: no-op task round trip", ray["task_ms"]))
        rows.append(_latency_row("  Ray actor method call round trip", ray["actor_ms"]))
    for key, label in HTTP_TARGETS:
        curve = results.get(key)
        if not curve:
            continue
        for count, run in curve.items():
            rate = run["requests_per_s"]
            spread = f"min {rate['min']:,.0f}, max {rate['max']:,.0f}/s over {rate['n']} s"
            if run["errors"]:
                spread += f"; {run['errors']} errors"
            rows.append(Row(f"HTTP req/s, {count} connections: {label}", _rate_summary(rate, "/s"), spread))
    return rows


def workload_rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    labels = (
        ("workload_bfs", "graph BFS"),
        ("workload_gzip", "gzip of 64 KiB objects"),
        ("workload_etl", "JSON ETL over stream records"),
        ("workload_html", "jinja2 HTML page"),
    )
    for key, label in labels:
        run = results.get(key)
        if not run:
            continue
        cost = (
            f"{run['gb_seconds']:.3f} GB-s for {run['requests']} invocations ({run['gb_seconds_per_request']:.6f} each)"
        )
        if key == "workload_bfs":
            figure, spread = fmt_ms(run["latency_ms"]["p50"]), f"p99 {fmt_ms(run['latency_ms']['p99'])}"
        elif key == "workload_gzip":
            figure, spread = f"{run['mb_per_s']:.1f} MB/s", f"{run['objects']} objects, ratio {run['ratio']:.2f}"
        elif key == "workload_etl":
            figure, spread = f"{run['records_per_s']:,.0f}/s", f"{run['records']} records, {run['batches']} batches"
        else:
            figure, spread = f"{run['requests_per_s']['p50']:,.0f} req/s", f"{run['connections']} connections"
        rows.append(Row(f"workload: {label} ({run['trigger']})", figure, f"{spread}; {cost}"))
    return rows


def burst_rows(results: dict[str, Any]) -> list[Row]:
    rows = []
    for key in ("burst_100", "burst", "burst_1000"):
        run = results.get(key)
        if not run:
            continue
        starts = run["starts_s"]
        spread = (
            f"{run['succeeded']}/{run['concurrency']} ran; starts p50 {starts['p50']:.2f} s after the first request; "
            f"all answered after {run['all_answered_s']:.1f} s (each holds {run['hold_s']:g} s)"
        )
        if run["errors"]:
            spread += f"; {run['errors']} errors, e.g. {run['first_errors'][0][:80]}"
        rows.append(Row(f"burst to {run['concurrency']}: last handler start", f"{run['last_start_s']:.2f} s", spread))
    return rows


def memory_rows(results: dict[str, Any]) -> list[Row]:
    """Idle warm sandbox memory (per function kind) and the machine's warm-sandbox capacity."""
    rows = []
    for key, label in (("memory_plain", "no imports"), ("memory_boto3", "import boto3")):
        run = results.get(key)
        if not run:
            continue
        uss, pss, charge = run["uss_mb"], run["pss_mb"], run["cgroup_mb"]
        spread = (
            f"USS min-max {uss['min']:.2f}-{uss['max']:.2f} MB; PSS p50 {pss['p50']:.2f} MB; cgroup charge p50 "
            f"{charge['p50']:.2f} MB; {run['sandboxes']} sandboxes, goal <= {run['goal_uss_mb']:g} MB USS"
        )
        rows.append(Row(f"idle warm sandbox USS ({label})", f"{uss['p50']:.2f} MB", spread))
    run = results.get("capacity")
    if run:
        spread = (
            f"{run['method']}: {run['per_sandbox_mb']:.2f} MB of MemAvailable each "
            f"({run['mem_available_after_mb']:,} MB left); by USS alone {run['sandboxes_by_uss']:,}; "
            f"server + zygotes USS {run['server_overhead']['uss_mb']:.0f} MB"
        )
        rows.append(Row("warm sandboxes this machine holds", f"{run['sandboxes']:,}", spread))
    return rows


def not_run_rows(missing: dict[str, str]) -> list[Row]:
    return [Row(key, "", f"not run: {why}"[:160], "", "not run") for key, why in missing.items()]


SCALEOUT_VARIANTS = (
    ("scaleout_local", "1 embedded server (local executor)"),
    ("scaleout_ray_1", "1 ray-tier server, 3 Ray nodes"),
    ("scaleout_ray_2", "2 ray-tier servers, 3 Ray nodes"),
)


def scaleout_rows(results: dict[str, Any]) -> list[Row]:
    """Invokes/s of the 50 ms function through each variant, the Ray task floor and the store's cost."""
    rows: list[Row] = []
    for key, label in SCALEOUT_VARIANTS:
        run = results.get(key)
        if not run:
            continue
        lat = run["latency_ms"]
        spread = f"latency p50 {fmt_ms(lat['p50'])}, p99 {fmt_ms(lat['p99'])}; ideal {run['ideal_per_s']:,.0f}/s"
        cpu = run.get("cpu_ms_per_invocation")
        if cpu:
            spread += f"; CPU per invocation: server {cpu['servers']:.2f} ms, whole machine {cpu['machine']:.2f} ms"
        if run["servers"] > 1:
            spread += f"; answered per server {'/'.join(str(n) for n in run['answered_per_server'])}"
        if run["errors"]:
            spread += f"; {run['errors']} errors"
        rate = f"{run['invokes_per_s']['p50']:,.0f}/s"
        rows.append(Row(f"scale-out, 50 ms sleep x {run['clients']} clients: {label}", rate, spread))
    for key, what in (("scaleout_ray_tasks", "plain Ray tasks"), ("scaleout_ray_actors", "Ray actor calls")):
        tasks = results.get(key)
        if not tasks:
            continue
        lat = tasks["latency_ms"]
        rows.append(
            Row(
                f"  floor: {what} sleeping 50 ms, {tasks['in_flight']} in flight (calls/s)",
                f"{tasks['calls_per_s']['p50']:,.0f}/s",
                f"latency p50 {fmt_ms(lat['p50'])}, p99 {fmt_ms(lat['p99'])}; ideal {tasks['ideal_per_s']:,.0f}/s",
            )
        )
    store = results.get("scaleout_store")
    if store:
        written = results.get("scaleout_rows") or {}
        usage, logs = written.get("usage_rows_per_invocation", "?"), written.get("log_rows_per_invocation", "?")
        per = f"{usage} usage, {logs} log, {written.get('stored_bytes_per_invocation', '?')} bytes stored"
        for size, batch in store["batches"].items():
            cpu = batch["backend_cpu_us_per_invocation"]
            rows.append(
                Row(
                    f"  shared store per invocation, batches of {size} (PostgreSQL CPU)",
                    "n/a" if cpu is None else f"{cpu:,.0f} us",
                    f"wall {batch['wall_us_per_invocation']:,.0f} us; one connection "
                    f"{batch['invocations_per_s_one_connection']:,.0f} invocations/s; rows per invocation: {per}",
                )
            )
    return rows
