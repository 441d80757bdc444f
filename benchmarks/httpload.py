"""A small HTTP/1.1 load generator (asyncio, uvloop when installed): ``connections`` keep-alive
connections each sending ``GET path`` back to back, counted in one-second windows after a warm-up.

Used for every HTTP target alike (chalice local, the raw uvloop ceiling, Squall's gateway), so that
the client's own cost is the same in each figure. Only 200 answers whose body contains ``expect``
count: a response that is not the handler's is an error, never a request served.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.stats import Summary


async def _one(
    host: str,
    port: int,
    request: bytes,
    expect: bytes,
    stop_at: float,
    done: list[tuple[float, float]],
    errors: list[str],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            sent = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            chunked = False
            for line in head.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                if key.strip().lower() == b"content-length":
                    length = int(value)
                elif key.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            body = await _chunked(reader) if chunked else await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200") or expect not in body:
                if len(errors) < 10:
                    status = head.split(b"\r\n", 1)[0]
                    errors.append(f"{status!r} {body[:100]!r}")
                continue
            done.append((sent, time.perf_counter()))
    except (OSError, asyncio.IncompleteReadError) as exc:
        errors.append(repr(exc))
    finally:
        writer.close()


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size = int((await reader.readline()).strip().split(b";")[0], 16)
        if size == 0:
            await reader.readline()
            return body
        body += await reader.readexactly(size)
        await reader.readline()


def count_windows(done: Sequence[tuple[float, float]], origin: float, seconds: float) -> tuple[list[int], list[float]]:
    """Answers per one-second window from ``origin`` on, and the latencies (ms) of those counted;
    ``done`` holds (sent, answered) ``perf_counter`` pairs."""
    windows = [0] * int(seconds)
    latency: list[float] = []
    for sent, at in done:
        slot = math.floor(at - origin)  # not int(): that puts the warm-up's last second in the first window
        if 0 <= slot < len(windows):
            windows[slot] += 1
            latency.append((at - sent) * 1000)
    return windows, latency


#: Where a connection goes: host, port and the raw request it sends again and again.
Target = tuple[str, int, bytes]


async def _load(
    targets: Sequence[Target], connections: int, seconds: float, warmup_s: float, expect: bytes
) -> dict[str, Any]:
    began = time.perf_counter()
    done: list[tuple[float, float]] = []
    errors: list[str] = []
    stop_at = began + warmup_s + seconds
    # Connection i goes to target i mod len(targets): the clients split evenly between them.
    per_target: list[list[tuple[float, float]]] = [[] for _ in targets]
    await asyncio.gather(
        *(
            _one(*targets[i % len(targets)], expect, stop_at, per_target[i % len(targets)], errors)
            for i in range(connections)
        )
    )
    for answered in per_target:
        done += answered
    windows, latency = count_windows(done, began + warmup_s, seconds)
    if not any(windows):
        raise RuntimeError(f"no request answered 200 with {expect!r}: {errors[:2]}")
    return {
        "connections": connections,
        "seconds": seconds,
        "requests_per_s": Summary.of([float(w) for w in windows]).as_dict(),
        "windows": windows,
        "latency_ms": Summary.of(latency).as_dict(),
        "errors": len(errors),
        "first_errors": errors[:3],
        "answered": len(done),
        "answered_per_target": [len(answered) for answered in per_target],
    }


def load(
    host: str,
    port: int,
    path: str,
    connections: int,
    seconds: float,
    warmup_s: float = 1.0,
    expect: bytes = b"",
    virtual_host: str | None = None,
) -> dict[str, Any]:
    """Requests/s (median of one-second windows) of ``GET path`` with ``connections`` keep-alive connections.

    ``virtual_host`` is the Host header to send (an API's ``<id>.execute-api...`` name), if not the address.
    """
    request = f"GET {path} HTTP/1.1\r\nHost: {virtual_host or f'{host}:{port}'}\r\nConnection: keep-alive\r\n\r\n"
    return load_request(host, port, request.encode(), connections, seconds, warmup_s, expect)


def load_request(
    host: str, port: int, request: bytes, connections: int, seconds: float, warmup_s: float = 1.0, expect: bytes = b""
) -> dict[str, Any]:
    """Like ``load``, sending the raw HTTP/1.1 ``request`` (head and body) again and again."""
    return load_targets([(host, port, request)], connections, seconds, warmup_s, expect)


def load_targets(
    targets: Sequence[Target], connections: int, seconds: float, warmup_s: float = 1.0, expect: bytes = b""
) -> dict[str, Any]:
    """Like ``load_request`` with the connections split evenly between several servers (one request each).

    ``answered`` counts every answer that counted (warm-up included), ``answered_per_target`` per server.
    """
    coro = _load(targets, connections, seconds, warmup_s, expect)
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)
