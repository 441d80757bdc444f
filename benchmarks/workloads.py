"""Realistic workloads of the kinds SeBS and FunctionBench use, each run end to end through the
trigger it would have on Lambda, with its cost in GB-s from Squall's own usage records
(``squall cost --json --function NAME``):

* **graph BFS** — a seeded random graph (20,000 nodes, 100,000 edges) built at import, one BFS per
  invoke; triggered by synchronous Invoke. Each answer is checked against the same BFS run here.
* **gzip** — compress text objects (64 KiB each) that arrive as SQS messages, batch 10; the handler
  logs bytes in and out per batch, which must add up to what was sent.
* **JSON ETL** — JSON events put into a 2-shard stream, delivered by a Kinesis mapping (batch 100):
  decode, filter, aggregate per user; the logged counts and sums must equal the ones computed here.
* **dynamic HTML** — a jinja2 template (a 100-row table) rendered per request behind an HTTP API on
  Squall's gateway; only 200 answers with the rendered page count.

Image thumbnailing (objects put into a bucket) waits for buckets.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import httpload, peers
from benchmarks.harness import HANDLER, ROLE, RUNTIME, BenchError, ServerProcess, build_zip
from benchmarks.queues import Endpoint
from benchmarks.stats import Summary

Progress = Callable[[str], None]

BFS_SOURCE = """import collections
import random

N, E = 20000, 100000
_rng = random.Random(7)
ADJ = [[] for _ in range(N)]
for _ in range(E):
    a, b = _rng.randrange(N), _rng.randrange(N)
    ADJ[a].append(b)
    ADJ[b].append(a)


def bfs(start):
    depth = {start: 0}
    queue = collections.deque([start])
    while queue:
        node = queue.popleft()
        for nxt in ADJ[node]:
            if nxt not in depth:
                depth[nxt] = depth[node] + 1
                queue.append(nxt)
    return {"visited": len(depth), "max_depth": max(depth.values())}


def handler(event, context):
    return bfs(event["start"])
"""

GZIP_SOURCE = """import gzip


def handler(event, context):
    raw = packed = 0
    for record in event["Records"]:
        data = record["body"].encode()
        raw += len(data)
        packed += len(gzip.compress(data, 6))
    print(f"GZIP {len(event['Records'])} {raw} {packed}")
"""

ETL_SOURCE = """import base64
import collections
import json


def handler(event, context):
    totals = collections.Counter()
    kept = 0
    for record in event["Records"]:
        row = json.loads(base64.b64decode(record["kinesis"]["data"]))
        if row["kind"] != "purchase" or row["amount_cents"] <= 0:
            continue
        kept += 1
        totals[row["user"]] += row["amount_cents"]
    print(f"ETL {len(event['Records'])} {kept} {sum(totals.values())} {len(totals)}")
"""

HTML_SOURCE = """import jinja2

ENV = jinja2.Environment(autoescape=True)
PAGE = ENV.from_string(
    "<!doctype html><html><head><title>{{ title }}</title></head><body><h1>{{ title }}</h1>"
    "<table>{% for row in rows %}<tr class=\\"{{ loop.cycle('odd', 'even') }}\\"><td>{{ row.id }}</td>"
    "<td>{{ row.name | title }}</td><td>{{ '%.2f' | format(row.price) }}</td></tr>{% endfor %}</table>"
    "<p>{{ rows | length }} rows</p></body></html>"
)
ROWS = [{"id": i, "name": f"item number {i} <b>", "price": i * 1.25} for i in range(100)]


def handler(event, context):
    body = PAGE.render(title="Squall inventory", rows=ROWS)
    return {"statusCode": 200, "headers": {"content-type": "text/html"}, "body": body}
