"""One shard's delivery to one mapping's function, in order, at least once.

A poller reads from its durable checkpoint, drops the records its filters reject, and hands the rest
to the function in batches: one lane in shard order, or, with a ParallelizationFactor above one,
several lanes that each keep the order of their partition keys and run at the same time. The
checkpoint moves only after every batch of a read was handled or deliberately discarded. A function
error blocks its lane: the batch is retried (bisected when asked) until it succeeds, runs out of
retries, or grows too old. With a tumbling window the function's state travels from batch to batch,
and a final invocation closes each window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from squall.services.streams.service import Shard, StoredRecord
from squall.sources.filters import matches_any, parse_filters
from squall.sources.mappings import EventSourceMapping, Invoke, MappingStore
from squall.sources.shard_sources import ShardSource
from squall.sources.windows import MAX_STATE_BYTES, Window, state_of

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2
#: An idle poller waits for a put notification; this is only the backstop.
IDLE_WAIT_S = 5.0
MAX_BATCH_BYTES = 6 * 1024 * 1024
RETRY_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)
#: Records per read query; bounds memory when records are large.
READ_PAGE = 500

#: Sends a failure record to an OnFailure destination (by ARN).
Deliver = Callable[[str, bytes], Awaitable[None]]


class ShardPoller:
    """Delivers one shard's records (of a Kinesis stream or a table stream: ``source``) to one mapping's function."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        shard: Shard,
        source: ShardSource,
        store: MappingStore,
        invoke: Invoke,
        role_arn: str,
        deliver: Deliver | None = None,
        wakeup: Callable[[], asyncio.Event] | None = None,
    ) -> None:
        self.mapping = mapping
        self.shard = shard
        self.source = source
        self.store = store
        self.invoke = invoke
        self.role_arn = role_arn
        self.deliver = deliver
        self.wakeup = wakeup
        self.finished = False
        #: Set by ``hand_over``: the poller ends at its next checkpoint, leaving the shard to another server.
        self.handing_over = False
        self.iterator_age_ms: int | None = None
        self._busy = False
        self._attempts: dict[tuple[int, int], int] = {}
        self._filters = parse_filters({"Filters": [{"Pattern": p} for p in mapping.filter_patterns]})
        self._recorded_result: str | None = None
        self._window: Window | None = None
        self._size = source.sizer(shard.shard_id, mapping.event_source_arn, role_arn)
        #: Bytes of records an event may hold: 6 MB less ``{"Records":[]}``, and a window's fields
        #: with the largest state it may carry.
        self._room = MAX_BATCH_BYTES - 16 - (MAX_STATE_BYTES + 1024 if self.windowed else 0)

    def hand_over(self, task: asyncio.Task[None]) -> None:
        """End this poller (running as ``task``) without repeating a batch: now when it is between
        batches, else once the batch in hand is checkpointed."""
        self.handing_over = True
        if not self._busy:
            task.cancel()

    @property
    def windowed(self) -> bool:
        return self.mapping.tumbling_window_s > 0

    async def run(self) -> None:
        position, window, _ = await asyncio.to_thread(self.store.progress, self.mapping.uuid, self.shard.shard_id)
        self._window = Window.load(window)
        if position is None:
            position = self.shard.start_seq
            await self._checkpoint(position)
        # With a window, state is per shard, so the shard is one lane.
        lanes = 1 if self.windowed else self.mapping.parallelization_factor
        while not self.handing_over:
            # Taken before reading, so a put that lands between the read and the wait still wakes us.
            signal = self.wakeup() if self.wakeup is not None else None
            records = await self._read(position, self.mapping.batch_size * lanes)
            if not records:
                if self._window is not None and (self._window.ended() or self.shard.end_seq is not None):
                    with self._in_hand():
                        await self._close_window()  # the window ended (or the shard did: resharding closes it)
                        await self._checkpoint(position)
                    continue
                if self.shard.end_seq is not None:
                    await self._checkpoint(self.shard.end_seq + 1)
                    self.finished = True
                    return
                await self._idle(signal)
                continue
            with self._in_hand():
                # Without filters nothing is parsed: matching would decode every record's data for nothing.
                kept = records
                if self._filters:
                    kept = [r for r in records if matches_any(self._filters, self.source.view(r))]
                if self.windowed:
                    await self._deliver_windowed(kept)
                else:
                    async with asyncio.TaskGroup() as group:
                        for lane in _lanes(kept, lanes):
                            group.create_task(self._deliver_lane(lane))
                # Filtered-out records are skipped for good: the checkpoint moves past them too.
                position = records[-1].seq + 1
                await self._checkpoint(position)
                await self._record_result()

    @contextlib.contextmanager
    def _in_hand(self) -> Iterator[None]:
        """While a batch is between its read and its checkpoint: a hand-over waits for its end."""
        self._busy = True
        try:
            yield
        finally:
            self._busy = False

    async def _record_result(self) -> None:
        """Store LastProcessingResult when it changed since this poller last stored it."""
        result = self.mapping.last_processing_result
        if result != self._recorded_result:
            await asyncio.to_thread(self.store.record_result, self.mapping.uuid, result)
            self._recorded_result = result

    async def _read(self, position: int, limit: int) -> list[StoredRecord]:
        records = await asyncio.to_thread(self._fetch, position, limit)
        if records and self.mapping.maximum_batching_window_s and len(records) < limit:
            await asyncio.sleep(self.mapping.maximum_batching_window_s)
            records = await asyncio.to_thread(self._fetch, position, limit)
        return records

    def _fetch(self, position: int, limit: int) -> list[StoredRecord]:
        """Up to ``limit`` records, read in pages and stopped at about one full batch per lane of bytes,
        so that big records never pile up in memory."""
        records: list[StoredRecord] = []
        budget = MAX_BATCH_BYTES * max(1, self.mapping.parallelization_factor)
        while len(records) < limit and budget > 0:
            page = self.source.read(
                self.mapping.event_source_arn, self.shard.shard_id, position, min(READ_PAGE, limit - len(records))
            )
            if not page:
                break
            records += page
            budget -= sum(len(r.data) for r in page)
            position = page[-1].seq + 1
        return records

    async def _idle(self, signal: asyncio.Event | None) -> None:
        wait = IDLE_WAIT_S if self._window is None else max(0.0, min(IDLE_WAIT_S, self._window.end - time.time()))
        if signal is None:
            await asyncio.sleep(min(wait, POLL_INTERVAL_S))
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signal.wait(), wait)

    async def _checkpoint(self, position: int) -> None:
        window = self._window.dump() if self._window is not None else None
        await asyncio.to_thread(
            self.store.save_checkpoint, self.mapping.uuid, self.shard.shard_id, position, window, self.iterator_age_ms
        )

    async def _deliver_lane(self, records: list[StoredRecord]) -> None:
        for batch in _batches(records, self.mapping.batch_size, self._size, self._room):
            await self._deliver(batch)

    async def _deliver_windowed(self, records: list[StoredRecord]) -> None:
        """Batches that never span two windows; a record of a later window first closes the open one."""
        start = 0
        while start < len(records):
            if self._window is not None and not self._window.holds(records[start].arrival):
                await self._close_window()
            if self._window is None:
                self._window = Window.containing(records[start].arrival, self.mapping.tumbling_window_s)
            end = start
            while end < len(records) and self._window.holds(records[end].arrival):
                end += 1
            for batch in _batches(records[start:end], self.mapping.batch_size, self._size, self._room):
                await self._deliver(batch)
                if self._window is not None and self._window.too_big():
                    await self._close_window(early=True)
                    self._window = Window.containing(batch[-1].arrival, self.mapping.tumbling_window_s)
            start = end

    async def _close_window(self, early: bool = False) -> None:
        """The window's final invocation (no records, its state); retried like a batch, then dropped."""
        window, attempts = self._window, 0
        if window is None:
            return
        event = {"Records": []} | window.fields(
            self.shard.shard_id, self.mapping.event_source_arn, final=True, early=early
        )
        while True:
            attempts += 1
            try:
                error, _, _ = await self.invoke(self.mapping, json.dumps(event).encode(), None)
            except Exception:
                log.exception("mapping %s: could not invoke the function", self.mapping.uuid)
                await asyncio.sleep(RETRY_BACKOFF_S[-1])
                continue
            retries = self.mapping.maximum_retry_attempts
            if error is None or (retries != -1 and attempts > retries):
                break
            await asyncio.sleep(RETRY_BACKOFF_S[min(attempts, len(RETRY_BACKOFF_S)) - 1])
        self._window = None

    async def _deliver(self, records: list[StoredRecord]) -> None:
        """Handle a batch until it succeeds or is discarded."""
        pending = [records]
        while pending:
            batch = pending.pop(0)
            window = self._window
            extra = window.fields(self.shard.shard_id, self.mapping.event_source_arn) if window is not None else None
            body, shape = self.source.payload(
                batch, self.shard.shard_id, self.mapping.event_source_arn, self.role_arn, extra
            )
            self.iterator_age_ms = int((time.time() - batch[-1].arrival) * 1000)
            try:
                error, payload, version = await self.invoke(self.mapping, body, shape)
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
            await self._record_result()
            remaining = [r for r in batch if r.seq >= failed_from]
            key = (remaining[0].seq, remaining[-1].seq)
            attempts = self._attempts.get(key, 0) + 1
            self._attempts[key] = attempts
            condition = self._expired(remaining, attempts)
            if condition is not None:
                log.warning(
                    "mapping %s: discarding records %s..%s of %s after %d attempts (%s)",
                    self.mapping.uuid,
                    self.source.sequence(key[0]),
                    self.source.sequence(key[1]),
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

    def _first_failure(self, batch: list[StoredRecord], error: str | None, payload: bytes) -> int | None:
        """The first sequence counter to retry from, or None when the whole batch succeeded.

        In a window, the state the function returned is kept even when it reports some records failed.
        """
        if error is not None:
            return batch[0].seq
        try:
            response: Any = json.loads(payload) if payload else None
        except ValueError:
            response = ValueError
        if self._window is not None:
            state = state_of(response)
            if state is None:
                return batch[0].seq  # a windowed invocation must return its state
            self._window.state = state
        if "ReportBatchItemFailures" not in self.mapping.function_response_types:
            return None
        if response is ValueError:
            return batch[0].seq
        if not response or not isinstance(response, dict) or not response.get("batchItemFailures"):
            return None
        numbers = {self.source.sequence(r.seq): r.seq for r in batch}
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
        """Send the spec's invocation record (with ``KinesisBatchInfo`` or ``DDBStreamBatchInfo``, no records)
        to OnFailure."""
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
            self.source.batch_info_key: {
                "shardId": self.shard.shard_id,
                "startSequenceNumber": self.source.sequence(records[0].seq),
                "endSequenceNumber": self.source.sequence(records[-1].seq),
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


def _lanes(records: list[StoredRecord], count: int) -> list[list[StoredRecord]]:
    """Split records into ``count`` lanes by partition key, each lane in shard order."""
    if count <= 1:
        return [records] if records else []
    lanes: list[list[StoredRecord]] = [[] for _ in range(count)]
    for record in records:
        lanes[zlib.crc32(record.partition_key.encode()) % count].append(record)
    return [lane for lane in lanes if lane]


def _batches(
    records: list[StoredRecord], count: int, size: Callable[[StoredRecord], int], room: int
) -> list[list[StoredRecord]]:
    """Consecutive batches of at most ``count`` records and ``room`` bytes of them in the event
    (``size``: a record's bytes there); a record too big for any batch goes alone."""
    batches: list[list[StoredRecord]] = []
    current: list[StoredRecord] = []
    total = 0
    for record in records:
        weight = size(record)
        if current and (len(current) >= count or total + weight > room):
            batches.append(current)
            current, total = [], 0
        current.append(record)
        total += weight
    if current:
        batches.append(current)
    return batches
