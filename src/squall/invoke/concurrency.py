"""The account's concurrency limit: how many invocations may run at once.

Synchronous callers are throttled when it is reached; pollers and the async dispatcher wait for a
free slot instead (back-pressure), so nothing is dropped.
"""

from __future__ import annotations

import asyncio


class ConcurrencyLimiter:
    """A counting limit with a non-blocking path (throttle) and a waiting path (back-pressure)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._freed = asyncio.Event()

    def try_acquire(self) -> bool:
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    async def acquire(self) -> None:
        while not self.try_acquire():
            self._freed.clear()
            await self._freed.wait()

    def release(self) -> None:
        self.in_flight -= 1
        self._freed.set()

    @property
    def available(self) -> int:
        return max(0, self.limit - self.in_flight)
