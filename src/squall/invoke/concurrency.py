"""Concurrency: how many invocations may run at once, for the account and per function.

The account limit is split in two: functions with *reserved* concurrency each get a pool of their
own (at most that many at once, never counted against anyone else), and every other function
draws from the unreserved remainder. Provisioned concurrency is carved out of those pools: a
version's provisioned environments form a pool of their own, used first by that version, and what
is left of its function's pool (or of the unreserved one) serves everything else. So a function
whose versions are provisioned up to its reserved concurrency throttles ``$LATEST``, as on Lambda.
Synchronous callers are throttled when their pool is full; pollers and the async dispatcher wait
for a free slot instead (back-pressure), so nothing is dropped.

Several servers of one deployment count against the same limits: each publishes its in-flight counts
and is told what the others run (``set_elsewhere``, see ``invoke/cluster_concurrency.py``), which
its pools then leave free.
"""

from __future__ import annotations

import asyncio

#: Lambda keeps at least this much of the account limit unreserved.
MIN_UNRESERVED = 100

ACCOUNT_THROTTLE = "ConcurrentInvocationLimitExceeded"
RESERVED_THROTTLE = "ReservedFunctionConcurrentInvocationLimitExceeded"


class Slot:
    """One running invocation's place in a pool; given back with ``ConcurrencyLimiter.release_slot``."""

    __slots__ = ("pool", "provisioned")

    def __init__(self, pool: str | None, provisioned: tuple[str, str] | None = None) -> None:
        self.pool = pool  # a function name (its reserved pool) or None (the unreserved pool)
        self.provisioned = provisioned  # (function, version) when it holds a provisioned environment


class ConcurrencyLimiter:
    """Counting limits with a non-blocking path (throttle) and a waiting path (back-pressure)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0  # in the unreserved pool
        self.reserved: dict[str, int] = {}
        self._reserved_in_flight: dict[str, int] = {}
        #: Provisioned environments per (function, version), and how many of them are busy.
        self.provisioned: dict[tuple[str, str], int] = {}
        self._provisioned_in_flight: dict[tuple[str, str], int] = {}
        #: What other servers of the deployment run now, per pool (None: the unreserved pool).
        self.elsewhere: dict[str | None, int] = {}
        self._freed = asyncio.Event()

    # --- reservations ------------------------------------------------------------------------------
    @property
    def unreserved_limit(self) -> int:
        return self.limit - sum(self.reserved.values())

    def set_reserved(self, function: str, reserved: int | None) -> None:
        """Give a function a pool of its own (``None``: back to the unreserved pool)."""
        if reserved is None:
            self.reserved.pop(function, None)
        else:
            self.reserved[function] = reserved
        self._freed.set()

    def set_provisioned(self, allocations: dict[tuple[str, str], int]) -> None:
        """The provisioned environments every (function, version) has now."""
        self.provisioned = dict(allocations)
        self._freed.set()

    def _provisioned_total(self, function: str) -> int:
        return sum(count for (name, _), count in self.provisioned.items() if name == function)

    @property
    def on_demand_limit(self) -> int:
        """The unreserved pool less the provisioned environments of functions without a reservation."""
        carved = sum(count for (name, _), count in self.provisioned.items() if name not in self.reserved)
        return self.unreserved_limit - carved

    def throttle_reason(self, function: str | None) -> str:
        """The 429 ``Reason`` for a function whose pool is full."""
        return RESERVED_THROTTLE if function in self.reserved else ACCOUNT_THROTTLE

    # --- slots -----------------------------------------------------------------------------------
    def try_take(self, function: str | None = None, version: str | None = None) -> Slot | None:
        """A slot for a version: one of its provisioned environments if one is free, else a place in
        its function's pool; None when that pool is full."""
        if function is not None and version is not None and self.provisioned:
            key = (function, version)
            busy = self._provisioned_in_flight.get(key, 0)
            if busy < self.provisioned.get(key, 0):
                self._provisioned_in_flight[key] = busy + 1
                return Slot(function, provisioned=key)
        if function is not None and function in self.reserved:
            busy = self._reserved_in_flight.get(function, 0)
            if busy + self.elsewhere.get(function, 0) >= self.reserved[function] - self._provisioned_total(function):
                return None
            self._reserved_in_flight[function] = busy + 1
            return Slot(function)
        if self.in_flight + self.elsewhere.get(None, 0) >= self.on_demand_limit:
            return None
        self.in_flight += 1
        return Slot(None)

    async def take(self, function: str | None = None, version: str | None = None) -> Slot:
        """Wait for a slot for the version (as ``try_take`` picks it)."""
        while True:
            slot = self.try_take(function, version)
            if slot is not None:
                return slot
            self._freed.clear()
            await self._freed.wait()

    def release_slot(self, slot: Slot) -> None:
        if slot.provisioned is not None:
            left = self._provisioned_in_flight.get(slot.provisioned, 0) - 1
            if left > 0:
                self._provisioned_in_flight[slot.provisioned] = left
            else:
                self._provisioned_in_flight.pop(slot.provisioned, None)
        elif slot.pool is None:
            self.in_flight -= 1
        else:
            left = self._reserved_in_flight.get(slot.pool, 0) - 1
            if left > 0:
                self._reserved_in_flight[slot.pool] = left
            else:
                self._reserved_in_flight.pop(slot.pool, None)
        self._freed.set()

    # --- several servers ---------------------------------------------------------------------------
    def in_flight_by_pool(self) -> dict[str | None, int]:
        """What this server runs now, per pool (None: the unreserved pool), provisioned ones apart."""
        counts: dict[str | None, int] = {None: self.in_flight} if self.in_flight else {}
        counts.update(self._reserved_in_flight)
        return counts

    def set_elsewhere(self, counts: dict[str | None, int]) -> None:
        """What the other servers run now, per pool; waiting callers retry when that went down."""
        freed = any(counts.get(pool, 0) < n for pool, n in self.elsewhere.items())
        self.elsewhere = dict(counts)
        if freed:
            self._freed.set()

    # --- the unreserved pool alone (functions without a reservation) ---------------------------
    def try_acquire(self) -> bool:
        return self.try_take() is not None

    async def acquire(self) -> None:
        await self.take()

    def release(self) -> None:
        self.release_slot(Slot(None))

    @property
    def available(self) -> int:
        return max(0, self.on_demand_limit - self.in_flight - self.elsewhere.get(None, 0))
