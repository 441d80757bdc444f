"""``squall cost`` against a hand-computed example: three functions with known durations and memory,
written as usage records into a real SQLite store and read back by the command itself."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from squall.cli.main import main
from squall.metering.breakeven import break_even, peak_load, smallest_server
from squall.metering.summary import summarize
from squall.models import UsageRecord
from squall.stores.sqlite import SqliteMetadataStore

DAY1 = 1_714_557_600.0  # 2024-05-01 10:00:00 UTC
DAY2 = DAY1 + 86_400  # 2024-05-02


def usage(
    name: str, start: float, duration_ms: float, billed: int, memory: int, arch: str, trigger: str
) -> UsageRecord:
    return UsageRecord(
        function_name=name,
        version="$LATEST",
        request_id=f"{name}-{start}-{duration_ms}",
        start=start,
        duration_ms=duration_ms,
        billed_ms=billed,
        memory_mb=memory,
        gb_seconds=memory / 1024 * billed / 1000,
        max_memory_mb=40,
        cold=False,
        init_ms=None,
        outcome="success",
        trigger=trigger,
        architecture=arch,
    )


def example() -> list[UsageRecord]:
    """alpha: 10 x 100 ms at 128 MB (x86, api, one after the other on day 1);
    beta: 4 x 1,500 ms at 1,024 MB (x86, event, all four at once on day 2);
    gamma: 2 x 250 ms at 512 MB (arm64, sqs, one after the other on day 2)."""
    records = [usage("alpha", DAY1 + i, 99.5, 100, 128, "x86_64", "api") for i in range(10)]
    records += [usage("beta", DAY2, 1499.2 + i / 10, 1500, 1024, "x86_64", "event") for i in range(4)]
    records += [usage("gamma", DAY2 + 10 + i, 249.0, 250, 512, "arm64", "sqs") for i in range(2)]
    return records


# Hand computation, at $0.20 per million requests, $0.0000166667 (x86) and $0.0000133334 (arm64) per GB-s:
#   alpha: 10 req, 10 x 0.125 GB x 0.1 s = 0.125 GB-s                -> 0.000002 + 0.0000020833375
#   beta:   4 req, 4 x 1 GB x 1.5 s = 6 GB-s                          -> 0.0000008 + 0.0001000002
#   gamma:  2 req, 2 x 0.5 GB x 0.25 s = 0.25 GB-s (arm64)            -> 0.0000004 + 0.00000333335
ALPHA = Decimal("0.0000040833375")
BETA = Decimal("0.0001008002")
GAMMA = Decimal("0.00000373335")
TOTAL = Decimal("0.0001086168875")
#   all on arm64: 16 x 0.0000002 + 6.375 GB-s x 0.0000133334
ALL_ARM = Decimal("0.0000032") + Decimal("6.375") * Decimal("0.0000133334")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    store = SqliteMetadataStore(tmp_path / "squall.db")
    store.add_usage(example())
    store.close()
    return tmp_path


def cost_json(data_dir: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["cost", "--json", "--data-dir", str(data_dir), *args])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    return report


def test_by_function_matches_the_hand_computation(data_dir: Path) -> None:
    report = cost_json(data_dir)
    groups = {g["function"]: g for g in report["groups"]}
    assert {k: Decimal(g["cost"]) for k, g in groups.items()} == {"alpha": ALPHA, "beta": BETA, "gamma": GAMMA}
    assert {k: Decimal(g["gb_seconds"]) for k, g in groups.items()} == {
        "alpha": Decimal("0.125"),
        "beta": Decimal(6),
        "gamma": Decimal("0.25"),
    }
    assert [g["requests"] for g in report["groups"]] == [10, 4, 2]
    assert Decimal(report["cost_without_free_tier"]) == TOTAL
    # Far inside the free tier (1 M requests, 400,000 GB-s): nothing to pay.
    assert Decimal(report["cost_with_free_tier"]) == 0
    assert Decimal(report["totals"]["free_tier_savings"]) == TOTAL
    assert report["totals"]["requests"] == 16


def test_by_day_and_trigger(data_dir: Path) -> None:
    days = {g["day"]: Decimal(g["cost"]) for g in cost_json(data_dir, "--by", "day")["groups"]}
    assert days == {"2024-05-01": ALPHA, "2024-05-02": BETA + GAMMA}
    triggers = {g["trigger"]: g["requests"] for g in cost_json(data_dir, "--by", "trigger")["groups"]}
    assert triggers == {"api": 10, "event": 4, "sqs": 2}


def test_arch_prices_everything_on_one_architecture(data_dir: Path) -> None:
    report = cost_json(data_dir, "--arch", "arm64", "--no-free-tier")
    assert Decimal(report["cost_without_free_tier"]) == ALL_ARM
    assert Decimal(report["totals"]["total"]) == ALL_ARM
    assert report["architecture"] == "arm64"


def test_since_keeps_later_records(data_dir: Path) -> None:
    report = cost_json(data_dir, "--since", "2024-05-02T00:00:00Z")
    assert {g["function"] for g in report["groups"]} == {"beta", "gamma"}
    assert Decimal(report["cost_without_free_tier"]) == BETA + GAMMA


def test_break_even_server_from_the_peak(data_dir: Path) -> None:
    # The peak: beta's four 1,024 MB invocations at once = 4,096 MB -> ceil(4096/1769) = 3 vCPU, 4 GiB.
    assert peak_load(example()).concurrency == 4
    assert peak_load(example()).memory_mb == 4096
    server = cost_json(data_dir)["break_even"]["server"]
    # Default price: whole 2 vCPU / 4 GiB boxes at $0.0416/h: two boxes for 3 vCPU.
    assert server == {"vcpu": 4, "memory_gb": 8, "hourly": "0.0832", "monthly": "60.736"}
    priced = cost_json(data_dir, "--server-price", "0.10")["break_even"]["server"]
    assert priced == {"vcpu": 3, "memory_gb": 4, "hourly": "0.1", "monthly": "73"}


def test_break_even_rate_by_hand() -> None:
    # One x86 function, 1,024 MB, 1 s billed: 1 GB-s per request. A $0.10/h server costs $73 a month.
    # With the free tier, Lambda's month at N requests (N > 1 M) costs
    #   (N - 1,000,000) x 0.0000002 + (N - 400,000) x 0.0000166667
    # which reaches 73 at N = (73 + 0.2 + 6.66668) / 0.0000168667, over 730 h of seconds.
    records = [usage("solo", DAY1 + 10 * i, 1000.0, 1000, 1024, "x86_64", "api") for i in range(10)]
    result = break_even(records, Decimal("0.10"))
    expected_n = (73 + 0.2 + 6.66668) / 0.0000168667
    assert result.break_even_rps == pytest.approx(expected_n / (730 * 3600), rel=1e-5)
    assert result.observed_rps == pytest.approx(10 / 91)  # ten requests over 91 s
    assert result.cheaper == "lambda"
    assert result.server.monthly == 73


def test_server_is_cheaper_when_the_load_is_high() -> None:
    # 100 requests a second of 1 GB-s each, sustained: ~263 M GB-s a month, far above a $73 server.
    records = [usage("busy", DAY1 + i / 100, 1000.0, 1000, 1024, "x86_64", "api") for i in range(1000)]
    result = break_even(records, Decimal("0.10"))
    assert result.cheaper == "server"
    assert result.break_even_rps is not None and result.break_even_rps < result.observed_rps
    assert smallest_server(result.peak, Decimal("0.10")).vcpu == result.server.vcpu


def test_text_report_is_a_table(data_dir: Path) -> None:
    result = CliRunner().invoke(main, ["cost", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    for text in ("alpha", "beta", "gamma", "GB-S", "WITHOUT FREE TIER", "WITH FREE TIER", "Smallest server"):
        assert text in result.output
    assert "$0.000109" in result.output  # the list-price total, 0.0001086..., to three digits


def test_summary_rejects_unknown_grouping() -> None:
    with pytest.raises(ValueError, match="cannot group by"):
        summarize(example(), by="week")


def test_cost_help_names_every_option() -> None:
    result = CliRunner().invoke(main, ["cost", "--help"])
    for option in ("--since", "--by", "--arch", "--server-price", "--json", "--no-free-tier"):
        assert option in result.output
