"""Queue-triggered functions: each enabled queue mapping's batches, several in flight at once.

A ``QueuePoller`` runs workers that each receive a batch (up to BatchSize, gathered for up to
MaximumBatchingWindowInSeconds, at most 6 MB), drop the messages the filters reject (deleting them,
as Lambda does), invoke the function synchronously and delete what it handled. What fails stays in
the queue: it becomes visible again when its visibility timeout ends, and the queue's redrive policy
moves it to a dead-letter queue after maxReceiveCount receives. Workers start at five, one more
joins whenever a worker gets a full batch (at most five a second, up to MaximumConcurrency), and idle
ones leave down to two. Sends wake idle workers at once; a message that becomes visible by itself
wakes them when its time comes.

One server at a time polls a mapping: the holder of its lease (``queue-mapping/<uuid>`` in the
``LeaseStore``, renewed on a heartbeat). So MaximumConcurrency holds for the deployment, and when the
holder dies its lease expires (or is freed at once by a server on the same host) and another server
takes the mapping over; the messages the dead one had received come back when their visibility
timeout ends, as SQS redelivers anything not deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from squall.runtime.bootstrap.batch_events import sqs_shape
from squall.services.queues.events import sqs_batch, sqs_record
from squall.services.queues.models import Received
from squall.services.queues.service import QueueService
from squall.sources.filters import matches_any, parse_filters
from squall.sources.mappings import EventSourceMapping, Invoke, MappingStore
from squall.sources.owner import new_owner, owner_alive
from squall.stores.base import LeaseStore

log = logging.getLogger(__name__)

START_WORKERS = 5
MIN_WORKERS = 2
MAX_WORKERS = 1000
#: Lambda adds up to 300 concurrent batches a minute.
SCALE_UP_INTERVAL_S = 0.2
IDLE_WAIT_S = 20.0
SUPERVISE_INTERVAL_S = 1.0
MAX_BATCH_BYTES = 6 * 1024 * 1024
#: What the messages themselves may take: the rest of the 6 MB is the event's JSON around them.
MESSAGE_BYTES_BUDGET = MAX_BATCH_BYTES * 5 // 6
#: A received message's share of the event beyond its body and attributes (ids, handle, digests).
RECORD_OVERHEAD = 800
#: Messages per receive from the queue service (its byte budget keeps a batch under 6 MB).
RECEIVE_CHUNK = 1000
_ENCODE = msgspec.json.Encoder().encode
#: A mapping's lease lasts this long without a heartbeat; heartbeats come LEASE_RENEWALS times in it.
LEASE_TTL_S = 30.0
LEASE_RENEWALS = 6

#: The function's timeout in seconds, by function ARN.
FunctionTimeout = Callable[[str], Awaitable[int]]


def is_queue_arn(arn: str) -> bool:
    return arn.startswith("arn:aws:sqs:")


def lease_name(mapping_uuid: str) -> str:
    """The lease that lets one server at a time poll the queue mapping ``mapping_uuid``."""
    return f"queue-mapping/{mapping_uuid}"


def sqs_view(record: dict[str, Any]) -> dict[str, Any]:
    """What an SQS message's filter sees: its record, with ``body`` as JSON when it is JSON."""
    view = dict(record)
    with contextlib.suppress(ValueError):
        view["body"] = json.loads(record["body"])
    return view


