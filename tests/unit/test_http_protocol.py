"""The coalescing transport: writes of one loop iteration reach the socket as one write."""

from __future__ import annotations

import asyncio
import socket

from squall.http_protocol import CoalescingTransport


class _Receiver(asyncio.Protocol):
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)


async def _pair() -> tuple[asyncio.Transport, socket.socket]:
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    transport, _ = await asyncio.get_running_loop().create_connection(_Receiver, sock=ours)
    return transport, theirs


def _read_all(sock: socket.socket) -> list[bytes]:
    reads = []
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return reads
        if not data:  # the other end closed
            return reads
        reads.append(data)


def test_writes_in_one_iteration_become_one_write() -> None:
    asyncio.run(_writes_in_one_iteration_become_one_write())


async def _writes_in_one_iteration_become_one_write() -> None:
    transport, peer = await _pair()
    coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
    coalescing.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    coalescing.write(b"{}")
    assert _read_all(peer) == []  # nothing is written before the iteration ends
    await asyncio.sleep(0)
    assert _read_all(peer) == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    coalescing.close()
    peer.close()


def test_writes_in_later_iterations_flow_as_they_come() -> None:
    asyncio.run(_writes_in_later_iterations_flow_as_they_come())


async def _writes_in_later_iterations_flow_as_they_come() -> None:
    transport, peer = await _pair()
    coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
    coalescing.write(b"first")
    await asyncio.sleep(0)
    assert _read_all(peer) == [b"first"]
    coalescing.write(bytearray(b"second"))
    coalescing.write(b"")
    await asyncio.sleep(0)
    assert _read_all(peer) == [b"second"]
    coalescing.close()
    peer.close()


def test_close_sends_what_is_pending_and_abort_drops_it() -> None:
    asyncio.run(_close_sends_what_is_pending_and_abort_drops_it())


async def _close_sends_what_is_pending_and_abort_drops_it() -> None:
    transport, peer = await _pair()
    coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
    coalescing.write(b"last words")
    assert coalescing.get_write_buffer_size() == len(b"last words")
    coalescing.close()
    await asyncio.sleep(0.05)
    assert b"".join(_read_all(peer)) == b"last words"
    peer.close()

    transport, peer = await _pair()
    coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
    coalescing.write(b"never sent")
    coalescing.abort()
    await asyncio.sleep(0.05)
    assert b"".join(_read_all(peer)) == b""
    assert coalescing.is_closing()
    peer.close()
