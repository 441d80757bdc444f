"""Concurrent cold starts through LocalExecutor, and its public view of idle sandboxes per pool."""

import asyncio
from pathlib import Path

from squall.executors.local import LocalExecutor
from squall.models import InvokeRequest, SandboxSpec
from squall.stores.code import CodeStore
from tests.conftest import make_zip

SOURCE = "import time\n\n\ndef handler(event, context):\n    time.sleep(0.3)\n    return context.log_stream_name\n"


def _spec(code_hex: str, version: str) -> SandboxSpec:
    return SandboxSpec(
        function_name="fn",
        version=version,
        revision_id="r1",
        runtime="python3.11",
        handler="app.handler",
        code_hex=code_hex,
        memory_mb=128,
        timeout_s=5,
        ephemeral_mb=512,
        environment={},
    )


async def _scenario(tmp_path: Path) -> None:
    code = CodeStore(tmp_path / "code")
    ref = code.put(make_zip({"app.py": SOURCE}))
    executor = LocalExecutor(code, tmp_path / "sandboxes", "us-east-1", lambda name: {})
    await executor.start()
    try:
        latest, one = _spec(ref.hex, "$LATEST"), _spec(ref.hex, "1")
        assert executor.idle_by_key() == {}
        requests = [InvokeRequest(request_id=f"r{i}", payload=b"{}", invoked_arn="arn:fn") for i in range(12)]
        results = await asyncio.gather(*(executor.invoke(latest, r) for r in requests))
        # Twelve at once: twelve cold starts, twelve environments, all idle afterwards.
        assert all(r.usage.cold and r.function_error is None for r in results)
        assert len({r.payload for r in results}) == 12
        assert executor.idle_by_key() == {latest.pool_key: 12}
        await executor.provision(one, 2)
        for _ in range(300):
            if executor.provisioned()[one.pool_key].idle == 2:
                break
            await asyncio.sleep(0.05)
        assert executor.idle_by_key() == {latest.pool_key: 12, one.pool_key: 2}
        await executor.invoke(latest, requests[0])  # on-demand, warm: still idle afterwards
        assert await executor.reap_idle(0.0) == 12
        assert executor.idle_by_key() == {one.pool_key: 2}  # provisioned ones are never reaped
    finally:
        await executor.shutdown(1.0)


def test_concurrent_cold_starts_and_idle_by_key(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))
