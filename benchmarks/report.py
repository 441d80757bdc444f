"""The results table: one row per figure, with its goal, a verdict and a ratio against the floor."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.stats import fmt_ms, fmt_us

#: Goals from the issue: platform overhead of a warm invoke over HTTP, and cold starts (p50).
GOAL_WARM_OVERHEAD_MS = 1.0
GOAL_COLD_PLAIN_MS = 10.0
GOAL_COLD_BOTO3_MS = 15.0
#: Goals from the streams issue: records/s from put to handler at batch 1000, latency p50 at 100 records/s.
GOAL_STREAM_RECORDS_PER_S = 100_000
GOAL_STREAM_LATENCY_MS = 5.0

HEADERS = ("scenario", "p50", "p99 / spread", "goal", "verdict", "vs floor")


@dataclass(frozen=True)
class Row:
    scenario: str
    p50: str
    spread: str
    goal: str = ""
    verdict: str = ""
    floor: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def cells(self) -> tuple[str, ...]:
        return (self.scenario, self.p50, self.spread, self.goal, self.verdict, self.floor)


def _verdict(value: float, goal: float) -> str:
    if math.isnan(value):
        return "n/a"
    return "PASS" if value <= goal else f"FAIL ({value / goal:.1f}x)"


def _ratio(value: float, base: float | None, label: str) -> str:
    if base is None or math.isnan(value) or not base:
        return ""
    ratio = value / base
    text = f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"
    return f"{text} {label}"


def _p99(summary: dict[str, Any]) -> str:
    return f"p99 {fmt_ms(summary['p99'])}"


def _iqr(summary: dict[str, Any]) -> str:
    return f"IQR {fmt_ms(summary['q1'])}..{fmt_ms(summary['q3'])}, max {fmt_ms(summary['max'])}"


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _latency_row(label: str, summary: dict[str, Any], spread: str = "p99", **extra: str) -> Row:
    """A row for one latency series: p50, then its p99 or (for few samples) IQR and max."""
    text = _p99(summary) if spread == "p99" else _iqr(summary)
    return Row(label, fmt_ms(_nan(summary["p50"])), text, **extra)


def _floor_rows(base: dict[str, Any]) -> list[Row]:
    rows = []
    for key, label, fmt in (
        ("pipe_rtt_ms", "floor: pipe round trip, warm processes", fmt_us),
        ("fork_waitpid_ms", "floor: fork + waitpid, small process", fmt_ms),
        ("python_bare_ms", "floor: fresh `python -c pass`", fmt_ms),
        ("python_import_boto3_ms", "floor: fresh `python -c 'import boto3'`", fmt_ms),
    ):
        s = base[key]
        rows.append(Row(label, fmt(s["p50"]), f"p99 {fmt(s['p99'])}"))
    return rows


def _cold_rows(results: dict[str, Any], fork: float | None, fresh_boto3: float | None) -> list[Row]:
    rows = []
    for variant, label, goal, base, base_label in (
        ("plain", "no imports", GOAL_COLD_PLAIN_MS, fork, "fork"),
        ("boto3", "import boto3", GOAL_COLD_BOTO3_MS, fresh_boto3, "fresh py+boto3"),
    ):
        cold = results.get(f"cold_{variant}")
        if not cold:
            continue
        p50 = _nan(cold["cold_ms"]["p50"])
        rows.append(
            _latency_row(
                f"cold start, {label}: client latency",
                cold["cold_ms"],
                "iqr",
                goal=f"<= {goal:g} ms",
                verdict=_verdict(p50, goal),
                floor=_ratio(p50, base, base_label),
            )
        )
        rows.append(_latency_row("  Init Duration (REPORT)", cold["init_ms"], "iqr"))
        rows.append(_latency_row("  cold minus warm", cold["penalty_ms"], "iqr"))
        rows.append(_latency_row("  CreateFunction -> Active", cold["create_ms"], "iqr"))
    return rows


def _warm_rows(results: dict[str, Any], pipe: float | None) -> list[Row]:
    rows = []
    http = results.get("warm_http")
    inproc = results.get("in_process")
    if http:
        lat = http["latency_ms"]
        rows.append(_latency_row("warm invoke over HTTP: latency", lat, floor=_ratio(_nan(lat["p50"]), pipe, "pipe")))
        over = http["overhead_ms"]
        rows.append(
            _latency_row(
                "  overhead: latency - REPORT Duration",
                over,
                goal=f"<= {GOAL_WARM_OVERHEAD_MS:g} ms",
                verdict=_verdict(_nan(over["p50"]), GOAL_WARM_OVERHEAD_MS),
            )
        )
        dur = http["report_duration_ms"]
        rows.append(
            _latency_row("  REPORT Duration (sandbox round trip)", dur, floor=_ratio(_nan(dur["p50"]), pipe, "pipe"))
        )
    boto = results.get("warm_boto3")
    if boto:
        rows.append(_latency_row("warm invoke via boto3 (reference)", boto["latency_ms"]))
    bash = results.get("warm_provided")
    if bash:
        rows.append(_latency_row("warm invoke, bash provided.al2023 (Runtime API)", bash["latency_ms"]))
        rows.append(_latency_row("  REPORT Duration (runtime round trip)", bash["report_duration_ms"]))
    client = results.get("warm_provided_client")
    if client:
        rows.append(_latency_row("warm invoke, keep-alive Runtime API client (provided)", client["latency_ms"]))
        rows.append(_latency_row("  REPORT Duration (runtime round trip)", client["report_duration_ms"]))
    node = results.get("warm_node")
    if node:
        rows.append(_latency_row("warm invoke, nodejs20.x (Runtime API)", node["latency_ms"]))
        rows.append(_latency_row("  REPORT Duration (runtime round trip)", node["report_duration_ms"]))
    if inproc:
        lat = inproc["latency_ms"]
        rows.append(
            _latency_row("warm invoke in-process (Platform.invoke)", lat, floor=_ratio(_nan(lat["p50"]), pipe, "pipe"))
        )
        rows.append(_latency_row("  overhead: latency - REPORT Duration", inproc["overhead_ms"]))
        if http:
            layer = _nan(http["latency_ms"]["p50"]) - _nan(lat["p50"])
            rows.append(Row("  HTTP API layer (HTTP p50 - in-process p50)", fmt_ms(layer), ""))
    return rows


def _throughput_rows(tput: dict[str, Any]) -> list[Row]:
    rate = tput["invokes_per_s"]
    lat = tput["latency_ms"]
    spread = (
        f"min {rate['min']:.0f}, max {rate['max']:.0f}/s; latency p50 {fmt_ms(lat['p50'])}, p99 {fmt_ms(lat['p99'])}"
    )
    if tput["errors"]:
        spread += f"; {tput['errors']} errors"
    return [Row(f"throughput, {tput['clients']} clients (invokes/s)", f"{rate['p50']:.0f}/s", spread)]


def _at_least(value: float, goal: float) -> str:
    if math.isnan(value):
        return "n/a"
    return "PASS" if value >= goal else f"FAIL ({goal / value:.1f}x)"


def _stream_rows(results: dict[str, Any]) -> list[Row]:
    rows = []
    puts = results.get("streams_puts")
    if puts:
        rows.append(
            Row(
                "stream puts alone: PutRecords, 500 a call (records/s)",
                f"{puts['presigned_records_per_s']:.0f}/s",
                f"{puts['records']} records, {puts['producers']} producers sending pre-signed requests; "
                f"with boto3 clients {puts['boto3_records_per_s']:.0f}/s",
            )
        )
    runs = sorted((v for k, v in results.items() if k.startswith("streams_batch_")), key=lambda r: r["batch_size"])
    for run in runs:
        judged = run["batch_size"] == 1000
        rows.append(
            Row(
                f"stream delivery, batch {run['batch_size']}: end to end (records/s)",
                f"{run['records_per_s']:.0f}/s",
                f"{run['records']} records over {run['shards']} shards in {run['seconds']:.2f} s",
                f">= {GOAL_STREAM_RECORDS_PER_S}/s" if judged else "",
                _at_least(run["records_per_s"], GOAL_STREAM_RECORDS_PER_S) if judged else "",
            )
        )
        if "put_records_per_s" not in run:
            continue  # a result file from before the split figures
        rows.append(
            Row(
                "  puts, while delivering",
                f"{run['put_records_per_s']:.0f}/s",
                f"{run['producers']} producers, pre-signed, {run['put_seconds']:.2f} s",
            )
        )
        rows.append(
            Row(
                "  delivery of the same records as a backlog",
                f"{run['backlog_records_per_s']:.0f}/s",
                f"{run['backlog_records_after_first_batch']} records in {run['backlog_seconds']:.2f} s after the "
                f"first batch (TRIM_HORIZON; first batch {run['backlog_start_seconds']:.2f} s after create)",
                floor=f"{run['fraction_of_ceiling']:.0%} of ceiling",
            )
        )
        rows.append(
            Row(
                "  ceiling: SQLite read + event + warm sandbox",
                f"{run['ceiling_records_per_s']:.0f}/s",
                f"{run['ceiling_invokes']} invokes in one sandbox, {run['ceiling_seconds']:.2f} s",
            )
        )
    lat = results.get("streams_latency")
    if lat:
        summary = lat["latency_ms"]
        p50 = _nan(summary["p50"])
        rows.append(
            Row(
                f"stream put-to-handler latency at {lat['rate_per_s']}/s",
                fmt_ms(p50),
                f"p99 {fmt_ms(summary['p99'])}; {lat['records']} records at {lat['achieved_rate_per_s']:.0f}/s",
                f"<= {GOAL_STREAM_LATENCY_MS:g} ms",
                _verdict(p50, GOAL_STREAM_LATENCY_MS),
            )
        )
    return rows


def _table_rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    ops = results.get("tables_ops")
    if ops:
        for op, rate in ops["ops_per_s"].items():
            alone = ops["client_alone_ops_per_s"][op]
            share = ops["server_share"][op]
            rows.append(Row(f"table {op}, one boto3 client (ops/s)", f"{rate:,.0f}/s", f"boto3 alone {alone:,.0f}/s",
                            floor=f"server {share:.0%} of each call"))  # fmt: skip
    latency = results.get("buckets_latency")
    if latency:
        rows.append(_latency_row(f"object put to function at {latency['rate_per_s']}/s", latency["latency_ms"]))
    copy = results.get("buckets_cp")
    if copy:
        rows.append(Row(f"aws s3 cp, {copy['megabytes']} MB (MB/s up)", f"{copy['up_mb_per_s']:,.0f}",
                        f"down {copy['down_mb_per_s']:,.0f} MB/s"))  # fmt: skip
    latency = results.get("tables_latency")
    if latency:
        rows.append(_latency_row(f"table change to function at {latency['rate_per_s']}/s", latency["latency_ms"]))
    return rows


def build_rows(results: dict[str, Any], errors: dict[str, str]) -> list[Row]:
    """The table's rows for whatever ran, then one per failed step."""
    rows: list[Row] = []
    base = results.get("floor")
    if base:
        rows += _floor_rows(base)
    rows += _cold_rows(
        results,
        base["fork_waitpid_ms"]["p50"] if base else None,
        base["python_import_boto3_ms"]["p50"] if base else None,
    )
    rows += _warm_rows(results, base["pipe_rtt_ms"]["p50"] if base else None)
    if results.get("throughput"):
        rows += _throughput_rows(results["throughput"])
    rows += _stream_rows(results)
    rows += _table_rows(results)
    for key, message in errors.items():
        first = message.strip().splitlines()[0] if message.strip() else "failed"
        rows.append(Row(f"ERROR {key}", "", first[:100], "", "ERROR"))
    return rows


def render_table(rows: list[Row]) -> str:
    widths = [max(len(cells[i]) for cells in [HEADERS, *(row.cells() for row in rows)]) for i in range(6)]
    lines = ["  ".join(text.ljust(width) for text, width in zip(HEADERS, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    for row in rows:
        lines.append("  ".join(text.ljust(width) for text, width in zip(row.cells(), widths, strict=True)).rstrip())
    return "\n".join(lines)
