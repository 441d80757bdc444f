"""A burst: 500 synchronous invokes of a brand-new function at once, each over its own connection.

Every one must run its own event exactly once, in its own environment, with no errors, and they
must really run side by side. How fast the burst completes is measured by ``benchmarks/burst.py``
(``make bench``); this test only prints the wall time.
"""

import asyncio
import json
import time
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conftest import make_zip

BURST = 500
#: Each invocation holds its environment until this long after the burst was sent (and at least a
#: second), so "all ran side by side" checks concurrency (500 environments at once, nothing queued)
#: and not start-up speed, which belongs to the benchmark, even on a heavily loaded machine.
HOLD_S = 15
SOURCE = """import time


def handler(event, context):
    started = time.time()
    time.sleep(max(1.0, event["until"] - started))
    return {
        "n": event["n"],
        "id": context.aws_request_id,
        "environment": context.log_stream_name,
        "started": started,
        "ended": time.time(),
    }
"""


def _signed_request(squall: Any, name: str, n: int, until: float) -> bytes:
    body = json.dumps({"n": n, "until": until}).encode()
    url = f"{squall.url}/2015-03-31/functions/{name}/invocations"
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(*squall.credentials()), "lambda", "us-east-1").add_auth(request)
    lines = [f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1", f"Host: 127.0.0.1:{squall.port}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _invoke(port: int, request: bytes, go: asyncio.Event) -> tuple[int, bytes, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await go.wait()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")[1:]
            if line.lower().startswith(b"content-length:")
        )
        return int(head.split(b" ", 2)[1]), head, await reader.readexactly(length)
    finally:
        writer.close()


async def _burst(port: int, requests: list[bytes]) -> tuple[float, list[tuple[int, bytes, bytes]]]:
    go = asyncio.Event()
    tasks = [asyncio.ensure_future(_invoke(port, r, go)) for r in requests]
    await asyncio.sleep(1.0)  # every connection open before the clock starts
    began = time.monotonic()
    go.set()
    replies = await asyncio.gather(*tasks)
    return time.monotonic() - began, replies


def _peak_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.slow
def test_burst_of_500_concurrent_invokes(squall: Any, make_function: Any) -> None:
    make_function("burst-500", make_zip({"app.py": SOURCE}), Timeout=60)
    until = time.time() + HOLD_S
    requests = [_signed_request(squall, "burst-500", n, until) for n in range(BURST)]
    wall, replies = asyncio.run(_burst(squall.port, requests))
    print(f"\n{BURST} concurrent invokes held until {HOLD_S} s after the burst: all answered after {wall:.2f} s")

    failures = [(code, body[:200]) for code, head, body in replies if code != 200 or b"X-Amz-Function-Error" in head]
    assert failures == []
    answers = [json.loads(body) for _, _, body in replies]
    assert sorted(a["n"] for a in answers) == list(range(BURST))  # each event ran, once
    assert len({a["id"] for a in answers}) == BURST
    assert len({a["environment"] for a in answers}) == BURST  # one environment each: none reused
    # They ran side by side: (nearly) all of them were inside their handler at the same moment.
    assert _peak_overlap([(a["started"], a["ended"]) for a in answers]) >= 450
