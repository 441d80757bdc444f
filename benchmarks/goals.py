"""The issue's goals table: each goal beside the result it is judged on, PASS or FAIL, ratios first.

A goal whose figures are missing (a scenario not selected, a peer that did not run) says so:
"not run: <why>", never a verdict on a guessed number.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.stats import fmt_ms

GATEWAY_CONNECTIONS = "64"


@dataclass(frozen=True)
class Goal:
    """One line of the goals table."""

    scenario: str
    goal: str
    result: str
    verdict: str  # PASS, FAIL, or "not run: <why>"
    ratio: bool  # a ratio against a peer or a ceiling (printed first: robust on a noisy machine)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


class _Judge:
    def __init__(self, results: dict[str, Any], missing: dict[str, str]) -> None:
        self.results = results
        self.missing = missing
        self.goals: list[Goal] = []

    def why(self, *keys: str) -> str:
        for key in keys:
            if key in self.missing:
                return f"not run: {self.missing[key]}"
        absent = [key for key in keys if key not in self.results]
        return f"not run: {', '.join(absent) or 'no figure'} not in this run"

    def at_most(self, scenario: str, goal: float, value: Any, keys: tuple[str, ...], unit: str = "ms") -> None:
        number = _number(value)
        text = f"<= {goal:g} {unit}"
        if number is None:
            self.goals.append(Goal(scenario, text, "", self.why(*keys), False))
            return
        result = fmt_ms(number) if unit == "ms" else f"{number:.2f} {unit}"
        self.goals.append(Goal(scenario, text, result, "PASS" if number <= goal else "FAIL", False))

    def at_least(self, scenario: str, goal: float, value: Any, keys: tuple[str, ...], unit: str = "/s") -> None:
        number = _number(value)
        text = f">= {goal:,.0f}{unit}"
        if number is None:
            self.goals.append(Goal(scenario, text, "", self.why(*keys), False))
            return
        self.goals.append(Goal(scenario, text, f"{number:,.0f}{unit}", "PASS" if number >= goal else "FAIL", False))

    def ratio(self, scenario: str, goal: float, ours: Any, theirs: Any, keys: tuple[str, ...], how: str) -> None:
        """``ours / theirs`` must be at least ``goal`` (callers orient the pair so bigger is better)."""
        a, b = _number(ours), _number(theirs)
        text = f">= {goal:g}{how}"
        if a is None or b is None or b == 0:
            self.goals.append(Goal(scenario, text, "", self.why(*keys), True))
            return
        value = a / b
        shown = f"{value:.2f}x" if value < 10 else f"{value:.1f}x"
        self.goals.append(Goal(scenario, text, shown, "PASS" if value >= goal else "FAIL", True))


def judge(results: dict[str, Any], missing: dict[str, str]) -> list[Goal]:
    """Every goal of the issue, ratios first. ``missing`` maps result keys to why they are absent."""
    j = _Judge(results, missing)
    http_p50 = _get(results, "warm_http", "latency_ms", "p50")
    ministack_p50 = _get(results, "ministack_warm", "silent", "http_ms", "p50")
    j.ratio(
        "warm invoke p50 over HTTP vs MiniStack (silent handler)",
        20,
        ministack_p50,
        http_p50,
        ("warm_http", "ministack_warm"),
        "x faster than MiniStack",
    )
    gateway = _get(results, "http_gateway", GATEWAY_CONNECTIONS, "requests_per_s", "p50")
    j.ratio(
        "gateway req/s at 64 connections vs the raw ceiling",
        0.5,
        gateway,
        _get(results, "http_ceiling", GATEWAY_CONNECTIONS, "requests_per_s", "p50"),
        ("http_gateway", "http_ceiling"),
        "x the raw uvloop ceiling",
    )
    j.ratio(
        "gateway req/s at 64 connections vs chalice local",
        10,
        gateway,
        _get(results, "http_chalice", GATEWAY_CONNECTIONS, "requests_per_s", "p50"),
        ("http_gateway", "http_chalice"),
        "x chalice local",
    )
    stream = _get(results, "streams_batch_1000")
    j.ratio(
        "stream records/s end to end, batch 1000, vs the ceiling",
        0.25,
        _get(results, "streams_batch_1000", "records_per_s"),
        stream.get("ceiling_records_per_s") if stream else None,
        ("streams_batch_1000",),
        "x the SQLite-read + warm-worker ceiling",
    )
    j.ratio(
        "queue drain msgs/s, batch 100, vs MiniStack",
        25,
        _get(results, "queue_drain", "msgs_per_s", "p50"),
        _get(results, "ministack_queue", "msgs_per_s", "p50"),
        ("queue_drain", "ministack_queue"),
        "x MiniStack",
    )
    j.at_most("warm invoke overhead over HTTP (latency - REPORT Duration), p50", 1.0,
              _get(results, "warm_http", "overhead_ms", "p50"), ("warm_http",))  # fmt: skip
    j.at_most("cold start p50, no imports", 10.0, _get(results, "cold_plain", "cold_ms", "p50"), ("cold_plain",))
    j.at_most("cold start p50, import boto3", 15.0, _get(results, "cold_boto3", "cold_ms", "p50"), ("cold_boto3",))
    j.at_least("sync invokes/s, 8 clients", 5000, _get(results, "throughput", "invokes_per_s", "p50"), ("throughput",))
    j.at_least("stream records/s end to end, batch 1000", 100_000,
               _get(results, "streams_batch_1000", "records_per_s"), ("streams_batch_1000",))  # fmt: skip
    j.at_least("queue drain msgs/s, batch 100", 20_000, _get(results, "queue_drain", "msgs_per_s", "p50"),
               ("queue_drain",))  # fmt: skip
    burst = results.get("burst")
    if burst and burst.get("seconds") is None:  # not every invoke ran: that is the result
        shown = f"{burst['succeeded']} of {burst['concurrency']} ran, {burst['errors']} errors"
        j.goals.append(Goal(f"burst to {burst['concurrency']} concurrent", "<= 3 s", shown, "FAIL", False))
    else:
        label = f"burst to {burst['concurrency'] if burst else 500} concurrent"
        j.at_most(label, 3.0, _get(results, "burst", "seconds"), ("burst",), unit="s")
    for key, label in (("memory_plain", "no imports"), ("memory_boto3", "import boto3")):
        j.at_most(f"idle warm sandbox USS p50 ({label})", 5.0, _get(results, key, "uss_mb", "p50"), (key,), unit="MB")
    return sorted(j.goals, key=lambda goal: not goal.ratio)


def render(goals: list[Goal]) -> str:
    """A Markdown table."""
    lines = ["| scenario | goal | result | verdict |", "|---|---|---|---|"]
    lines += [f"| {g.scenario} | {g.goal} | {g.result} | {g.verdict} |" for g in goals]
    return "\n".join(lines)
