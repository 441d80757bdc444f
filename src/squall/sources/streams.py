"""Stream-triggered functions: one poller per (mapping, shard) delivering batches in order.

Each poller reads from its durable checkpoint, invokes the function synchronously with a batch
(waiting for a concurrency slot rather than dropping anything), and moves the checkpoint only after
the batch was handled or deliberately discarded. A function error blocks the shard: the batch is
retried (bisected when asked) until it succeeds, runs out of retries, or grows too old. Children of
a split or merged shard start once their parents are read to the end, so order per key holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from squall.services.streams.events import kinesis_event
from squall.services.streams.service import Shard, StoredRecord, StreamService, sequence
from squall.sources.filters import kinesis_view, matches_any, parse_filters
from squall.sources.mappings import EventSourceMapping, MappingStore

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2
#: An idle poller waits for a put notification; this is only the backstop.
IDLE_WAIT_S = 5.0
MAX_BATCH_BYTES = 6 * 1024 * 1024
RETRY_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)

#: Invokes the mapping's function with an event: (function error or None, response payload, executed version).
Invoke = Callable[[EventSourceMapping, bytes], Awaitable[tuple[str | None, bytes, str]]]
#: Sends a failure record to an OnFailure destination (by ARN).
Deliver = Callable[[str, bytes], Awaitable[None]]


def stream_name(arn: str) -> str:
    return arn.rpartition("stream/")[2]


class ShardPoller:
    """Delivers one shard's records to one mapping's function."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        shard: Shard,
        streams: StreamService,
        store: MappingStore,
        invoke: Invoke,
        role_arn: str,
        deliver: Deliver | None = None,
        wakeup: Callable[[], asyncio.Event] | None = None,
    ) -> None:
        self.mapping = mapping
        self.shard = shard
        self.streams = streams
        self.store = store
        self.invoke = invoke
        self.role_arn = role_arn
        self.deliver = deliver
        self.wakeup = wakeup
        self.finished = False
        self._attempts: dict[tuple[int, int], int] = {}
        self._filters = parse_filters({"Filters": [{"Pattern": p} for p in mapping.filter_patterns]})

    @property
    def name(self) -> str:
        return stream_name(self.mapping.event_source_arn)

    async def run(self) -> None:
        position = await asyncio.to_thread(self.store.checkpoint, self.mapping.uuid, self.shard.shard_id)
        if position is None:
            position = self.shard.start_seq
            await asyncio.to_thread(self.store.save_checkpoint, self.mapping.uuid, self.shard.shard_id, position)
        while True:
            # Taken before reading, so a put that lands between the read and the wait still wakes us.
            signal = self.wakeup() if self.wakeup is not None else None
            records, _ = await asyncio.to_thread(
                self.streams.read, self.name, self.shard.shard_id, position, self.mapping.batch_size
            )
            if records and self.mapping.maximum_batching_window_s and len(records) < self.mapping.batch_size:
                await asyncio.sleep(self.mapping.maximum_batching_window_s)
                records, _ = await asyncio.to_thread(
                    self.streams.read, self.name, self.shard.shard_id, position, self.mapping.batch_size
                )
            records = _cap(records)
            if not records:
                if self.shard.end_seq is not None:
                    await asyncio.to_thread(
                        self.store.save_checkpoint, self.mapping.uuid, self.shard.shard_id, self.shard.end_seq + 1
                    )
                    self.finished = True
                    return
                if signal is None:
                    await asyncio.sleep(POLL_INTERVAL_S)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(signal.wait(), IDLE_WAIT_S)
                continue
            kept = [r for r in records if matches_any(self._filters, kinesis_view(r.partition_key, r.data))]
            # Filtered-out records are skipped for good: the checkpoint moves past them.
            position = await self._deliver(kept) if kept else records[-1].seq + 1
            if kept and kept[-1].seq < records[-1].seq:
                position = records[-1].seq + 1
            await asyncio.to_thread(self.store.save_checkpoint, self.mapping.uuid, self.shard.shard_id, position)
            await asyncio.to_thread(self.store.record_result, self.mapping.uuid, self.mapping.last_processing_result)

    async def _deliver(self, records: list[StoredRecord]) -> int:
        """Handle a batch until it succeeds or is discarded; returns the next position to read."""
        pending = [records]
        while pending:
            batch = pending.pop(0)
            event = kinesis_event(
                batch, self.shard.shard_id, self.mapping.event_source_arn, self.streams.region, self.role_arn
            )
            try:
                error, payload, version = await self.invoke(self.mapping, json.dumps(event).encode())
            except Exception:
                # The batch never reached the function: retried, without counting against the retries.
                log.exception("mapping %s: could not invoke the function", self.mapping.uuid)
                await asyncio.sleep(RETRY_BACKOFF_S[-1])
                pending.insert(0, batch)
                continue
            failed_from = self._first_failure(batch, error, payload)
            if failed_from is None:
                self.mapping.last_processing_result = "OK"
                continue
            self.mapping.last_processing_result = "PROBLEM: Function call failed"
            remaining = [r for r in batch if r.seq >= failed_from]
            key = (remaining[0].seq, remaining[-1].seq)
            attempts = self._attempts.get(key, 0) + 1
            self._attempts[key] = attempts
            condition = self._expired(remaining, attempts)
            if condition is not None:
                log.warning(
                    "mapping %s: discarding records %s..%s of %s after %d attempts (%s)",
                    self.mapping.uuid,
                    sequence(key[0]),
                    sequence(key[1]),
                    self.shard.shard_id,
                    attempts,
                    condition,
                )
                await self._report_failure(remaining, condition, attempts, version, error)
                continue
            if self.mapping.bisect_on_error and error is not None and len(remaining) > 1:
                half = len(remaining) // 2
                pending[:0] = [remaining[:half], remaining[half:]]
                continue
            await asyncio.sleep(RETRY_BACKOFF_S[min(attempts, len(RETRY_BACKOFF_S)) - 1])
            pending.insert(0, remaining)
        return records[-1].seq + 1

    def _first_failure(self, batch: list[StoredRecord], error: str | None, payload: bytes) -> int | None:
        """The first sequence counter to retry from, or None when the whole batch succeeded."""
        if error is not None:
            return batch[0].seq
        if "ReportBatchItemFailures" not in self.mapping.function_response_types:
            return None
        try:
            response: Any = json.loads(payload) if payload else None
        except ValueError:
            return batch[0].seq
        if not response or not isinstance(response, dict) or not response.get("batchItemFailures"):
            return None
        numbers = {sequence(r.seq): r.seq for r in batch}
        failed = []
        for item in response["batchItemFailures"]:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not identifier or identifier not in numbers:
                return batch[0].seq  # an unusable report counts as a failure of the whole batch
            failed.append(numbers[identifier])
        return min(failed)

    def _expired(self, records: list[StoredRecord], attempts: int) -> str | None:
        """Why the records are given up on (the failure record's ``condition``), or None to retry."""
        age = self.mapping.maximum_record_age_s
        if age != -1 and time.time() - records[0].arrival > age:
            return "RecordAgeExceeded"
        retries = self.mapping.maximum_retry_attempts
        if retries != -1 and attempts > retries:
            return "RetryAttemptsExhausted"
        return None

    async def _report_failure(
        self, records: list[StoredRecord], condition: str, attempts: int, version: str, error: str | None
    ) -> None:
        """Send the spec's invocation record (with ``KinesisBatchInfo``, no records) to OnFailure."""
        if not self.mapping.on_failure or self.deliver is None:
            return
        record = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.mapping.function_arn,
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": version, "functionError": error or "Unhandled"},
            "version": "1.0",
            "timestamp": _iso(time.time()),
            "KinesisBatchInfo": {
                "shardId": self.shard.shard_id,
                "startSequenceNumber": sequence(records[0].seq),
                "endSequenceNumber": sequence(records[-1].seq),
                "approximateArrivalOfFirstRecord": _iso(records[0].arrival),
                "approximateArrivalOfLastRecord": _iso(records[-1].arrival),
                "batchSize": len(records),
                "streamArn": self.mapping.event_source_arn,
            },
        }
        try:
            await self.deliver(self.mapping.on_failure, json.dumps(record).encode())
        except Exception:
            log.exception("mapping %s: the OnFailure destination %s failed", self.mapping.uuid, self.mapping.on_failure)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


