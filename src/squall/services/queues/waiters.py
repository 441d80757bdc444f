"""Long polling: receivers waiting on a queue, woken from any thread when a message may be ready."""

from __future__ import annotations

import asyncio
import contextlib


class Waiters:
    """Per-queue futures a long poll awaits; ``notify`` may be called from any thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}

    def arm(self, name: str) -> asyncio.Future[None]:
        """A future resolved by the next ``notify(name)``. Arm before looking at the queue, so a
        message sent while looking still wakes the caller."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.setdefault(name, set()).add(future)
        return future

    def disarm(self, name: str, future: asyncio.Future[None]) -> None:
        waiting = self._waiting.get(name)
        if waiting is not None:
            waiting.discard(future)
            if not waiting:
                del self._waiting[name]

    @staticmethod
    async def wait(future: asyncio.Future[None], timeout: float) -> None:
        """Until ``future`` is resolved or ``timeout`` seconds pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(future), timeout)

    def notify(self, name: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # A closing loop raises RuntimeError: nobody is waiting any more then.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._wake, name)

    def _wake(self, name: str) -> None:
        for future in self._waiting.pop(name, set()):
            if not future.done():
                future.set_result(None)
