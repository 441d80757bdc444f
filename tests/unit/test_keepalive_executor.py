"""The keep-alive policy acting on a LocalExecutor's real sandboxes, in-process: unloading and
pre-warming, and memory-pressure eviction order (with a stand-in for MemAvailable)."""

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from squall.executors.keepalive import HistogramConfig, KeepAlivePolicy
from squall.executors.local import LocalExecutor
from squall.models import InvokeRequest, InvokeResult, SandboxSpec
from squall.runtime.sandbox import Sandbox
from squall.stores.code import CodeStore
from tests.conftest import function_zip, make_zip
from tests.unit.test_local_executor import spec_for


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def invoke(loop: asyncio.AbstractEventLoop, executor: LocalExecutor, spec: SandboxSpec) -> InvokeResult:
    payload = json.dumps({"action": "context"}).encode()
    request = InvokeRequest(request_id="req", payload=payload, invoked_arn="arn:fn")
    return loop.run_until_complete(executor.invoke(spec, request))


def stream_of(result: InvokeResult) -> str:
    return str(json.loads(result.payload)["log_stream_name"])


def teach(policy: KeepAlivePolicy, key: str, idle_s: float, times: int) -> None:
    """``times`` past idle times of ``idle_s``, the last one ending ``idle_s`` before now."""
    now = time.monotonic() - idle_s
    for i in range(times, 0, -1):
        at = now - i * idle_s
        policy.arrival(key, at)
        policy.end(key, at)
    policy.arrival(key, now)
    policy.end(key, now)