"""
HTML_MARKER = b"<p>100 rows</p></body></html>"


def _create(lam: Any, name: str, package: bytes, memory_mb: int = 128) -> str:
    lam.create_function(
        FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler=HANDLER, Code={"ZipFile": package},
        MemorySize=memory_mb, Timeout=60,
    )  # fmt: skip
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 1200})
    return str(lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"])


def _lines(logs: Any, name: str, marker: str) -> list[list[str]]:
    found: list[list[str]] = []
    try:
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=f"/aws/lambda/{name}", filterPattern=f'"{marker}"'
        )
        for page in pages:
            for event in page["events"]:
                for line in event["message"].splitlines():
                    if line.startswith(marker + " "):
                        found.append(line.split()[1:])
    except logs.exceptions.ResourceNotFoundException:
        return []
    return found


def _wait_lines(logs: Any, name: str, marker: str, records: int, timeout_s: float = 300.0) -> list[list[str]]:
    """Log lines of ``marker`` until their first fields add up to ``records``."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = _lines(logs, name, marker)
        if sum(int(fields[0]) for fields in lines) >= records:
            return lines
        failures = _lines(logs, name, "[ERROR]")
        if failures:
            raise BenchError(f"{name} failed: [ERROR] {' '.join(failures[0])}")
        if time.monotonic() > deadline:
            raise BenchError(f"{name}: the handler logged {sum(int(f[0]) for f in lines)} of {records} records")
        time.sleep(0.25)


def usage(server: ServerProcess, name: str, requests: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """GB-s and requests of ``name`` from ``squall cost --json`` (waiting for every usage record)."""
    deadline = time.monotonic() + timeout_s
    while True:
        out = subprocess.run(
            [sys.executable, "-m", "squall", "cost", "--json", "--no-free-tier", "--function", name,
             "--data-dir", str(server.data_dir)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if out.returncode != 0:
            raise BenchError(f"squall cost failed: {out.stderr.strip()[-300:]}")
        groups = json.loads(out.stdout)["groups"]
        group = groups[0] if groups else {"requests": 0}
        if group["requests"] >= requests or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if group["requests"] < requests:
        raise BenchError(f"{name}: {group['requests']} usage records for {requests} invocations")
    gb_s = float(group["gb_seconds"])
    return {
        "requests": group["requests"],
        "billed_ms": group["billed_ms"],
        "gb_seconds": round(gb_s, 6),
        "gb_seconds_per_request": round(gb_s / group["requests"], 9),
        "cost_usd": group["cost"],
    }


def graph_bfs(server: ServerProcess, endpoint: Endpoint, invokes: int) -> dict[str, Any]:
    lam = endpoint.client("lambda")
    name = f"wl-bfs-{uuid.uuid4().hex[:6]}"
    _create(lam, name, build_zip(BFS_SOURCE))
    namespace: dict[str, Any] = {}
    exec(compile(BFS_SOURCE, "bfs", "exec"), namespace)  # the same BFS, here, to check each answer
    latency: list[float] = []
    for index in range(invokes + 1):
        start = (index * 7919) % 20000
        began = time.perf_counter_ns()
        answer = lam.invoke(FunctionName=name, Payload=json.dumps({"start": start}).encode())
        result = json.loads(answer["Payload"].read())
        elapsed = (time.perf_counter_ns() - began) / 1e6
        if answer.get("FunctionError") or result != namespace["bfs"](start):
            raise BenchError(f"BFS from {start}: {answer.get('FunctionError')} {result}")
        if index:  # the first one is the cold start (the graph is built at import)
            latency.append(elapsed)
    return {"trigger": "Invoke (RequestResponse)", "invokes": invokes + 1, "latency_ms": Summary.of(latency).as_dict(),
            **usage(server, name, invokes + 1)}  # fmt: skip


def _text_object(rng: random.Random, size: int) -> str:
    words = ["squall", "lambda", "queue", "stream", "bucket", "gateway", "sandbox", "zygote", "batch", "record"]
    parts: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(words) + str(rng.randrange(1000))
        parts.append(word)
        length += len(word) + 1
    return " ".join(parts)[:size]


def gzip_objects(server: ServerProcess, endpoint: Endpoint, objects: int, size: int = 64 * 1024) -> dict[str, Any]:
    lam, sqs, logs = endpoint.client("lambda"), endpoint.client("sqs"), endpoint.client("logs")
    name = f"wl-gzip-{uuid.uuid4().hex[:6]}"
    _create(lam, name, build_zip(GZIP_SOURCE))
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rng = random.Random(11)
    bodies = [_text_object(rng, size) for _ in range(objects)]
    raw = sum(len(b) for b in bodies)
    packed_here = sum(len(gzip.compress(b.encode(), 6)) for b in bodies)
    for start in range(0, objects, 3):  # three 64 KiB messages stay under SendMessageBatch's 256 KiB
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 3])]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    began = time.perf_counter()
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=10)
    lines = _wait_lines(logs, name, "GZIP", objects)
    seconds = time.perf_counter() - began
    logged_raw = sum(int(f[1]) for f in lines)
    logged_packed = sum(int(f[2]) for f in lines)
    if logged_raw != raw or logged_packed != packed_here:
        raise BenchError(f"gzip: handler saw {logged_raw} -> {logged_packed} bytes, sent {raw} -> {packed_here}")
    return {"trigger": "SQS event source mapping, batch 10", "objects": objects, "object_bytes": size,
            "ratio": round(packed_here / raw, 4), "seconds_from_mapping": round(seconds, 3),
            "mb_per_s": round(raw / 1e6 / seconds, 2), **usage(server, name, len(lines))}  # fmt: skip


