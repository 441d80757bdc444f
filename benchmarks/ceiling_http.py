"""The HTTP ceiling: a raw uvloop HTTP/1.1 server that forwards each request to one warm worker
process over a pair of pipes and answers with the worker's reply. No framework, no routing, no
event building: what an HTTP front end plus a warm sandbox round trip costs at the least.

Run as ``python -s benchmarks/ceiling_http.py PORT``; it prints ``ready`` once listening.
The worker answers requests in order, so replies are matched to requests first in, first out.
"""

from __future__ import annotations

import asyncio
import os
import struct
import sys
from collections import deque
from typing import cast

REPLY = b'{"hello": "world"}'
HEADER = struct.Struct("!I")


def _worker(requests: int, replies: int) -> None:
    """The warm worker: read a length-prefixed request, write a length-prefixed reply, forever."""
    buffer = b""
    while True:
        chunk = os.read(requests, 65536)
        if not chunk:
            os._exit(0)
        buffer += chunk
        out = b""
        while len(buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(buffer)
            if len(buffer) < HEADER.size + size:
                break
            buffer = buffer[HEADER.size + size :]
            out += HEADER.pack(len(REPLY)) + REPLY
        if out:
            os.write(replies, out)


class Forwarder(asyncio.Protocol):
    """Reads worker replies from the pipe and resolves the oldest waiting request."""

    def __init__(self) -> None:
        self.waiting: deque[asyncio.Future[bytes]] = deque()
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self.buffer)
            if len(self.buffer) < HEADER.size + size:
                return
            body = self.buffer[HEADER.size : HEADER.size + size]
            self.buffer = self.buffer[HEADER.size + size :]
            self.waiting.popleft().set_result(body)


class HttpServer(asyncio.Protocol):
    """One client connection: each complete request (headers only, GET) goes to the worker."""

    def __init__(self, forwarder: Forwarder, to_worker: int) -> None:
        self.forwarder = forwarder
        self.to_worker = to_worker
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self.forwarder.waiting.append(future)
            os.write(self.to_worker, HEADER.pack(len(head)) + head)
            future.add_done_callback(self._answer)

    def _answer(self, future: asyncio.Future[bytes]) -> None:
        body = future.result()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )


async def _serve(port: int, to_worker: int, from_worker: int) -> None:
    loop = asyncio.get_running_loop()
    forwarder = Forwarder()
    await loop.connect_read_pipe(lambda: forwarder, os.fdopen(from_worker, "rb", buffering=0))
    server = await loop.create_server(lambda: HttpServer(forwarder, to_worker), "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    port = int(sys.argv[1])
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    if os.fork() == 0:
        os.close(req_w)
        os.close(rep_r)
        _worker(req_r, rep_w)
    os.close(req_r)
    os.close(rep_w)
    import uvloop

    uvloop.run(_serve(port, req_w, rep_r))


if __name__ == "__main__":
    main()