class QueuePoller:
    """Delivers one queue's messages to one mapping's function."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        queues: QueueService,
        store: MappingStore,
        invoke: Invoke,
        visibility: int | None,
        wakeup: Callable[[], asyncio.Event],
    ) -> None:
        self.mapping = mapping
        self.queues = queues
        self.store = store
        self.invoke = invoke
        self.visibility = visibility
        self.wakeup = wakeup
        self.name = queues.name_of_arn(mapping.event_source_arn) or ""
        self.cap = mapping.maximum_concurrency or MAX_WORKERS
        self._filters = parse_filters({"Filters": [{"Pattern": p} for p in mapping.filter_patterns]})
        self._workers: set[asyncio.Task[None]] = set()
        self._last_scale_up = 0.0
        self._done = asyncio.Event()

    @property
    def workers(self) -> int:
        return len(self._workers)

    async def run(self) -> None:
        for _ in range(min(START_WORKERS, self.cap)):
            self._spawn()
        try:
            await self._done.wait()
        finally:
            for task in list(self._workers):
                task.cancel()
            for task in list(self._workers):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _spawn(self) -> None:
        task = asyncio.ensure_future(self._work())
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    def _scale_up(self) -> None:
        now = time.monotonic()
        if self.workers < self.cap and now - self._last_scale_up >= SCALE_UP_INTERVAL_S:
            self._last_scale_up = now
            self._spawn()

    async def _work(self) -> None:
        idle = 0
        while True:
            signal = self.wakeup()  # taken before receiving, so a send in between still wakes us
            try:
                batch = await self._gather()
            except Exception:
                log.exception("mapping %s: could not receive from %s", self.mapping.uuid, self.name)
                await asyncio.sleep(1.0)
                continue
            if not batch:
                idle += 1
                if idle >= 2 and self.workers > MIN_WORKERS:
                    return
                await self._idle(signal)
                continue
            idle = 0
            if len(batch) >= self.mapping.batch_size:
                self._scale_up()
            await self._handle(batch)

    async def _idle(self, signal: asyncio.Event) -> None:
        due = await asyncio.to_thread(self.queues.next_visible, self.name)
        wait = IDLE_WAIT_S if due is None else max(0.01, min(IDLE_WAIT_S, due - time.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signal.wait(), wait)

    async def _gather(self) -> list[Received]:
        """A batch: what is there now, then (with a batching window) more until the batch is full,
        the window ends, or the event would pass 6 MB."""
        batch: list[Received] = []
        size = 0
        deadline = None
        while len(batch) < self.mapping.batch_size:
            signal = self.wakeup()
            got = await asyncio.to_thread(
                self.queues.receive,
                self.name,
                min(RECEIVE_CHUNK, self.mapping.batch_size - len(batch)),
                self.visibility,
                max(1, MESSAGE_BYTES_BUDGET - size),
            )
            batch += got
            size += sum(len(m.body) + len(_ENCODE(m.attributes)) + RECORD_OVERHEAD for m in got)
            if got and size < MESSAGE_BYTES_BUDGET - RECORD_OVERHEAD:
                continue
            window = self.mapping.maximum_batching_window_s
            if got or not batch or not window:
                break
            deadline = deadline or time.monotonic() + window
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), left)
        return batch

    async def _handle(self, batch: list[Received]) -> None:
        arn, region = self.mapping.event_source_arn, self.queues.region
        if self._filters:
            kept = [m for m in batch if matches_any(self._filters, sqs_view(sqs_record(m, arn, region)))]
            kept_ids = {m.message_id for m in kept}
            dropped = [m.receipt_handle for m in batch if m.message_id not in kept_ids]
            if dropped:  # messages no filter matches are deleted, as Lambda does
                await asyncio.to_thread(self.queues.delete, self.name, dropped)
            batch = kept
            if not batch:
                return
        try:
            error, payload, _ = await self.invoke(self.mapping, sqs_batch(batch), sqs_shape(arn, region))
        except Exception:
            log.exception("mapping %s: could not invoke the function", self.mapping.uuid)
            return  # the messages become visible again when their visibility timeout ends
        failed = self._failed(batch, error, payload)
        handled = [m.receipt_handle for m in batch if m.message_id not in failed]
        if handled:
            await asyncio.to_thread(self.queues.delete, self.name, handled)
        result = "OK" if not failed else "PROBLEM: Function call failed"
        if result != self.mapping.last_processing_result:
            self.mapping.last_processing_result = result
            await asyncio.to_thread(self.store.record_result, self.mapping.uuid, result)

    def _failed(self, batch: list[Received], error: str | None, payload: bytes) -> set[str]:
        """The message ids to leave in the queue."""
        everything = {m.message_id for m in batch}
        if error is not None:
            return everything
        if "ReportBatchItemFailures" not in self.mapping.function_response_types:
            return set()
        try:
            response: Any = json.loads(payload) if payload else None
        except ValueError:
            return everything
        if not response or not isinstance(response, dict) or not response.get("batchItemFailures"):
            return set()
        failed = set()
        for item in response["batchItemFailures"]:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not identifier or identifier not in everything:
                return everything  # an unusable report fails the whole batch
            failed.add(str(identifier))
        return failed

    def stop(self) -> None:
        self._done.set()


class QueueMappings:
    """Runs a ``QueuePoller`` for every enabled mapping whose source is a queue and whose lease this
    server holds. ``owner`` names this server in the leases (by default its process, ``new_owner``)."""

    def __init__(
        self,
        store: MappingStore,
        queues: QueueService,
        invoke: Invoke,
        function_timeout: FunctionTimeout,
        leases: LeaseStore,
        owner: str | None = None,
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> None:
        self.store = store
        self.queues = queues
        self.invoke = invoke
        self.function_timeout = function_timeout
        self.leases = leases
        self.owner = owner or new_owner()
        self.lease_ttl_s = lease_ttl_s
        self._pollers: dict[str, tuple[QueuePoller, asyncio.Task[None]]] = {}
        #: Whether another server holds a mapping this one would deliver (then its heartbeat also frees
        #: the leases of holders dead on this host).
        self._held_elsewhere = False
        self._signals: dict[str, asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.queues.add_listener(self._on_change)
        self._tasks = [asyncio.ensure_future(self._supervise()), asyncio.ensure_future(self._heartbeat())]

    def _on_change(self, queue: str) -> None:
        """Called in the sending thread after a commit: wake that queue's idle workers at once."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake, queue)

    def _wake(self, queue: str) -> None:
        self._signals.pop(queue, asyncio.Event()).set()

    def _signal(self, queue: str) -> asyncio.Event:
        return self._signals.setdefault(queue, asyncio.Event())

    def poller(self, uuid: str) -> QueuePoller | None:
        entry = self._pollers.get(uuid)
        return entry[0] if entry else None

    def forget(self, uuid: str, release: bool = True) -> None:
        """Stop a mapping's poller (disabled, changed or deleted) and give up its lease; the supervisor
        restarts it if needed. ``release=False``: the lease is lost already."""
        entry = self._pollers.pop(uuid, None)
        if entry is not None:
            entry[0].stop()
            if release:
                with contextlib.suppress(Exception):
                    self.leases.release(self.owner, lease_name(uuid))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for poller, _ in self._pollers.values():
            poller.stop()
        for _, task in list(self._pollers.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # Handing the mappings over at once: another server need not wait for the leases to expire.
        for uuid in list(self._pollers):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.leases.release, self.owner, lease_name(uuid))
        self._pollers.clear()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl_s / LEASE_RENEWALS)
            if not self._pollers and not self._held_elsewhere:
                continue  # nothing to renew and nobody's leases to free: no write to the lease store
            try:
                held: set[str] = set()
                if self._pollers:
                    held = await asyncio.to_thread(self.leases.extend, self.owner, self.lease_ttl_s)
                if self._held_elsewhere:
                    # A holder dead on this host frees its mappings now, not when its leases expire.
                    await asyncio.to_thread(self.leases.reap_abandoned, owner_alive)
            except Exception:
                log.exception("queue mappings: could not renew leases")
                continue
            for uuid in [u for u in self._pollers if lease_name(u) not in held]:
                log.warning("mapping %s: lost its lease; another server delivers it now", uuid)
                self.forget(uuid, release=False)

    async def _supervise(self) -> None:
        while True:
            try:
                await self._reconcile()
            except Exception:
                log.exception("queue mappings: reconcile failed")
            await asyncio.sleep(SUPERVISE_INTERVAL_S)

    async def _reconcile(self) -> None:
        mappings = [m for m in await asyncio.to_thread(self.store.all) if is_queue_arn(m.event_source_arn)]
        current = {m.uuid: m.last_modified for m in mappings if m.enabled}
        for uuid in [u for u, (poller, _) in self._pollers.items() if poller.mapping.last_modified != current.get(u)]:
            self.forget(uuid)  # disabled, deleted, or changed (through any server): restarted below
        for uuid in [u for u, (_, task) in self._pollers.items() if task.done()]:
            self.forget(uuid)  # crashed: started again below
        waiting = [m for m in mappings if m.enabled and m.uuid not in self._pollers]
        if not waiting:
            self._held_elsewhere = False
            return
        held = await asyncio.to_thread(self.leases.holders)
        self._held_elsewhere = any(held.get(lease_name(m.uuid), self.owner) != self.owner for m in waiting)
        for mapping in waiting:
            if held.get(lease_name(mapping.uuid), self.owner) == self.owner:  # not another server's
                await self._start(mapping)

    async def _start(self, mapping: EventSourceMapping) -> None:
        name = self.queues.name_of_arn(mapping.event_source_arn)
        if name is None:
            return
        try:
            queue = await asyncio.to_thread(self.queues.queue, name)
            timeout = await self.function_timeout(mapping.function_arn)
        except Exception:
            # The queue or function is gone for now (or the store is out of reach): tried again on
            # the next round.
            return
        # Lambda's rule: when window + function timeout outlast the queue's visibility timeout, the
        # messages it holds are hidden for window + timeout + 30 s instead.
        visibility = None
        if mapping.maximum_batching_window_s + timeout > queue.number("VisibilityTimeout"):
            visibility = mapping.maximum_batching_window_s + timeout + 30
        if not await asyncio.to_thread(self.leases.acquire, self.owner, lease_name(mapping.uuid), self.lease_ttl_s):
            return  # another server took it first
        poller = QueuePoller(mapping, self.queues, self.store, self.invoke, visibility, lambda: self._signal(name))
        self._pollers[mapping.uuid] = (poller, asyncio.ensure_future(poller.run()))
