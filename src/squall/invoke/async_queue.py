"""Asynchronous invocation: a durable queue and the dispatcher that drains it.

An Event invocation is acknowledged only once it is committed to the store, so it survives a
restart. The dispatcher claims due events with a lease (a crashed server's events come back when
the lease ends) and runs them under the same concurrency rules, waiting for a free slot rather
than dropping anything. Function errors are retried (``MaximumRetryAttempts``, ~1 then ~2 min),
throttles back off exponentially, events older than ``MaximumEventAgeInSeconds`` are dropped, and
the outcome goes to the OnSuccess / OnFailure destination, and a failed event to the function's dead-letter
queue too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from squall.errors import ResourceConflict, ResourceNotFound
from squall.invoke.destinations import Destinations, invocation_record
from squall.invoke.event_config import EventConfigStore, EventInvokeConfig
from squall.invoke.sync import Invoker
from squall.models import LATEST, AsyncEvent, FunctionConfig, InvokeResult
from squall.stores.base import MetadataStore

log = logging.getLogger(__name__)

#: Longest an event may stay claimed: the maximum timeout plus init and some slack.
LEASE_S = 900 + 60
POLL_S = 0.5
CLAIM_BATCH = 64
#: Lambda's delays before the first and second retry of a function error (spec section 4).
RETRY_DELAYS_S = (60.0, 120.0)
#: Throttles and dispatch failures: exponential backoff from 1 s up to 5 min (spec section 4).
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 300.0
#: ``attempts`` holds function runs in its low digits and dispatch failures in multiples of this.
DISPATCH_UNIT = 1000
MAX_DISPATCH_FAILURES = 1000


class AsyncDispatcher:
    """Owns the async queue: ``enqueue`` from the API, ``run`` in the background."""

    def __init__(
        self,
        store: MetadataStore,
        invoker: Invoker,
        retry_scale: float = 1.0,
        event_configs: EventConfigStore | None = None,
        destinations: Destinations | None = None,
    ) -> None:
        self.store = store
        self.invoker = invoker
        self.retry_scale = retry_scale
        self.event_configs = event_configs
        self.destinations = destinations
        self._wake = asyncio.Event()
        self._tasks: dict[asyncio.Task[None], AsyncEvent] = {}
        self._stopping = False
        #: Told of each dispatch: (function, qualifier, enqueued_at) for AsyncEventAge (metrics set it).
        self.on_dispatch: Callable[[str, str | None, float], None] = lambda name, qualifier, enqueued_at: None

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
            await self._dispatch_failed(event)
            return
        if self._stopping:
            await asyncio.to_thread(self.store.reschedule, event.id, 0.0, event.attempts)
            return
        settings = await self._settings(event)
        invokes = event.attempts % DISPATCH_UNIT
        # The scale compresses the whole async timeline: delays and event ages alike.
        if time.time() - event.enqueued_at > settings.max_age_s * self.retry_scale:
            await self._finish(event, config, settings, "EventAgeExceeded", invokes, None)
            return
        if self.invoker.limiter.reserved.get(config.name) == 0:
            # Reserved concurrency 0: straight to the on-failure destination, without retries.
            await self._finish(event, config, settings, "RetriesExhausted", invokes, None)
            return
        self.on_dispatch(event.function_name, qualifier, event.enqueued_at)
        try:
            _, result = await self.invoker.invoke(
                config,
                event.payload,
                qualifier=qualifier,
                trigger="event",
                wait=True,
                request_id=event.request_id,
            )
        except Exception:
            log.exception("async event %s could not be run; it is retried", event.request_id)
            await self._dispatch_failed(event)
            return
        invokes += 1
        if result.function_error is None:
            await self._finish(event, config, settings, "Success", invokes, result)
        elif invokes <= settings.retries:
            delay = RETRY_DELAYS_S[min(invokes, len(RETRY_DELAYS_S)) - 1] * self.retry_scale
            attempts = event.attempts - event.attempts % DISPATCH_UNIT + invokes
            await asyncio.to_thread(self.store.reschedule, event.id, time.time() + delay, attempts)
        else:
            await self._finish(event, config, settings, "RetriesExhausted", invokes, result)

    async def _settings(self, event: AsyncEvent) -> EventInvokeConfig:
        found = None
        if self.event_configs is not None:
            found = await asyncio.to_thread(self.event_configs.get, event.function_name, event.qualifier or LATEST)
        return found or EventInvokeConfig(function_name=event.function_name, qualifier=event.qualifier, last_modified=0)

    async def _dispatch_failed(self, event: AsyncEvent) -> None:
        """Throttled or not dispatched: back off exponentially (1 s up to 5 min), not counted as a retry."""
        failures = event.attempts // DISPATCH_UNIT
        delay = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2**failures) * self.retry_scale
        attempts = event.attempts + DISPATCH_UNIT if failures < MAX_DISPATCH_FAILURES else event.attempts
        await asyncio.to_thread(self.store.reschedule, event.id, time.time() + delay, attempts)

    async def _finish(
        self,
        event: AsyncEvent,
        config: FunctionConfig,
        settings: EventInvokeConfig,
        condition: str,
        invokes: int,
        result: InvokeResult | None,
    ) -> None:
        """Done with an event: send its record to the matching destination, then drop it from the queue."""
        target = settings.on_success if condition == "Success" else settings.on_failure
        if condition != "Success":
            log.warning("async event %s of %s failed: %s", event.request_id, event.function_name, condition)
        if target and self.destinations is not None:
            record = invocation_record(
                request_id=event.request_id,
                function_arn=self.invoker.registry.arn(config.name, config.version),
                condition=condition,
                invoke_count=invokes,
                request_payload=event.payload,
                executed_version=config.version,
                function_error=result.function_error if result is not None else None,
                response_payload=result.payload if result is not None else None,
            )
            await self.destinations.send(target, record)
        if condition != "Success" and config.dead_letter_target and self.destinations is not None:
            delivered = await self.destinations.dead_letter(
                config.dead_letter_target,
                event.payload,
                event.request_id,
                _error_message(result) or condition,
                # A function error is a 200 invoke; an event that never ran was throttled.
                200 if result is not None else 429,
            )
            if not delivered:
                self.destinations.on_dead_letter_error(config.name)
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


def _error_message(result: InvokeResult | None) -> str:
    """The ``errorMessage`` of a failed invocation's payload, if it has one."""
    if result is None or result.function_error is None:
        return ""
    try:
        payload = json.loads(result.payload)
    except ValueError:
        return result.payload.decode("utf-8", "replace")
    return str(payload.get("errorMessage", "")) if isinstance(payload, dict) else str(payload)
