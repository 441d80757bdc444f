"""Stream-triggered functions: the pollers of every enabled stream mapping, one per (mapping, shard).

Streams are Kinesis streams or table change streams; a ``ShardSource`` per kind hides the difference.

The supervisor starts a poller for each shard of each enabled mapping once it holds that shard's
lease (``LeaseStore``), so several server processes on the same data never deliver one shard twice.
It renews its leases on a heartbeat and stops the pollers of any lease it lost; it frees the leases of
servers that died, so a restarted server carries on from the checkpoints at once. Children of a split
or merged shard start once their parents are read to the end, so order per key holds.

Servers sharing a lease store (the scale-out tier) share the shards: each holds a membership lease,
takes at most its fair share of a mapping's shards (the shards over the live members, rounded up)
and hands the surplus over, between batches, when another server joins. A server that dies stops
renewing: its leases expire (or are reaped at once on its own host) and the others take its shards
from the shared checkpoints. A mapping changed through another server restarts its pollers here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections.abc import Sequence

from squall.sources.mappings import EventSourceMapping, Invoke, MappingStore
from squall.sources.owner import new_owner, owner_alive
from squall.sources.shard_sources import ShardSource, stream_name
from squall.sources.stream_poller import POLL_INTERVAL_S, Deliver, ShardPoller
from squall.stores.base import LeaseStore

__all__ = ["StreamMappings", "stream_name"]

log = logging.getLogger(__name__)

#: A lease lasts this long without a heartbeat; heartbeats come every LEASE_RENEW_S.
LEASE_TTL_S = 30.0
LEASE_RENEW_S = 5.0


def lease_name(mapping_uuid: str, shard_id: str) -> str:
    return f"stream-mapping/{mapping_uuid}/{shard_id}"


#: Every running supervisor holds a lease named so, renewed with its shards': the live members.
MEMBER_PREFIX = "stream-member/"


class StreamMappings:
    """Runs the pollers of every enabled stream mapping, following shards as streams are resharded."""

    def __init__(
        self,
        store: MappingStore,
        sources: Sequence[ShardSource],
        invoke: Invoke,
        role_arn: str,
        leases: LeaseStore,
        deliver: Deliver | None = None,
    ) -> None:
        self.store = store
        self.sources = list(sources)
        self.invoke = invoke
        self.role_arn = role_arn
        self.leases = leases
        self.deliver = deliver
        self.owner = new_owner()
        self._signals: dict[str, asyncio.Event] = {}
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        self._pollers: dict[tuple[str, str], tuple[ShardPoller, asyncio.Task[None]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._loop_ref = asyncio.get_running_loop()
        for source in self.sources:
            source.add_listener(self._on_put)
        await asyncio.to_thread(self.leases.reap_abandoned, owner_alive)
        await asyncio.to_thread(self.leases.acquire, self.owner, self.member, LEASE_TTL_S)
        self._tasks = [asyncio.ensure_future(self._supervise()), asyncio.ensure_future(self._heartbeat())]

    @property
    def member(self) -> str:
        """The name of this supervisor's membership lease."""
        return MEMBER_PREFIX + self.owner

    def source_for(self, arn: str) -> ShardSource | None:
        """The source that serves the stream ``arn`` (None: not a stream this supervisor reads)."""
        return next((s for s in self.sources if s.owns(arn)), None)

    def _on_put(self, stream: str) -> None:
        """Called in the putting thread after a commit: wake that stream's idle pollers at once
        (``stream`` is the source's wake key)."""
        if self._loop_ref is not None:
            self._loop_ref.call_soon_threadsafe(self._wake, stream)

    def _wake(self, stream: str) -> None:
        self._signals.pop(stream, asyncio.Event()).set()

    def _signal(self, stream: str) -> asyncio.Event:
        return self._signals.setdefault(stream, asyncio.Event())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for _, task in self._pollers.values():
            task.cancel()
        for task in [*self._tasks, *(t for _, t in self._pollers.values())]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._pollers.clear()
        # Handing the shards over at once: another server need not wait for the leases to expire.
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.leases.release, self.owner)

    def forget(self, uuid: str) -> None:
        """Stop the pollers of a mapping (disabled or deleted) and give up their leases."""
        for key in [k for k in self._pollers if k[0] == uuid]:
            self._stop_poller(key)

    def _stop_poller(self, key: tuple[str, str]) -> None:
        self._pollers.pop(key)[1].cancel()
        with contextlib.suppress(Exception):
            self.leases.release(self.owner, lease_name(*key))

    def iterator_age_ms(self, uuid: str) -> int | None:
        """The IteratorAge of a mapping's last batch on this server (the largest over its shards)."""
        ages = [p.iterator_age_ms for (u, _), (p, _) in self._pollers.items() if u == uuid]
        known = [a for a in ages if a is not None]
        return max(known) if known else None

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(LEASE_RENEW_S)
            try:
                held = await asyncio.to_thread(self.leases.extend, self.owner, LEASE_TTL_S)
                await asyncio.to_thread(self.leases.reap_abandoned, owner_alive)
            except Exception:
                log.exception("stream mappings: could not renew leases")
                continue
            for key in [k for k in self._pollers if lease_name(*k) not in held]:
                log.warning("mapping %s: lost the lease of %s; another server delivers it now", *key)
                self._pollers.pop(key)[1].cancel()
            if self.member not in held:  # expired during a stall: be counted again
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.leases.acquire, self.owner, self.member, LEASE_TTL_S)

    async def _supervise(self) -> None:
        while True:
            try:
                await self._reconcile()
            except Exception:
                log.exception("stream mappings: reconcile failed")
            await asyncio.sleep(POLL_INTERVAL_S * 5)

    async def _reconcile(self) -> None:
        mappings = await asyncio.to_thread(self.store.all)
        current = {m.uuid: m.last_modified for m in mappings if m.enabled}
        for key in [k for k, (poller, _) in self._pollers.items() if poller.mapping.last_modified != current.get(k[0])]:
            self._stop_poller(key)  # disabled, deleted, or changed (through any server): restarted below
        for key in [k for k, (poller, task) in self._pollers.items() if task.done() and not poller.finished]:
            self._stop_poller(key)  # crashed or handed over: retried below (if still ours), from its checkpoint
        held = await asyncio.to_thread(self.leases.holders)
        members = len({name for name in held if name.startswith(MEMBER_PREFIX)} | {self.member})
        for mapping in mappings:
            if mapping.enabled:
                await self._start_shards(mapping, held, members)

    async def _start_shards(self, mapping: EventSourceMapping, held: dict[str, str], members: int) -> None:
        source = self.source_for(mapping.event_source_arn)
        if source is None:
            return  # a queue's mapping: not ours
        try:
            shards = await asyncio.to_thread(source.shards, mapping.event_source_arn)
        except Exception:
            return  # not a stream of this server (a table stream of another's), or gone for now
        done = {k[1] for k, (poller, _) in self._pollers.items() if k[0] == mapping.uuid and poller.finished}
        fair = math.ceil(len(shards) / members)
        ours = sorted(
            k for k, (poller, _) in self._pollers.items()
            if k[0] == mapping.uuid and not poller.finished and not poller.handing_over
        )  # fmt: skip
        for key in ours[fair:]:
            log.info("mapping %s: handing %s over (%d servers share %d shards)", *key, members, len(shards))
            poller, task = self._pollers[key]
            poller.hand_over(task)
        taken = len(ours)
        for shard in shards:
            key = (mapping.uuid, shard.shard_id)
            lease = lease_name(*key)
            if key in self._pollers or held.get(lease, self.owner) != self.owner:
                continue  # ours already, or another server's
            if taken >= fair:
                return  # our share: the other servers take the rest
            checkpoint = await asyncio.to_thread(self.store.checkpoint, mapping.uuid, shard.shard_id)
            if shard.end_seq is not None and checkpoint is not None and checkpoint > shard.end_seq:
                continue  # read to its end already
            parents = [p for p in (shard.parent, shard.adjacent_parent) if p]
            ready = [await self._parent_done(source, mapping, p, done) for p in parents]
            if not all(ready):
                continue  # children wait for their parents, so order per key holds
            if not await asyncio.to_thread(self.leases.acquire, self.owner, lease, LEASE_TTL_S):
                continue
            taken += 1
            poller = ShardPoller(
                mapping,
                shard,
                source,
                self.store,
                self.invoke,
                self.role_arn,
                self.deliver,
                functools.partial(self._signal, source.wake_key(mapping.event_source_arn)),
            )
            self._pollers[key] = (poller, asyncio.ensure_future(poller.run()))

    async def _parent_done(self, source: ShardSource, mapping: EventSourceMapping, parent: str, done: set[str]) -> bool:
        if parent in done:
            return True
        checkpoint = await asyncio.to_thread(self.store.checkpoint, mapping.uuid, parent)
        shards = await asyncio.to_thread(source.shards, mapping.event_source_arn)
        shard = next((s for s in shards if s.shard_id == parent), None)
        return shard is None or (shard.end_seq is not None and checkpoint is not None and checkpoint > shard.end_seq)