def test_a_learned_prewarm_unloads_after_the_invocation_and_warms_before_the_next(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    code = CodeStore(tmp_path / "code")
    spec = spec_for(code.put(function_zip("probe", "app")).hex)
    policy = KeepAlivePolicy(600.0, config=HistogramConfig(bin_s=1.0))
    executor = LocalExecutor(code, tmp_path / "sandboxes", "us-east-1", lambda name: {}, keep_alive=policy)
    loop.run_until_complete(executor.start())
    try:
        # Idle times of 6.5 s: pre-warm 5.4 s after an invocation ends, keep until 7.7 s.
        teach(policy, spec.pool_key, 6.5, 20)
        first = invoke(loop, executor, spec)
        ended = time.monotonic()
        assert policy.windows(spec.pool_key).prewarm_s == pytest.approx(5.4)
        # The sandbox that ran is not kept ...
        loop.run_until_complete(executor.reap_idle(600.0))
        assert executor.idle_by_key() == {}
        # ... and one is started again inside the pre-warming window.
        deadline = ended + 30
        while not executor.idle_by_key() and time.monotonic() < deadline:
            loop.run_until_complete(executor.reap_idle(600.0))
            loop.run_until_complete(asyncio.sleep(0.05))
        assert time.monotonic() >= ended + 5.4
        assert executor.idle_by_key() == {spec.pool_key: 1}
        second = invoke(loop, executor, spec)
        assert not second.usage.cold
        assert stream_of(second) != stream_of(first)
        assert b"probe module loaded" in second.log  # its init output, with its first invocation
    finally:
        loop.run_until_complete(executor.shutdown(1.0))


SLOW_INIT = "import time\n\ntime.sleep(1.5)\n\n\ndef handler(event, context):\n    return {}\n"


def test_a_prewarm_waits_for_the_cold_starts_invocations_wait_for(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    """Cold starts queue at the runtime's zygote: a speculative pre-warm due during a burst waits
    until the burst's own cold starts are done, then still warms within its window."""
    code = CodeStore(tmp_path / "code")
    warmed = spec_for(code.put(function_zip("probe", "app")).hex)
    slow = spec_for(code.put(make_zip({"app.py": SLOW_INIT})).hex, name="slow")
    policy = KeepAlivePolicy(600.0, config=HistogramConfig(bin_s=1.0))
    executor = LocalExecutor(code, tmp_path / "sandboxes", "us-east-1", lambda name: {}, keep_alive=policy)
    loop.run_until_complete(executor.start())
    try:
        # Idle times of 6.5 s: pre-warm 5.4 s after an invocation ends, keep until 7.7 s.
        teach(policy, warmed.pool_key, 6.5, 20)
        invoke(loop, executor, warmed)
        ended = time.monotonic()
        loop.run_until_complete(executor.reap_idle(600.0))
        assert executor.idle_by_key() == {}
        loop.run_until_complete(asyncio.sleep(max(0.0, ended + 4.9 - time.monotonic())))
        # An invocation's cold start (1.5 s of init) spans the moment the pre-warm falls due.
        request = InvokeRequest(request_id="slow", payload=b"{}", invoked_arn="arn:slow")
        demand = loop.create_task(executor.invoke(slow, request))
        while not demand.done():
            loop.run_until_complete(executor.reap_idle(600.0))
            loop.run_until_complete(asyncio.sleep(0.05))
            if not demand.done():
                assert warmed.pool_key not in executor.idle_by_key()
        assert demand.result().usage.cold
        assert time.monotonic() > ended + 5.4  # the pre-warm fell due while it waited
        deadline = ended + 7.7
        while warmed.pool_key not in executor.idle_by_key() and time.monotonic() < deadline:
            loop.run_until_complete(executor.reap_idle(600.0))
            loop.run_until_complete(asyncio.sleep(0.05))
        assert executor.idle_by_key().get(warmed.pool_key) == 1
    finally:
        loop.run_until_complete(executor.shutdown(1.0))


def test_memory_pressure_evicts_the_sandboxes_needed_last_first(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    code = CodeStore(tmp_path / "code")
    ref = code.put(function_zip("probe", "app")).hex
    available = [100_000.0]
    policy = KeepAlivePolicy(600.0)
    executor = LocalExecutor(
        code,
        tmp_path / "sandboxes",
        "us-east-1",
        lambda name: {},
        keep_alive=policy,
        memory_floor_mb=1000.0,
        memory_reader=lambda: available[0],
    )
    loop.run_until_complete(executor.start())
    try:
        often, rarely, unknown = (spec_for(ref, name=name) for name in ("often", "rarely", "unknown"))
        teach(policy, often.pool_key, 5.0, 20)  # next use expected a few seconds from now
        # Too few idle times to trust (so kept the fixed window), but their median says an hour.
        teach(policy, rarely.pool_key, 3600.0, 5)
        for spec in (often, rarely, unknown):  # unknown: the fixed 10 minutes
            invoke(loop, executor, spec)
        sandboxes: dict[str, Sandbox] = {key: pool[0] for key, pool in executor._idle.items()}
        assert len(sandboxes) == 3
        assert loop.run_until_complete(executor.reap_idle(600.0)) == 0
        order = []
        available[0] = 999.0  # 1 MB short: one sandbox at a time
        for _ in range(3):
            assert loop.run_until_complete(executor.reap_idle(600.0)) == 1
            # While that one is being stopped, what it will free counts: no second eviction.
            assert loop.run_until_complete(executor.reap_idle(600.0)) == 0
            loop.run_until_complete(asyncio.gather(*executor._cleanups))
            gone = [key for key, sandbox in sandboxes.items() if sandbox.dead and key not in order]
            assert len(gone) == 1
            order += gone
        assert order == [rarely.pool_key, unknown.pool_key, often.pool_key]
        assert executor.idle_by_key() == {}
        # Their processes are gone.
        for sandbox in sandboxes.values():
            assert sandbox.zygote.has_exited(sandbox.pid) or not Path(f"/proc/{sandbox.pid}").exists()
        # Enough memory again: nothing more is stopped.
        available[0] = 5000.0
        invoke(loop, executor, often)
        assert loop.run_until_complete(executor.reap_idle(600.0)) == 0
        assert executor.idle_by_key() == {often.pool_key: 1}
        # Short again: a cold start makes room first, without waiting for the reaper.
        idle_often = executor._idle[often.pool_key][0]
        available[0] = 999.0
        assert invoke(loop, executor, unknown).usage.cold
        assert idle_often.dead
        assert executor.idle_by_key() == {unknown.pool_key: 1}
    finally:
        loop.run_until_complete(executor.shutdown(1.0))
