"""A streamed response on its way from a sandbox to its caller.

The sandbox side (``Sandbox.invoke``) opens the stream with the runtime's content type and writes
its chunks as they arrive; the caller's side (InvokeWithResponseStream, a function URL) reads them
with ``events``. The queue is bounded, so a slow caller slows the function's writes down instead of
filling memory; a caller that went away closes the stream and later writes are dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

#: How many chunks may wait for a slow caller before the function's writes block.
QUEUE_CHUNKS = 64
_END = object()


class ResponseStream:
    """One invocation's streamed response: ``open``, ``write``... from the sandbox, ``events`` for the caller."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._drained = asyncio.Event()
        self.content_type: str | None = None
        #: The version that runs and the request id (set before the sandbox starts), for the caller's headers.
        self.executed_version: str | None = None
        self.request_id: str | None = None
        self.closed = False
        self.opened = asyncio.Event()

    async def open(self, content_type: str) -> None:
        """The runtime started a streamed response (Squall's Runtime API saw its headers)."""
        self.content_type = content_type
        self.opened.set()

    async def write(self, data: bytes) -> None:
        """One chunk of the response, forwarded to the caller as it came."""
        while self._queue.qsize() >= QUEUE_CHUNKS and not self.closed:
            self._drained.clear()
            await self._drained.wait()
        if not self.closed and data:
            self._queue.put_nowait(data)

    def finish(self) -> None:
        """No more chunks (the invocation ended, however it ended)."""
        self.opened.set()
        self._queue.put_nowait(_END)

    def close(self) -> None:
        """The caller went away: drop what is queued and whatever comes next."""
        self.closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._drained.set()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The chunks in order, until the invocation ends."""
        while True:
            item = await self._queue.get()
            self._drained.set()
            if item is _END:
                return
            assert isinstance(item, bytes)
            yield item
