"""PNG plots of one run (matplotlib, headless): latency distributions (warm invokes as CDFs, cold
starts as box plots), HTTP throughput against connections, and drain/delivery rates side by side.

Each plot is drawn only from figures the run has; a plot with nothing to show is not written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.peer_report import HTTP_TARGETS


def _cdf(ax: Any, samples: list[float], label: str) -> None:
    ordered = sorted(samples)
    n = len(ordered)
    ax.plot(ordered, [(i + 1) / n for i in range(n)], label=f"{label} (n={n})")


def warm_latency(results: dict[str, Any], path: Path) -> bool:
    series: list[tuple[str, list[float]]] = []
    if results.get("warm_http", {}).get("raw_latency_ms"):
        series.append(("Squall, HTTP", results["warm_http"]["raw_latency_ms"]))
    for variant in ("silent", "printing"):
        raw = results.get("ministack_warm", {}).get(variant, {}).get("raw_http_ms")
        if raw:
            series.append((f"MiniStack, HTTP, {variant}", raw))
    ray = results.get("ray")
    if ray and ray.get("raw_task_ms"):
        series.append(("Ray no-op task", ray["raw_task_ms"]))
        series.append(("Ray actor call", ray["raw_actor_ms"]))
    if not series:
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, samples in series:
        _cdf(ax, samples, label)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of calls at or below")
    ax.set_title("Warm invoke latency: Squall against its peers")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def cold_starts(results: dict[str, Any], path: Path) -> bool:
    series: list[tuple[str, list[float]]] = []
    for key, label in (("cold_plain", "Squall, no imports"), ("cold_boto3", "Squall, import boto3")):
        raw = results.get(key, {}).get("raw", {}).get("cold_ms")
        if raw:
            series.append((label, raw))
    if results.get("ministack_cold", {}).get("raw"):
        series.append(("MiniStack", results["ministack_cold"]["raw"]))
    if not series:
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.boxplot([s for _, s in series], tick_labels=[label for label, _ in series], whis=(0, 100))
    ax.set_yscale("log")
    ax.set_ylabel("first invoke of a new function (ms, log scale)")
    ax.set_title("Cold start latency")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def http_curves(results: dict[str, Any], path: Path) -> bool:
    drawn = False
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, label in HTTP_TARGETS:
        curve = results.get(key)
        if not curve:
            continue
        counts = sorted(curve, key=int)
        ax.plot([int(c) for c in counts], [curve[c]["requests_per_s"]["p50"] for c in counts], marker="o", label=label)
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("keep-alive connections")
    ax.set_ylabel("requests/s (median of 1 s windows, log scale)")
    ax.set_title("HTTP throughput, hello-world route")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def delivery_rates(results: dict[str, Any], path: Path) -> bool:
    bars: list[tuple[str, float]] = []
    if results.get("queue_drain"):
        bars.append(("Squall queue\nbatch 100", results["queue_drain"]["msgs_per_s"]["p50"]))
    if results.get("ministack_queue"):
        bars.append(("MiniStack queue\nbatch 100", results["ministack_queue"]["msgs_per_s"]["p50"]))
    for batch in (100, 1000):
        run = results.get(f"streams_batch_{batch}")
        if run:
            bars.append((f"Squall stream\nbatch {batch}", run["records_per_s"]))
            if run.get("ceiling_records_per_s"):
                bars.append((f"stream ceiling\nbatch {batch}", run["ceiling_records_per_s"]))
    if results.get("ministack_kinesis", {}).get("records_per_s"):
        bars.append(("MiniStack Kinesis\nbatch 100", results["ministack_kinesis"]["records_per_s"]))
    if throughput := results.get("throughput"):
        bars.append(("Squall sync invokes\n8 clients", throughput["invokes_per_s"]["p50"]))
    if not bars:
        return False
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.bar(range(len(bars)), [v for _, v in bars])
    ax.set_xticks(range(len(bars)), [label for label, _ in bars], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("records (or invokes) per second, log scale")
    ax.set_title("Throughput: queues, streams, sync invokes")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


PLOTS = (
    ("warm-latency.png", "Warm invoke latency (CDF)", warm_latency),
    ("cold-start.png", "Cold start latency", cold_starts),
    ("http-throughput.png", "HTTP requests/s against connections", http_curves),
    ("delivery-rates.png", "Queue, stream and invoke rates", delivery_rates),
)


def draw_all(results: dict[str, Any], directory: Path) -> list[tuple[str, Path]]:
    """Write every plot the results allow into ``directory``; (title, path) of each written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, title, draw in PLOTS:
        target = directory / name
        if draw(results, target):
            written.append((title, target))
        elif target.exists():
            target.unlink()  # a stale plot of an earlier run would be read as this one's
    return written