def json_etl(server: ServerProcess, endpoint: Endpoint, records: int) -> dict[str, Any]:
    lam, kinesis, logs = endpoint.client("lambda"), endpoint.client("kinesis"), endpoint.client("logs")
    name = f"wl-etl-{uuid.uuid4().hex[:6]}"
    _create(lam, name, build_zip(ETL_SOURCE))
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    rng = random.Random(5)
    rows: list[dict[str, Any]] = [
        {"user": f"u{rng.randrange(200)}", "kind": rng.choice(["purchase", "view", "refund"]),
         "amount_cents": rng.randrange(-500, 5000), "ts": 1_700_000_000 + i}
        for i in range(records)
    ]  # fmt: skip
    kept = [r for r in rows if r["kind"] == "purchase" and r["amount_cents"] > 0]
    for start in range(0, records, 500):
        chunk = [{"Data": json.dumps(r).encode(), "PartitionKey": r["user"]} for r in rows[start : start + 500]]
        if kinesis.put_records(StreamName=name, Records=chunk).get("FailedRecordCount"):
            raise BenchError("json etl: PutRecords failed")
    began = time.perf_counter()
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=100,
                                    StartingPosition="TRIM_HORIZON")  # fmt: skip
    lines = _wait_lines(logs, name, "ETL", records)
    seconds = time.perf_counter() - began
    expected_cents = sum(int(r["amount_cents"]) for r in kept)
    if sum(int(f[1]) for f in lines) != len(kept) or sum(int(f[2]) for f in lines) != expected_cents:
        raise BenchError("json etl: the handler's counts differ from the records put")
    return {"trigger": "Kinesis event source mapping, batch 100", "records": records, "kept": len(kept),
            "batches": len(lines), "seconds_from_mapping": round(seconds, 3),
            "records_per_s": round(records / seconds, 1), **usage(server, name, len(lines))}  # fmt: skip


def _vendored_jinja2(progress: Progress) -> bytes:
    """A package with ``app.py`` and jinja2 + markupsafe, copied from a venv the runner installs."""
    python = peers.ensure("workloads", progress)
    site = next(python.parent.parent.glob("lib/python*/site-packages"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", HTML_SOURCE)
        for package in ("jinja2", "markupsafe"):
            for path in sorted((site / package).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    archive.write(path, str(Path(package) / path.relative_to(site / package)))
    return buffer.getvalue()


def dynamic_html(
    server: ServerProcess, endpoint: Endpoint, seconds: float, connections: int, progress: Progress
) -> dict[str, Any]:
    lam, apis = endpoint.client("lambda"), endpoint.client("apigatewayv2")
    name = f"wl-html-{uuid.uuid4().hex[:6]}"
    arn = _create(lam, name, _vendored_jinja2(progress))
    api = apis.create_api(Name=name, ProtocolType="HTTP", Target=arn)
    host = api["ApiEndpoint"].split("//", 1)[1]
    run = httpload.load("127.0.0.1", server.gateway_port, "/", connections, seconds, 1.0, HTML_MARKER, host)
    served = sum(run["windows"])
    return {"trigger": "HTTP API (gateway)", "connections": connections, "requests_per_s": run["requests_per_s"],
            "errors": run["errors"], **usage(server, name, served)}  # fmt: skip