def _cap(records: list[StoredRecord]) -> list[StoredRecord]:
    """At most 6 MB of event per batch (base64 makes data 4/3 larger)."""
    total = 0
    for index, record in enumerate(records):
        total += len(record.data) * 4 // 3 + len(record.partition_key) + 300
        if total > MAX_BATCH_BYTES and index:
            return records[:index]
    return records


class StreamMappings:
    """Runs the pollers of every enabled stream mapping, following shards as streams are resharded."""

    def __init__(
        self, store: MappingStore, streams: StreamService, invoke: Invoke, role_arn: str, deliver: Deliver | None = None
    ) -> None:
        self.store = store
        self.streams = streams
        self.invoke = invoke
        self.role_arn = role_arn
        self.deliver = deliver
        self._signals: dict[str, asyncio.Event] = {}
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        self._pollers: dict[tuple[str, str], tuple[ShardPoller, asyncio.Task[None]]] = {}
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop_ref = asyncio.get_running_loop()
        self.streams.add_listener(self._on_put)
        self._loop = asyncio.ensure_future(self._supervise())

    def _on_put(self, stream: str) -> None:
        """Called in the putting thread after a commit: wake that stream's idle pollers at once."""
        if self._loop_ref is not None:
            self._loop_ref.call_soon_threadsafe(self._wake, stream)

    def _wake(self, stream: str) -> None:
        self._signals.pop(stream, asyncio.Event()).set()

    def _signal(self, stream: str) -> asyncio.Event:
        return self._signals.setdefault(stream, asyncio.Event())

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
        for _, task in self._pollers.values():
            task.cancel()
        for _, task in list(self._pollers.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._pollers.clear()

    def forget(self, uuid: str) -> None:
        """Stop the pollers of a mapping (disabled or deleted)."""
        for key in [k for k in self._pollers if k[0] == uuid]:
            self._pollers.pop(key)[1].cancel()

    async def _supervise(self) -> None:
        while True:
            try:
                await self._reconcile()
            except Exception:
                log.exception("stream mappings: reconcile failed")
            await asyncio.sleep(POLL_INTERVAL_S * 5)

    async def _reconcile(self) -> None:
        mappings = await asyncio.to_thread(self.store.all)
        active = {m.uuid for m in mappings if m.enabled}
        for key in [k for k in self._pollers if k[0] not in active]:
            self._pollers.pop(key)[1].cancel()
        for mapping in mappings:
            if not mapping.enabled:
                continue
            try:
                shards = await asyncio.to_thread(self.streams.shards, stream_name(mapping.event_source_arn))
            except Exception:
                continue
            done = {k[1] for k, (poller, _) in self._pollers.items() if k[0] == mapping.uuid and poller.finished}
            for shard in shards:
                key = (mapping.uuid, shard.shard_id)
                if key in self._pollers:
                    continue
                checkpoint = await asyncio.to_thread(self.store.checkpoint, mapping.uuid, shard.shard_id)
                if shard.end_seq is not None and checkpoint is not None and checkpoint > shard.end_seq:
                    continue  # read to its end already
                parents = [p for p in (shard.parent, shard.adjacent_parent) if p]
                ready = [await self._parent_done(mapping, p, done) for p in parents]
                if not all(ready):
                    continue  # children wait for their parents, so order per key holds
                name = stream_name(mapping.event_source_arn)
                poller = ShardPoller(
                    mapping,
                    shard,
                    self.streams,
                    self.store,
                    self.invoke,
                    self.role_arn,
                    self.deliver,
                    functools.partial(self._signal, name),
                )
                self._pollers[key] = (poller, asyncio.ensure_future(poller.run()))

    async def _parent_done(self, mapping: EventSourceMapping, parent: str, done: set[str]) -> bool:
        if parent in done:
            return True
        checkpoint = await asyncio.to_thread(self.store.checkpoint, mapping.uuid, parent)
        shards = await asyncio.to_thread(self.streams.shards, stream_name(mapping.event_source_arn))
        shard = next((s for s in shards if s.shard_id == parent), None)
        return shard is None or (shard.end_seq is not None and checkpoint is not None and checkpoint > shard.end_seq)
