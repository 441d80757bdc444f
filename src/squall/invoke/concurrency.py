"""Concurrency: how many invocations may run at once, for the account and per function.

The account limit is split in two: functions with *reserved* concurrency each get a pool of their
own (at most that many at once, never counted against anyone else), and every other function
draws from the unreserved remainder. Synchronous callers are throttled when their pool is full;
pollers and the async dispatcher wait for a free slot instead (back-pressure), so nothing is
dropped.
"""

from __future__ import annotations

import asyncio

#: Lambda keeps at least this much of the account limit unreserved.
MIN_UNRESERVED = 100

ACCOUNT_THROTTLE = "ConcurrentInvocationLimitExceeded"
RESERVED_THROTTLE = "ReservedFunctionConcurrentInvocationLimitExceeded"


class Slot:
    """One running invocation's place in a pool; given back with ``ConcurrencyLimiter.release_slot``."""

    __slots__ = ("pool",)

    def __init__(self, pool: str | None) -> None:
        self.pool = pool  # a function name (its reserved pool) or None (the unreserved pool)


class ConcurrencyLimiter:
    """Counting limits with a non-blocking path (throttle) and a waiting path (back-pressure)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0  # in the unreserved pool
        self.reserved: dict[str, int] = {}
        self._reserved_in_flight: dict[str, int] = {}
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

    def throttle_reason(self, function: str | None) -> str:
        """The 429 ``Reason`` for a function whose pool is full."""
        return RESERVED_THROTTLE if function in self.reserved else ACCOUNT_THROTTLE

    # --- slots -----------------------------------------------------------------------------------
    def try_take(self, function: str | None = None) -> Slot | None:
        """A slot in the function's pool, or None when that pool is full."""
        if function is not None and function in self.reserved:
            busy = self._reserved_in_flight.get(function, 0)
            if busy >= self.reserved[function]:
                return None
            self._reserved_in_flight[function] = busy + 1
            return Slot(function)
        if self.in_flight >= self.unreserved_limit:
            return None
        self.in_flight += 1
        return Slot(None)

    async def take(self, function: str | None = None) -> Slot:
        """Wait for a slot in the function's pool."""
        while True:
            slot = self.try_take(function)
            if slot is not None:
                return slot
            self._freed.clear()
            await self._freed.wait()

    def release_slot(self, slot: Slot) -> None:
        if slot.pool is None:
            self.in_flight -= 1
        else:
            left = self._reserved_in_flight.get(slot.pool, 0) - 1
            if left > 0:
                self._reserved_in_flight[slot.pool] = left
            else:
                self._reserved_in_flight.pop(slot.pool, None)
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
        return max(0, self.unreserved_limit - self.in_flight)
