"""LocalExecutor's provisioned sandboxes, in-process with real zygotes: filling, resizing, never
reaped, used before on-demand ones, replaced when they die, stopped on unprovision."""

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import msgspec
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


def spec_for(code_hex: str) -> SandboxSpec:
    return SandboxSpec(
        function_name="fn",
        version="1",
        revision_id="r1",
        runtime="python3.11",
        handler="app.handler",
        code_hex=code_hex,
        memory_mb=128,
        timeout_s=3,
        ephemeral_mb=512,
        environment={},
    )


def invoke(loop: asyncio.AbstractEventLoop, executor: LocalExecutor, spec: SandboxSpec, event: object) -> InvokeResult:
    request = InvokeRequest(request_id="req", payload=json.dumps(event).encode(), invoked_arn="arn:fn:1")
    return loop.run_until_complete(executor.invoke(spec, request))


def wait_allocated(loop: asyncio.AbstractEventLoop, executor: LocalExecutor, key: str, count: int) -> None:
    async def poll() -> None:
        for _ in range(300):
            state = executor.provisioned().get(key)
            if state is not None and state.allocated == count and state.idle == count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{key}: {executor.provisioned().get(key)} after 15 s, wanted {count}")

    loop.run_until_complete(poll())


def test_provision_resize_reuse_replace_unprovision(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    code = CodeStore(tmp_path / "code")
    ref = code.put(function_zip("probe", "app"))
    executor = LocalExecutor(code, tmp_path / "sandboxes", "us-east-1", lambda name: {})
    loop.run_until_complete(executor.start())
    try:
        spec = spec_for(ref.hex)
        loop.run_until_complete(executor.provision(spec, 2))
        wait_allocated(loop, executor, spec.pool_key, 2)
        assert executor.warm == 2
        # Never reaped for idleness.
        assert loop.run_until_complete(executor.reap_idle(0.0)) == 0

        result = invoke(loop, executor, spec, {"action": "env"})
        assert not result.usage.cold and result.usage.init_ms is None
        assert json.loads(result.payload)["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
        assert executor.provisioned()[spec.pool_key].allocated == 2

        # A provisioned sandbox that dies mid-invocation is replaced.
        crashed = invoke(loop, executor, spec, {"action": "exit"})
        assert crashed.error_type == "Runtime.ExitError"
        wait_allocated(loop, executor, spec.pool_key, 2)

        # So is an idle one that dies (killed from outside).
        victim = executor._provisioned[spec.pool_key].idle[0]
        os.kill(victim.pid, signal.SIGKILL)

        async def replaced() -> None:
            pool = executor._provisioned[spec.pool_key]
            for _ in range(300):
                if victim not in pool.idle and len(pool.idle) == 2:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("the killed sandbox was not replaced")

        loop.run_until_complete(replaced())

        loop.run_until_complete(executor.provision(spec, 1))
        wait_allocated(loop, executor, spec.pool_key, 1)

        loop.run_until_complete(executor.unprovision(spec.pool_key))
        assert executor.provisioned() == {} and executor.warm == 0
        # Back to on demand: a cold start.
        cold = invoke(loop, executor, spec, {"action": "env"})
        assert cold.usage.cold and json.loads(cold.payload)["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    finally:
        loop.run_until_complete(executor.shutdown(1.0))


def test_failed_initialisation_is_reported(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    code = CodeStore(tmp_path / "code")
    ref = code.put(function_zip("probe", "app"))
    executor = LocalExecutor(code, tmp_path / "sandboxes", "us-east-1", lambda name: {})
    loop.run_until_complete(executor.start())
    try:
        broken = msgspec.structs.replace(spec_for(ref.hex), handler="app.missing")

        async def failure() -> str | None:
            await executor.provision(broken, 1)
            for _ in range(200):
                state = executor.provisioned()[broken.pool_key]
                if state.failure is not None:
                    return state.failure
                await asyncio.sleep(0.05)
            return None

        assert loop.run_until_complete(failure()) is not None
        assert executor.provisioned()[broken.pool_key].allocated == 0
        assert executor.warm == 0
    finally:
        loop.run_until_complete(executor.shutdown(1.0))
