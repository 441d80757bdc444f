"""Burst to N concurrent: N synchronous invokes of a brand-new function sent at once, each over its own
connection (opened and signed before the clock), to a handler that notes when it started and then
holds its sandbox for ``HOLD_S`` seconds (N/50 s when that is longer), so that all N run at the same
time. The runner bursts to 100 and 500, and to 1000 in a full run.

Reported: the time from sending the first request to the start of the last handler (every start is
the handler's own ``time.time()``, returned in its payload: N answers, N starts, nothing inferred),
the spread of the starts, and errors (a throttle would show here).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from benchmarks.harness import HANDLER, ROLE, RUNTIME, BenchError, ServerProcess, SignedConnection, build_zip
from benchmarks.stats import Summary

HOLD_S = 10.0
SOURCE = """import time


def handler(event, context):
    started = time.time()
    time.sleep({hold_s})
    return {{"started": started}}
"""


async def _one(port: int, request: bytes, ready: asyncio.Event, answers: list[Any], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await ready.wait()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200") or b"x-amz-function-error" in head.lower():
            errors.append(f"{head.split(b' ', 2)[1].decode()} {body[:200]!r}")
        else:
            answers.append(json.loads(body))
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        errors.append(repr(exc))
    finally:
        writer.close()


async def _burst(port: int, requests: list[bytes]) -> tuple[float, list[Any], list[str]]:
    ready = asyncio.Event()
    answers: list[Any] = []
    errors: list[str] = []
    tasks = [asyncio.ensure_future(_one(port, r, ready, answers, errors)) for r in requests]
    await asyncio.sleep(1.0)  # every connection open and waiting before the clock
    sent = time.time()
    ready.set()
    await asyncio.gather(*tasks)
    return sent, answers, errors


def invoke_all(server: ServerProcess, name: str, count: int, body: bytes = b"{}") -> tuple[float, list[Any], list[str]]:
    """``count`` synchronous invokes of ``name`` sent at once, each over its own connection (opened
    and signed first): when they were sent, the decoded answers, and the errors."""
    signer = SignedConnection("127.0.0.1", server.port, server.credentials())
    path = signer.path(name)
    requests = []
    for _ in range(count):
        headers = signer.sign(name, body)
        lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
        requests.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    try:
        import uvloop

        return uvloop.run(_burst(server.port, requests))
    except ImportError:
        return asyncio.run(_burst(server.port, requests))


def hold_for(concurrency: int) -> float:
    """How long each handler holds its sandbox: long enough that all ``concurrency`` overlap even
    when starting them takes a while (a 2-core machine starts some hundreds a second)."""
    return max(HOLD_S, concurrency / 50)


def burst(server: ServerProcess, lam: Any, concurrency: int, hold_s: float | None = None) -> dict[str, Any]:
    hold_s = hold_for(concurrency) if hold_s is None else hold_s
    name = f"bench-burst-{uuid.uuid4().hex[:6]}"
    package = build_zip(SOURCE.format(hold_s=hold_s))
    lam.create_function(
        FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler=HANDLER, Code={"ZipFile": package},
        Timeout=max(int(hold_s * 6), 10),
    )  # fmt: skip
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 1200})
    sent, answers, errors = invoke_all(server, name, concurrency)
    finished = time.time()
    lam.delete_function(FunctionName=name)
    if not answers:
        raise BenchError(f"burst: no invoke succeeded: {errors[:2]}")
    starts = sorted(float(a["started"]) - sent for a in answers)
    return {
        "concurrency": concurrency,
        "succeeded": len(answers),
        "errors": len(errors),
        "first_errors": errors[:3],
        "hold_s": hold_s,
        "seconds": round(starts[-1], 3) if len(answers) == concurrency else None,
        "last_start_s": round(starts[-1], 3),
        "starts_s": Summary.of(starts).as_dict(),
        "all_answered_s": round(finished - sent, 3),
    }
