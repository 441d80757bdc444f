"""Asynchronous invocation: a durable queue and the dispatcher that drains it.

An Event invocation is acknowledged only once it is committed to the store, so it survives a
restart. The dispatcher claims due events with a lease (a crashed server's events come back when
the lease ends) and runs them under the same concurrency rules, waiting for a free slot rather
than dropping anything. Retries, destinations and the DLQ build on this (later issue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from squall.errors import ResourceConflict, ResourceNotFound
from squall.invoke.sync import Invoker
from squall.models import AsyncEvent
from squall.stores.base import MetadataStore

log = logging.getLogger(__name__)

#: Longest an event may stay claimed: the maximum timeout plus init and some slack.
LEASE_S = 900 + 60
POLL_S = 0.5
CLAIM_BATCH = 64


class AsyncDispatcher:
    """Owns the async queue: ``enqueue`` from the API, ``run`` in the background."""

    def __init__(self, store: MetadataStore, invoker: Invoker) -> None:
        self.store = store
        self.invoker = invoker
        self._wake = asyncio.Event()
        self._tasks: dict[asyncio.Task[None], AsyncEvent] = {}
        self._stopping = False

    async def enqueue(self, function_name: str, qualifier: str, payload: bytes, request_id: str) -> None:
        event = AsyncEvent(
            id=0,
            request_id=request_id,
            function_name=function_name,
            qualifier=qualifier,
            payload=payload,
            enqueued_at=time.time(),
        )
        await asyncio.to_thread(self.store.enqueue, event)
        self._wake.set()

    async def run(self) -> None:
        """Claim due events and run them until stopped."""
        while not self._stopping:
            capacity = max(1, min(CLAIM_BATCH, self.invoker.limiter.available))
            events = await asyncio.to_thread(self.store.claim, time.time(), capacity, LEASE_S)
            for event in events:
                task = asyncio.ensure_future(self._run_one(event))
                self._tasks[task] = event
                task.add_done_callback(self._forget)
            if not events:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)
            elif self.invoker.limiter.available == 0:
                await asyncio.sleep(0.01)

    async def _run_one(self, event: AsyncEvent) -> None:
        qualifier = None if event.qualifier in ("", "$LATEST") else event.qualifier
        try:
            config = await self.invoker.resolve(event.function_name, qualifier)
        except ResourceNotFound:
            log.warning("dropping async event %s: function %s no longer exists", event.request_id, event.function_name)
            await asyncio.to_thread(self.store.complete, event.id)
            return
        except ResourceConflict:
            await asyncio.to_thread(self.store.reschedule, event.id, time.time() + 1, event.attempts)
            return
        if self._stopping:
            await asyncio.to_thread(self.store.reschedule, event.id, 0.0, event.attempts)
            return
        try:
            await self.invoker.invoke(
                config,
                event.payload,
                qualifier=qualifier,
                trigger="event",
                wait=True,
                request_id=event.request_id,
            )
        except Exception:
            log.exception("async event %s could not be run; it is retried", event.request_id)
            await asyncio.to_thread(self.store.reschedule, event.id, time.time() + 1, event.attempts + 1)
            return
        await asyncio.to_thread(self.store.complete, event.id)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    async def stop(self, grace_s: float) -> None:
        """Stop claiming; let running events finish up to ``grace_s``; put back the rest."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace_s)
        for task, event in list(self._tasks.items()):
            task.cancel()
            # Cut short by the shutdown: due again as soon as Squall is back.
            self.store.reschedule(event.id, 0.0, event.attempts)
