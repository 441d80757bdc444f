"""The hybrid histogram keep-alive policy, driven by explicit timestamps."""

from pathlib import Path

import pytest

from squall.config import Settings
from squall.executors.keepalive import HistogramConfig, IdleHistogram, KeepAlivePolicy, Windows
from squall.executors.memory import available_mb
from squall.platform import keep_alive_policy

MIN = 60.0


def feed(policy: KeepAlivePolicy, key: str, idle_times: list[float], start: float = 0.0) -> float:
    """One invocation of 1 s after each idle time; returns the end of the last one."""
    now = start
    policy.arrival(key, now)
    policy.end(key, now + 1.0)
    now += 1.0
    for idle in idle_times:
        now += idle
        policy.arrival(key, now)
        now += 1.0
        policy.end(key, now)
    return now


def test_fixed_policy_keeps_every_key_the_fixed_time() -> None:
    policy = KeepAlivePolicy(600.0, adaptive=False)
    feed(policy, "f", [15 * MIN] * 50)
    assert policy.windows("f") == Windows(0.0, 600.0, False)
    assert policy.keep_used_s("f") == 600.0
    assert policy.prewarm("f", 10**6) is None


def test_too_few_samples_fall_back_to_the_fixed_keep_alive() -> None:
    policy = KeepAlivePolicy(600.0)
    feed(policy, "f", [15 * MIN] * 9)
    assert policy.windows("f") == Windows(0.0, 600.0, False)
    feed(policy, "g", [15 * MIN] * 10)
    assert policy.windows("g").representative


def test_periodic_function_is_unloaded_and_prewarmed_before_its_next_arrival() -> None:
    policy = KeepAlivePolicy(600.0)
    end = feed(policy, "f", [15 * MIN - 1.0] * 20)  # arrivals every 15 min, 1 s runs
    windows = policy.windows("f")
    # Every idle time falls in bin 14 (14..15 min): head = 14 min, tail = 15 min, 10 % margins.
    assert windows.prewarm_s == pytest.approx(14 * MIN - 1.4 * MIN)
    assert windows.prewarm_s + windows.keep_alive_s == pytest.approx(15 * MIN + 1.5 * MIN)
    assert policy.keep_used_s("f") == 0.0
    assert policy.prewarm("f", end + windows.prewarm_s - 1) is None
    due = policy.prewarm("f", end + windows.prewarm_s + 1)
    assert due is not None and due.count == 1
    assert due.until == pytest.approx(end + 16.5 * MIN)
    # Once per idle period.
    assert policy.prewarm("f", end + windows.prewarm_s + 2) is None
    # Two arrive together: the first one's sandbox stays while the second runs, not after.
    now = end + 15 * MIN - 1.0
    policy.arrival("f", now)
    policy.arrival("f", now)
    policy.end("f", now + 1.0)
    assert policy.keep_used_s("f") == policy.windows("f").keep_alive_s > 0
    policy.end("f", now + 2.0)
    assert policy.keep_used_s("f") == 0.0


def test_head_in_the_first_bin_keeps_the_sandbox_for_the_tail_window() -> None:
    policy = KeepAlivePolicy(600.0)
    feed(policy, "f", [5.0] * 30 + [150.0] * 3)  # 3 of 34 samples in bin 2: the 99th percentile
    windows = policy.windows("f")
    assert windows.prewarm_s == 0.0
    assert windows.keep_alive_s == pytest.approx(3 * MIN * 1.1)
    assert policy.keep_used_s("f") == pytest.approx(198.0)


def test_keep_alive_window_is_bounded_by_the_fixed_setting() -> None:
    policy = KeepAlivePolicy(120.0)
    feed(policy, "f", [1.0] * 40 + [30 * MIN] * 2)
    assert policy.windows("f").keep_alive_s == 120.0


def test_margins_are_the_papers_ten_percent_unless_capped() -> None:
    three_hours = [180 * MIN - 1.0] * 20
    paper = KeepAlivePolicy(3600.0)
    feed(paper, "f", three_hours)
    assert paper.windows("f").prewarm_s == pytest.approx(179 * MIN * 0.9)
    capped = KeepAlivePolicy(3600.0, config=HistogramConfig(max_margin_bins=2))
    feed(capped, "f", three_hours)
    assert capped.windows("f").prewarm_s == pytest.approx(179 * MIN - 2 * MIN)


