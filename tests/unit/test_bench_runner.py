"""The benchmark runner itself: a --quick run of a tiny subset, --compare's regression flags,
the goals table, BENCHMARKS.md and the plots. Peers are never installed here (--no-peers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks import compare, goals, markdown, peer_report, peers, plots, run
from benchmarks.report import Row


def _summary(p50: float, n: int = 5) -> dict[str, Any]:
    return {"n": n, "p50": p50, "p90": p50, "p99": p50 * 2, "min": p50 / 2, "max": p50 * 3,
            "mean": p50, "stdev": 0.1, "q1": p50 * 0.9, "q3": p50 * 1.1}  # fmt: skip


def _results(**overrides: Any) -> dict[str, Any]:
    """Synthetic results shaped as the runner writes them."""
    results: dict[str, Any] = {
        "warm_http": {"latency_ms": _summary(1.0), "overhead_ms": _summary(0.5), "raw_latency_ms": [0.9, 1.0, 1.1]},
        "cold_plain": {"cold_ms": _summary(8.0), "raw": {"cold_ms": [7.0, 8.0, 9.0]}},
        "throughput": {"invokes_per_s": _summary(5000.0)},
        "queue_drain": {"msgs_per_s": _summary(100.0), "runs": []},
        "ministack_warm": {"silent": {"http_ms": _summary(50.0), "raw_http_ms": [49.0, 50.0, 52.0]}},
        "ministack_queue": {"msgs_per_s": _summary(10.0), "runs": []},
        "http_ceiling": {"64": {"requests_per_s": _summary(10_000.0)}, "1": {"requests_per_s": _summary(2_000.0)}},
        "http_chalice": {"64": {"requests_per_s": _summary(500.0)}, "1": {"requests_per_s": _summary(30.0)}},
    }
    results.update(overrides)
    return results


def test_quick_run_of_a_subset_writes_results_and_benchmarks_md(tmp_path: Path) -> None:
    code = run.main(["--quick", "--only", "floor", "--no-peers", "--markdown", "--output-root", str(tmp_path)])
    assert code == 0
    (written,) = (tmp_path / "benchmarks" / "results").glob("*-quick-floor.json")
    document = json.loads(written.read_text())
    floor = document["results"]["floor"]
    assert floor["pipe_trips"] == 10_000 and floor["pipe_rtt_ms"]["n"] == 10_000
    assert floor["fork_waitpid_ms"]["n"] == 100 and floor["fork_waitpid_ms"]["p50"] > 0
    assert not any(key.startswith(("ministack", "ray", "http")) for key in document["results"])
    assert document["scenarios"] == ["floor"]
    verdicts = {goal["scenario"]: goal["verdict"] for goal in document["goals"]}
    assert verdicts["queue drain msgs/s, batch 100, vs MiniStack"] == "not run: peers skipped (--no-peers)"
    assert verdicts["cold start p50, no imports"] == "not run: cold_plain not in this run"
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "## Goals" in text and "floor: pipe round trip, warm processes" in text
    assert "benchmarks/results/" + written.name in text
    assert not (tmp_path / "benchmarks" / ".peers").exists()


def test_compare_flags_regressions_above_ten_percent() -> None:
    baseline = {"timestamp": "2026-11-01T00:00:00+00:00", "quick": False, "results": _results()}
    current = {
        "quick": False,
        "results": _results(
            warm_http={"latency_ms": _summary(1.2), "overhead_ms": _summary(0.52)},  # +20% (worse), +4%
            throughput={"invokes_per_s": _summary(4800.0)},  # -4%: within the noise allowed
            queue_drain={"msgs_per_s": _summary(80.0)},  # -20% of a rate: worse
            cold_plain={"cold_ms": _summary(6.0)},  # -25% of a latency: better
        ),
    }
    changes = {c.metric: c for c in compare.compare(current, [("base.json", baseline)])}
    assert changes["warm invoke over HTTP p50 (ms)"].regression
    assert changes["queue drain batch 100 (msgs/s)"].regression
    assert not changes["warm invoke overhead p50 (ms)"].regression
    assert not changes["sync invokes/s, 8 clients"].regression
    assert not changes["cold start p50, no imports (ms)"].regression
    assert changes["cold start p50, no imports (ms)"].worse == pytest.approx(-0.25)
    text = compare.render(list(changes.values()))
    assert text.count("REGRESSION") == 2 and "better" in text and "base.json" in text


def test_compare_picks_the_newest_baseline_of_the_same_kind() -> None:
    old_full = {"timestamp": "2026-11-01T00:00:00+00:00", "quick": False, "results": _results()}
    new_full = {"timestamp": "2026-11-02T00:00:00+00:00", "quick": False,
                "results": _results(throughput={"invokes_per_s": _summary(4000.0)})}  # fmt: skip
    newer_quick = {"timestamp": "2026-11-03T00:00:00+00:00", "quick": True,
                   "results": _results(throughput={"invokes_per_s": _summary(9000.0)})}  # fmt: skip
    current = {"quick": False, "results": {"throughput": {"invokes_per_s": _summary(4400.0)}}}
    (change,) = compare.compare(current, [("old", old_full), ("quick", newer_quick), ("new", new_full)])
    assert change.baseline == "new" and change.before == 4000.0 and not change.regression
    assert compare.compare(current, []) == []
    assert compare.render([]) == "no committed results to compare with"


def test_committed_results_reads_what_git_has_not_the_work_tree(tmp_path: Path) -> None:
    results_dir = tmp_path / "benchmarks" / "results"
    results_dir.mkdir(parents=True)
    path = results_dir / "2026-11-01-abc.json"
    path.write_text(json.dumps({"timestamp": "t", "results": {"throughput": {"invokes_per_s": {"p50": 1.0}}}}))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "results"], check=True)
    path.write_text("{}")  # an uncommitted edit does not count
    (results_dir / "uncommitted.json").write_text("{}")
    documents = compare.committed_results(tmp_path, results_dir)
    assert [name for name, _ in documents] == ["2026-11-01-abc.json"]
    assert documents[0][1]["results"]["throughput"]["invokes_per_s"]["p50"] == 1.0


def test_goals_put_ratios_first_and_judge_each() -> None:
    judged = goals.judge(_results(), {"burst": "not built"})
    assert [g.ratio for g in judged] == sorted((g.ratio for g in judged), reverse=True)
    by_name = {g.scenario: g for g in judged}
    ministack = by_name["warm invoke p50 over HTTP vs MiniStack (silent handler)"]
    assert (ministack.result, ministack.verdict) == ("50.0x", "PASS")
    drain = by_name["queue drain msgs/s, batch 100, vs MiniStack"]
    assert (drain.result, drain.verdict) == ("10.0x", "FAIL")  # 100 / 10 < 25
    assert by_name["gateway req/s at 64 connections vs chalice local"].verdict.startswith("not run: http_gateway")
    assert by_name["sync invokes/s, 8 clients"].verdict == "PASS"
    assert by_name["queue drain msgs/s, batch 100"].verdict == "FAIL"
    assert by_name["cold start p50, no imports"].verdict == "PASS"
    assert by_name["burst to 500 concurrent"].verdict == "not run: not built"
    partial = {"concurrency": 500, "succeeded": 243, "errors": 257, "seconds": None}
    (burst,) = [g for g in goals.judge(_results(burst=partial), {}) if g.scenario.startswith("burst")]
    assert (burst.result, burst.verdict) == ("243 of 500 ran, 257 errors", "FAIL")
    (burst,) = [g for g in goals.judge(_results(burst={**partial, "seconds": 2.5}), {}) if g.scenario.startswith("b")]
    assert (burst.result, burst.verdict) == ("2.50 s", "PASS")


def test_benchmarks_md_renders_goals_figures_plots_and_what_did_not_run(tmp_path: Path) -> None:
    document = {
        "timestamp": "2026-11-29T07:00:00+00:00", "commit": "abc1234", "dirty": True, "quick": False,
        "wall_s": 12.5, "not_run": {"ray": "pip install ray failed (exit 1): no network"},
        "machine": {"nproc": 2, "cpu_model": "Test CPU", "python": "3.11.7", "loadavg": [1.5], "loadavg_after": [2.0]},
    }  # fmt: skip
    plot = tmp_path / "benchmarks" / "plots" / "warm-latency.png"
    changes = compare.compare({"results": _results(throughput={"invokes_per_s": _summary(4000.0)})},
                              [("base.json", {"results": _results()})])  # fmt: skip
    text = markdown.render(
        document,
        [Row("warm invoke | HTTP", "1.000 ms", "p99 2.000 ms", "<= 1 ms", "PASS")],
        goals.judge(_results(), {}),
        [("Warm invoke latency (CDF)", plot)],
        tmp_path / "BENCHMARKS.md",
        changes,
        tmp_path / "benchmarks" / "results" / "x.json",
    )
    assert "commit abc1234 (with uncommitted changes)" in text and "Test CPU" in text
    assert text.index("## Goals") < text.index("## Change against") < text.index("## Every figure")
    assert "| warm invoke \\| HTTP | 1.000 ms |" in text
    assert "![Warm invoke latency (CDF)](benchmarks/plots/warm-latency.png)" in text
    assert "- `ray`: pip install ray failed (exit 1): no network" in text
    assert "**REGRESSION**" in text and "`benchmarks/results/x.json`" in text


def test_plots_are_drawn_from_the_results(tmp_path: Path) -> None:
    written = plots.draw_all(_results(), tmp_path)
    names = sorted(path.name for _, path in written)
    assert names == ["cold-start.png", "delivery-rates.png", "http-throughput.png", "warm-latency.png"]
    for _, path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stale = tmp_path / "cold-start.png"
    assert plots.draw_all({"warm_http": _results()["warm_http"]}, tmp_path) == [
        ("Warm invoke latency (CDF)", tmp_path / "warm-latency.png")
    ]
    assert not stale.exists()  # a plot this run cannot draw is not left from an earlier one


def test_a_failed_peer_is_recorded_as_not_run_and_the_run_goes_on() -> None:
    runner = run.Runner(run.Plan.for_run(quick=True), ["ray"])

    def broken() -> None:
        raise peers.PeerUnavailable("pip install ray failed (exit 1): no matching distribution")

    assert runner.attempt_peer("ray", broken) is None
    assert runner.not_run == {"ray": "benchmarks.peers.PeerUnavailable: pip install ray failed (exit 1): "
                                     "no matching distribution"}  # fmt: skip
    assert runner.errors == {} and "ray" not in runner.results


def test_a_failing_install_step_says_why(tmp_path: Path) -> None:
    lines: list[str] = []
    argv = [sys.executable, "-c", "print('Collecting nothing'); print('ERROR: no such package'); raise SystemExit(3)"]
    with pytest.raises(peers.PeerUnavailable, match=r"pip install x failed \(exit 3\): .*ERROR: no such package"):
        peers._run(argv, "pip install x", lines.append)
    assert lines == ["    Collecting nothing", "    ERROR: no such package"]


def test_no_peers_drops_the_peer_scenarios() -> None:
    runner = run.Runner(run.Plan.for_run(quick=True), ["floor", "ministack", "ray", "http"], no_peers=True)
    assert runner.selected == ["floor", "http"]


def test_squall_bench_command_is_there() -> None:
    from click.testing import CliRunner

    from squall.cli.main import main

    result = CliRunner().invoke(main, ["bench", "--help"])
    assert result.exit_code == 0
    for flag in ("--quick", "--only", "--compare", "--no-peers"):
        assert flag in result.output


@pytest.mark.slow
def test_quick_queue_drain_http_curves_and_throughput_against_a_live_server(tmp_path: Path) -> None:
    argv = ["--quick", "--only", "queues", "--only", "http", "--only", "throughput", "--no-peers"]
    code = run.main([*argv, "--output-root", str(tmp_path)])
    assert code == 0
    (written,) = (tmp_path / "benchmarks" / "results").glob("*-quick-*queues*.json")
    document = json.loads(written.read_text())
    results = document["results"]
    (drain,) = results["queue_drain"]["runs"]
    assert drain["delivered"] >= drain["messages"] == 2_000 and drain["median_batch"] > 10
    assert results["queue_drain"]["msgs_per_s"]["p50"] > 0
    (small,) = results["queue_drain_batch10"]["runs"]
    assert small["delivered"] >= small["messages"] == 500 and small["median_batch"] == 10
    for key in ("http_gateway", "http_ceiling"):
        assert sorted(results[key], key=int) == ["1", "16", "64"]
        assert all(point["requests_per_s"]["p50"] > 0 for point in results[key].values())
    throughput = results["throughput"]
    assert throughput["invokes_per_s"]["p50"] > 0 and throughput["latency_ms"]["n"] > 0  # the handler's answers
    assert document["not_run"] == {"http_chalice": "peers skipped (--no-peers)"}
    assert not (tmp_path / "BENCHMARKS.md").exists()  # --only: no BENCHMARKS.md unless asked


def test_idle_sandbox_memory_goal_and_rows() -> None:
    memory = {"sandboxes": 10, "uss_mb": _summary(4.2), "pss_mb": _summary(7.0), "cgroup_mb": _summary(4.0)}
    boto3 = {**memory, "uss_mb": _summary(5.3)}
    capacity = {
        "method": "warmed 200, extrapolated from MemAvailable", "per_sandbox_mb": 6.0, "mem_available_after_mb": 12_000,
        "sandboxes": 2_200, "sandboxes_by_uss": 3_000, "server_overhead": {"uss_mb": 60.0},
    }  # fmt: skip
    results = _results(memory_plain={**memory, "goal_uss_mb": 5.0}, memory_boto3={**boto3, "goal_uss_mb": 5.0})
    by_name = {g.scenario: g for g in goals.judge(results, {})}
    plain = by_name["idle warm sandbox USS p50 (no imports)"]
    assert (plain.result, plain.verdict) == ("4.20 MB", "PASS")
    assert by_name["idle warm sandbox USS p50 (import boto3)"].verdict == "FAIL"
    rows = peer_report.memory_rows({**results, "capacity": capacity})
    assert [(row.scenario, row.p50) for row in rows] == [
        ("idle warm sandbox USS (no imports)", "4.20 MB"),
        ("idle warm sandbox USS (import boto3)", "5.30 MB"),
        ("warm sandboxes this machine holds", "2,200"),
    ]
    assert "extrapolated from MemAvailable" in rows[2].spread


def _postgres_or_skip(dsn: str) -> None:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {dsn} does not answer: {exc}")
        pytest.skip(f"PostgreSQL at {dsn} does not answer: {exc}")


@pytest.mark.slow
def test_quick_scaleout_serves_the_sleeping_function_through_every_variant(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from benchmarks import scaleout

    _postgres_or_skip(scaleout.postgres_dsn())
    code = run.main(["--quick", "--only", "scaleout", "--no-peers", "--output-root", str(tmp_path)])
    (written,) = (tmp_path / "benchmarks" / "results").glob("*-quick-scaleout.json")
    document = json.loads(written.read_text())
    assert document["errors"] == {} and code == 0
    results = document["results"]
    for key, servers in (("scaleout_local", 1), ("scaleout_ray_1", 1), ("scaleout_ray_2", 2)):
        variant = results[key]
        assert variant["clients"] == 8 and variant["servers"] == servers
        assert len(variant["answered_per_server"]) == servers and min(variant["answered_per_server"]) > 0
        assert variant["invokes_per_s"]["p50"] > 0 and variant["latency_ms"]["n"] > 0
        assert variant["latency_ms"]["p50"] >= 50  # every counted answer waited for the handler's sleep
        # Eight clients of a 50 ms function: never more than 8 / 0.05 answers in a second.
        assert max(variant["windows"]) <= variant["ideal_per_s"]
    assert results["scaleout_ray_1"]["nodes"] == results["scaleout_ray_2"]["nodes"] == 3
    for key in ("scaleout_ray_tasks", "scaleout_ray_actors"):
        floor = results[key]
        assert floor["calls_per_s"]["p50"] > 0 and floor["wrong_results"] == 0 and max(floor["windows"]) <= 160
        assert floor["latency_ms"]["p50"] >= 50
    written_rows = results["scaleout_rows"]
    assert written_rows["usage_rows_per_invocation"] == 1.0 and written_rows["log_rows_per_invocation"] == 3.0
    assert written_rows["answered"] == results["scaleout_ray_1"]["answered"] + results["scaleout_ray_2"]["answered"]
    for batch in results["scaleout_store"]["batches"].values():
        assert batch["invocations"] > 0 and batch["wall_us_per_invocation"] > 0
    import psycopg

    with psycopg.connect(scaleout.postgres_dsn()) as conn:  # the scratch schema is gone
        schema = results["scaleout_setup"]["schema"]
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is None
    table = "\n".join(row["scenario"] for row in document["table"])
    assert "2 ray-tier servers, 3 Ray nodes" in table and "plain Ray tasks sleeping 50 ms" in table
    assert "Ray actor calls sleeping 50 ms" in table
