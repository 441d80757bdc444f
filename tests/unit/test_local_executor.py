"""LocalExecutor with real zygotes and sandboxes, in-process: pooling, limits, the RSS watchdog."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from squall.executors.local import LocalExecutor
from squall.models import InvokeRequest, InvokeResult, SandboxSpec
from squall.stores.code import CodeStore
from tests.conftest import function_zip


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def spec_for(code_hex: str, name: str = "fn", memory: int = 128, timeout: int = 3) -> SandboxSpec:
    return SandboxSpec(
        function_name=name,
        version="$LATEST",
        revision_id="r1",
        runtime="python3.11",
        handler="app.handler",
        code_hex=code_hex,
        memory_mb=memory,
        timeout_s=timeout,
        ephemeral_mb=512,
        environment={"GREETING": "hi"},
    )


def invoke(
    loop: asyncio.AbstractEventLoop, executor: LocalExecutor, spec: SandboxSpec, event: dict[str, object]
) -> InvokeResult:
    request = InvokeRequest(request_id="req", payload=json.dumps(event).encode(), invoked_arn="arn:fn")
    return loop.run_until_complete(executor.invoke(spec, request))


@pytest.mark.parametrize("isolation", [True, False], ids=["isolated", "unconfined"])
def test_pool_reuse_reap_and_limits(tmp_path: Path, loop: asyncio.AbstractEventLoop, isolation: bool) -> None:
    code = CodeStore(tmp_path / "code")
    ref = code.put(function_zip("probe", "app"))
    executor = LocalExecutor(code, tmp_path / "sandboxes", "us-east-1", lambda name: {}, isolation=isolation)
    loop.run_until_complete(executor.start())
    try:
        spec = spec_for(ref.hex)
        cold = invoke(loop, executor, spec, {"action": "pid"})
        warm = invoke(loop, executor, spec, {"action": "pid"})
        assert cold.usage.cold and not warm.usage.cold
        assert json.loads(cold.payload)["pid"] == json.loads(warm.payload)["pid"]
        assert executor.warm == 1 and executor.busy == 0
        assert loop.run_until_complete(executor.reap_idle(60.0)) == 0
        assert loop.run_until_complete(executor.reap_idle(0.0)) == 1
        assert executor.warm == 0
        if not isolation:
            # Without a cgroup the RSS watchdog enforces the memory size.
            assert executor.cgroups is None
        oom = invoke(loop, executor, spec, {"action": "memory", "mb": 300})
        assert oom.error_type == "Runtime.OutOfMemory", oom.payload
        timeout = invoke(loop, executor, spec_for(ref.hex, timeout=1), {"action": "sleep", "seconds": 5})
        assert timeout.error_type == "Sandbox.Timedout"
        assert b"Status: timeout" in timeout.log
        # The function still works after both kills.
        assert json.loads(invoke(loop, executor, spec, {"action": "echo"}).payload)["event"] == {"action": "echo"}
    finally:
        loop.run_until_complete(executor.shutdown(1.0))