def test_a_prewarmed_window_longer_than_the_bound_loses_its_margins_first() -> None:
    policy = KeepAlivePolicy(600.0)
    feed(policy, "f", [180 * MIN - 1.0] * 20)  # head 179 min, tail 180 min: 36 min of margins
    windows = policy.windows("f")
    assert windows.keep_alive_s == 600.0
    # The 10 minutes are centred on the one-minute bin: 4.5 minutes either side.
    assert windows.prewarm_s == pytest.approx(179 * MIN - 4.5 * MIN)


def test_tail_beyond_the_range_falls_back() -> None:
    policy = KeepAlivePolicy(600.0)
    feed(policy, "f", [5 * MIN] * 20 + [5 * 3600.0] * 5)  # 20 % beyond four hours
    assert policy.windows("f") == Windows(0.0, 600.0, False)


def test_flat_histogram_is_not_representative() -> None:
    histogram = IdleHistogram(HistogramConfig())
    for minute in range(240):
        histogram.add(minute * MIN + 1)
    assert histogram.cv() == 0.0
    assert histogram.windows(600.0) == Windows(0.0, 600.0, False)
    spike = IdleHistogram(HistogramConfig())
    for _ in range(20):
        spike.add(7 * MIN)
    assert spike.cv() > 15.0 and spike.windows(600.0).representative


def test_concurrent_arrivals_are_no_idle_time_and_set_the_prewarm_count() -> None:
    policy = KeepAlivePolicy(600.0)
    now = 0.0
    for _ in range(15):
        for _ in range(4):
            policy.arrival("f", now)
        for _ in range(4):
            policy.end("f", now + 1)
        now += 30 * MIN
    assert policy._keys["f"].histogram.total == 14
    windows = policy.windows("f")
    due = policy.prewarm("f", now - 30 * MIN + 1 + windows.prewarm_s)
    assert due is not None and due.count == 4


def test_old_behaviour_fades() -> None:
    histogram = IdleHistogram(HistogramConfig(max_samples=100))
    for _ in range(99):
        histogram.add(1.0)
    histogram.add(1.0)
    assert histogram.total == 50


def test_predicted_next_use_orders_keys_for_eviction() -> None:
    policy = KeepAlivePolicy(600.0)
    feed(policy, "often", [10.0] * 20)  # ends at 20 * 11 + 1 = 221
    feed(policy, "rarely", [100 * MIN] * 20, start=-20 * (100 * MIN + 1))  # ends at 0
    now = 300.0
    assert policy.predicted_next_use("often", now) < policy.predicted_next_use("rarely", now)
    policy.arrival("rarely", now)
    assert policy.predicted_next_use("rarely", now) == now
    assert policy.predicted_next_use("unknown", now) == now + 600.0


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        HistogramConfig(bin_s=0)


def test_settings_choose_the_policy() -> None:
    assert keep_alive_policy(Settings(keep_alive_policy="fixed", keep_alive_s=30.0)).windows("f") == Windows(
        0.0, 30.0, False
    )
    adaptive = keep_alive_policy(Settings(keep_alive_bin_s=0.5))
    assert adaptive.adaptive and adaptive.config.bin_s == 0.5 and adaptive.fixed_s == 600.0
    with pytest.raises(ValueError, match="adaptive or fixed"):
        keep_alive_policy(Settings(keep_alive_policy="sometimes"))


def test_available_memory_is_the_smaller_of_meminfo_and_the_cgroup_room(tmp_path: Path) -> None:
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text("MemTotal: 24000000 kB\nMemAvailable: 2048000 kB\n")
    (proc / "self" / "cgroup").write_text("0::/squall.service\n")
    assert available_mb(proc, root) == 2000.0  # no cgroup files: MemAvailable alone
    (root / "squall.service").mkdir(parents=True)
    (root / "squall.service" / "memory.max").write_text("max\n")
    (root / "squall.service" / "memory.current").write_text(str(100 << 20))
    assert available_mb(proc, root) == 2000.0  # no limit
    (root / "squall.service" / "memory.max").write_text(str(612 << 20))
    assert available_mb(proc, root) == 512.0
    (proc / "self" / "cgroup").write_text("4:memory:/box\n0::/\n")
    (root / "memory" / "box").mkdir(parents=True)
    (root / "memory" / "box" / "memory.limit_in_bytes").write_text(str(1 << 30))
    (root / "memory" / "box" / "memory.usage_in_bytes").write_text(str(1 << 29))
    assert available_mb(proc, root) == 512.0  # cgroup v1
    assert available_mb(tmp_path / "nowhere", root) is None
