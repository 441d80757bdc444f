"""The async dispatcher's retry arithmetic on a real SQLite queue, and event invoke config merging."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from squall.invoke.async_queue import DISPATCH_UNIT, AsyncDispatcher
from squall.invoke.concurrency import ConcurrencyLimiter
from squall.invoke.event_config import EventInvokeConfig
from squall.models import AsyncEvent, FunctionConfig
from squall.stores.sqlite import SqliteMetadataStore


class FailingInvoker:
    """Resolves every function but never manages to dispatch it."""

    def __init__(self) -> None:
        self.limiter = ConcurrencyLimiter(10)
        self.calls = 0

    async def resolve(self, name: str, qualifier: str | None) -> FunctionConfig:
        return FunctionConfig(name=name, runtime="python3.12", role="r", handler="h", code_sha256="", code_size=0)

    async def invoke(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise RuntimeError("executor unavailable")


def test_dispatch_failures_back_off_exponentially_without_counting_as_retries(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "squall.db")
    invoker = FailingInvoker()
    dispatcher = AsyncDispatcher(store, invoker, retry_scale=0.5)  # type: ignore[arg-type]
    store.enqueue(
        AsyncEvent(id=0, request_id="r", function_name="f", qualifier="$LATEST", payload=b"{}", enqueued_at=time.time())
    )
    delays = []
    for _ in range(12):
        (event,) = store.claim(time.time() + 10_000, 1, 60)
        before = time.time()
        asyncio.run(dispatcher._run_one(event))
        (after,) = store.claim(time.time() + 10_000, 1, 60)
        assert after.attempts % DISPATCH_UNIT == 0  # no function run was counted
        delays.append(after.not_before - before)
        store.reschedule(after.id, after.not_before, after.attempts)
    # 1 s, 2 s, 4 s ... capped at 5 min, all times the scale of 0.5.
    expected = [min(300.0, 2.0**n) * 0.5 for n in range(12)]
    assert delays == pytest.approx(expected, abs=0.5)
    assert invoker.calls == 12
    store.close()


def test_put_replaces_and_update_merges() -> None:
    base = EventInvokeConfig(function_name="f", qualifier="$LATEST", last_modified=0.0)
    first = base.apply(
        {"MaximumRetryAttempts": 1, "DestinationConfig": {"OnFailure": {"Destination": "arn:x"}}}, replace=True
    )
    assert (first.retries, first.max_age_s, first.on_failure) == (1, 21_600, "arn:x")
    merged = first.apply({"MaximumEventAgeInSeconds": 60}, replace=False)
    assert (merged.maximum_retry_attempts, merged.maximum_event_age_s, merged.on_failure) == (1, 60, "arn:x")
    replaced = merged.apply({"MaximumEventAgeInSeconds": 120}, replace=True)
    assert (replaced.maximum_retry_attempts, replaced.on_failure, replaced.retries) == (None, None, 2)
    assert replaced.last_modified > 0
