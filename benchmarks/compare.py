"""``--compare``: each headline figure of this run against the last committed results that have it, with
any change for the worse above ``THRESHOLD`` flagged as a regression.

"Committed" means the JSON files under ``benchmarks/results/`` as they are in git's HEAD (read with
``git show``, so an uncommitted edit does not count); among those, the newest (by its ``timestamp``)
of the same kind (``--quick`` or full) that has the figure is the baseline, else the newest of any kind.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THRESHOLD = 0.10

#: (name, path into ``results``, higher is better)
METRICS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("cold start p50, no imports (ms)", ("cold_plain", "cold_ms", "p50"), False),
    ("cold start p50, import boto3 (ms)", ("cold_boto3", "cold_ms", "p50"), False),
    ("warm invoke over HTTP p50 (ms)", ("warm_http", "latency_ms", "p50"), False),
    ("warm invoke overhead p50 (ms)", ("warm_http", "overhead_ms", "p50"), False),
    ("warm invoke in-process p50 (ms)", ("in_process", "latency_ms", "p50"), False),
    ("sync invokes/s, 8 clients", ("throughput", "invokes_per_s", "p50"), True),
    ("stream delivery batch 1 (records/s)", ("streams_batch_1", "records_per_s"), True),
    ("stream delivery batch 100 (records/s)", ("streams_batch_100", "records_per_s"), True),
    ("stream delivery batch 1000 (records/s)", ("streams_batch_1000", "records_per_s"), True),
    ("stream put-to-handler latency p50 (ms)", ("streams_latency", "latency_ms", "p50"), False),
    ("queue drain batch 100 (msgs/s)", ("queue_drain", "msgs_per_s", "p50"), True),
    ("gateway req/s, 64 connections", ("http_gateway", "64", "requests_per_s", "p50"), True),
)


@dataclass(frozen=True)
class Change:
    """One figure now and in the baseline: ``change`` is (now - before) / before, and ``worse`` the
    fraction it got worse by, whichever way is worse for it (< 0: it got better)."""

    metric: str
    now: float
    before: float
    baseline: str
    change: float
    worse: float

    @property
    def regression(self) -> bool:
        return self.worse > THRESHOLD


def _value(results: dict[str, Any], path: tuple[str, ...]) -> float | None:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if not isinstance(node, int | float) or math.isnan(node):
        return None
    return float(node)


def committed_results(root: Path, results_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) of every results file in git's HEAD under ``results_dir``."""
    try:
        relative = results_dir.resolve().relative_to(root.resolve())
        listing = subprocess.run(
            ["git", "ls-tree", "-r", "--name-only", "HEAD", "--", str(relative)],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.split()
    except (OSError, ValueError, subprocess.SubprocessError):
        return []
    documents = []
    for path in listing:
        if not path.endswith(".json"):
            continue
        shown = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=root, capture_output=True, text=True, check=False)
        try:
            documents.append((Path(path).name, json.loads(shown.stdout)))
        except json.JSONDecodeError:
            continue
    return documents


def compare(current: dict[str, Any], baselines: list[tuple[str, dict[str, Any]]]) -> list[Change]:
    """Every headline figure of ``current`` that some baseline also has, against the best-matching one."""
    ordered = sorted(baselines, key=lambda item: str(item[1].get("timestamp", "")), reverse=True)
    same_kind = [item for item in ordered if bool(item[1].get("quick")) == bool(current.get("quick"))]
    changes: list[Change] = []
    for name, path, higher_better in METRICS:
        now = _value(current.get("results", {}), path)
        if now is None:
            continue
        for file_name, document in [*same_kind, *ordered]:
            before = _value(document.get("results", {}), path)
            if before is None or before == 0:
                continue
            change = (now - before) / before
            changes.append(Change(name, now, before, file_name, change, -change if higher_better else change))
            break
    return changes


def render(changes: list[Change]) -> str:
    """Plain text, one line a figure, regressions marked."""
    if not changes:
        return "no committed results to compare with"
    lines = []
    for c in changes:
        flag = "REGRESSION" if c.regression else ("better" if c.worse < -THRESHOLD else "")
        lines.append(
            f"{c.metric:<42} {c.now:>12,.3f}  was {c.before:>12,.3f}  {c.change:+7.1%} {flag:<10} ({c.baseline})"
        )
    return "\n".join(lines)


def render_markdown(changes: list[Change]) -> str:
    lines = ["| figure | now | before | change | | baseline |", "|---|---|---|---|---|---|"]
    for c in changes:
        flag = "**REGRESSION**" if c.regression else ""
        lines.append(f"| {c.metric} | {c.now:,.3f} | {c.before:,.3f} | {c.change:+.1%} | {flag} | {c.baseline} |")
    return "\n".join(lines)
