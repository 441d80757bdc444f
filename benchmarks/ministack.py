"""MiniStack, the peer: a Python AWS emulator that runs Lambda functions as local processes.

Started from its own venv (``benchmarks/.peers/ministack``) on a free loopback port, then measured
with the same clients as Squall: warm invokes over a keep-alive signed HTTP connection and through
boto3 (a silent handler and one that prints), cold starts (a new function, its first invoke), the
SQS queue drain (``benchmarks.queues``) and Kinesis delivery to a function. Stopped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import peers
from benchmarks.harness import (
    HANDLER,
    PLAIN_SOURCE,
    ROLE,
    RUNTIME,
    BenchError,
    SignedConnection,
    build_zip,
    free_port,
)
from benchmarks.queues import Endpoint, drain
from benchmarks.stats import Summary

PRINTING_SOURCE = 'def handler(event, context):\n    print("hello from the handler")\n    return {"ok": True}\n'
KINESIS_SOURCE = (
    "import time\n\n\ndef handler(event, context):\n    print(f\"KINESIS {len(event['Records'])} {time.time():.6f}\")\n"
)
EXPECTED = b'{"ok": true}'
KEYS = ("test", "test")  # MiniStack accepts any keys


class MiniStack:
    """A MiniStack server of our own: ``with MiniStack(python, tmp) as ms: ms.endpoint ...``."""

    def __init__(self, python: Path, workdir: Path) -> None:
        self.python = python
        self.port = free_port()
        self.workdir = workdir
        self.log = workdir / "ministack.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = Endpoint(f"http://127.0.0.1:{self.port}", *KEYS)

    def __enter__(self) -> MiniStack:
        env = {
            **os.environ,
            "GATEWAY_PORT": str(self.port),
            "BIND_HOST": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "TMPDIR": str(self.workdir),
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.python), "-m", "ministack"],
                env=env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            peers.wait_http(f"{self.endpoint.url}/_ministack/health", self.proc, 60.0, self.log)
        except BaseException:
            peers.stop(self.proc)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        peers.stop(self.proc)

    def version(self) -> str:
        out = subprocess.run(
            [str(self.python), "-c", "import importlib.metadata as m; print(m.version('ministack'))"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip()


def _create(lam: Any, name: str, source: str) -> float:
    start = time.perf_counter_ns()
    lam.create_function(
        FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler=HANDLER, Code={"ZipFile": build_zip(source, salt=name)}
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.02, "MaxAttempts": 3000})
    return (time.perf_counter_ns() - start) / 1e6


def _conn(endpoint: Endpoint) -> SignedConnection:
    from botocore.credentials import Credentials

    host, port = endpoint.url.removeprefix("http://").split(":")
    return SignedConnection(host, int(port), Credentials(endpoint.access_key, endpoint.secret_key))


def _checked(conn: SignedConnection, name: str) -> float:
    headers = conn.sign(name, b"{}")
    start = time.perf_counter_ns()
    reply = conn.invoke_ok(name, b"{}", headers)
    elapsed = (time.perf_counter_ns() - start) / 1e6
    if reply.payload.replace(b" ", b"") != EXPECTED.replace(b" ", b""):
        raise BenchError(f"{name} answered {reply.payload[:200]!r}, not the handler's result")
    return elapsed


def warm(endpoint: Endpoint, calls: int, boto3_calls: int, warmup: int) -> dict[str, Any]:
    """Warm invoke latency of a silent and a printing handler, raw HTTP and boto3."""
    lam = endpoint.client("lambda")
    result: dict[str, Any] = {}
    for variant, source in (("silent", PLAIN_SOURCE), ("printing", PRINTING_SOURCE)):
        name = f"bench-warm-{variant}-{uuid.uuid4().hex[:6]}"
        _create(lam, name, source)
        conn = _conn(endpoint)
        try:
            for _ in range(warmup):
                _checked(conn, name)
            http = [_checked(conn, name) for _ in range(calls)]
        finally:
            conn.close()
        boto: list[float] = []
        for _ in range(boto3_calls):
            start = time.perf_counter_ns()
            answer = lam.invoke(FunctionName=name, Payload=b"{}")
            payload = answer["Payload"].read()
            boto.append((time.perf_counter_ns() - start) / 1e6)
            if answer.get("FunctionError") or b"ok" not in payload:
                raise BenchError(f"boto3 invoke of {name}: {answer.get('FunctionError')} {payload[:200]!r}")
        result[variant] = {
            "calls": calls,
            "http_ms": Summary.of(http).as_dict(),
            "boto3_ms": Summary.of(boto).as_dict(),
            "raw_http_ms": [round(v, 4) for v in http],
        }
        lam.delete_function(FunctionName=name)
    return result


def cold(endpoint: Endpoint, samples: int) -> dict[str, Any]:
    """First invoke of a brand-new function (unique code each time), over a keep-alive connection."""
    lam = endpoint.client("lambda")
    conn = _conn(endpoint)
    cold_ms: list[float] = []
    create_ms: list[float] = []
    try:
        for index in range(samples + 1):  # the first one warms MiniStack itself up
            name = f"bench-cold-{index}-{uuid.uuid4().hex[:6]}"
            created = _create(lam, name, PLAIN_SOURCE)
            elapsed = _checked(conn, name)
            lam.delete_function(FunctionName=name)
            if index:
                cold_ms.append(elapsed)
                create_ms.append(created)
    finally:
        conn.close()
    return {
        "samples": samples,
        "cold_ms": Summary.of(cold_ms).as_dict(),
        "create_ms": Summary.of(create_ms).as_dict(),
        "raw": [round(v, 3) for v in cold_ms],
    }


def queue_drain(endpoint: Endpoint, messages: int) -> dict[str, Any]:
    return drain(endpoint, messages, batch=100)


def kinesis_delivery(endpoint: Endpoint, records: int, batch: int = 100, timeout_s: float = 300.0) -> dict[str, Any]:
    """A backlog of ``records`` 100-byte records on a 4-shard stream, delivered by a TRIM_HORIZON mapping
    to a function that logs each batch; the rate runs from the first batch's handler time to the last."""
    lam, kinesis, logs = endpoint.client("lambda"), endpoint.client("kinesis"), endpoint.client("logs")
    suffix = uuid.uuid4().hex[:8]
    name = f"bench-kinesis-{suffix}"
    _create(lam, name, KINESIS_SOURCE)
    kinesis.create_stream(StreamName=name, ShardCount=4)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    data = b"r" * 100
    for start in range(0, records, 500):
        chunk = [{"Data": data, "PartitionKey": str(start + i)} for i in range(min(500, records - start))]
        answer = kinesis.put_records(StreamName=name, Records=chunk)
        if answer.get("FailedRecordCount"):
            raise BenchError(f"PutRecords: {answer['FailedRecordCount']} records failed")
    created = time.time()
    began = time.perf_counter()
    lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=batch, StartingPosition="TRIM_HORIZON"
    )
    batches: list[tuple[int, float]] = []
    while time.perf_counter() - began < timeout_s:
        batches = []
        try:
            for page in logs.get_paginator("filter_log_events").paginate(
                logGroupName=f"/aws/lambda/{name}", filterPattern='"KINESIS"'
            ):
                for event in page["events"]:
                    parts = event["message"].split()
                    if len(parts) == 3 and parts[0] == "KINESIS":
                        batches.append((int(parts[1]), float(parts[2])))
        except logs.exceptions.ResourceNotFoundException:
            pass
        if sum(n for n, _ in batches) >= records:
            break
        time.sleep(0.25)
    delivered = sum(n for n, _ in batches)
    if delivered < records:
        raise BenchError(f"the handler logged {delivered} of {records} records after {timeout_s:.0f} s")
    batches.sort(key=lambda item: item[1])
    first, last = batches[0][1], batches[-1][1]
    return {
        "records": records,
        "batch_size": batch,
        "delivered": delivered,
        "batches": len(batches),
        "first_batch_after_s": round(first - created, 3),
        "records_per_s": round((delivered - batches[0][0]) / (last - first), 1) if last > first else None,
    }
