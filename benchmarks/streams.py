"""Streams: how fast records go from PutRecords to a no-op handler through an event source mapping,
what limits it (the puts or the delivery), how close delivery gets to a bare loop over the same
records (the ceiling), and the put-to-handler latency at a steady 100 records/s.

Per batch size, on one 4-shard stream:

1. **end to end**: a mapping (LATEST) is Enabled and has delivered a few primer records (its pollers
   run, its sandboxes are warm); then ``producers`` processes put the records with
   PutRecords (500 a call, each producer its own boto3 client, as real producers spread the load);
   the clock runs from the first put to the moment every shard's checkpoint is past its last record.
   The puts alone (first put to last acknowledgement) give the **put rate**.
2. **delivery of a backlog**: a second mapping (TRIM_HORIZON) on the same function delivers the same
   records again, now all waiting: the delivery side alone. Its rate counts from its first delivered
   batch (the pollers of a new mapping start up to a reconcile period after CreateEventSourceMapping;
   that start-up time is reported on its own).
3. **ceiling**: this process reads the same records (with the primer) from the stream's SQLite file, batch by batch and
   shard by shard, encodes each batch as the delivery engine does (rows the sandbox turns into the
   Kinesis event) and invokes a no-op function once per batch in one warm sandbox of an in-process
   Platform (the call the delivery engine makes): SQLite read + batch encoding + one sandbox round
   trip, nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import math
import multiprocessing
import sqlite3
import tempfile
import time
import uuid
from contextlib import closing
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    HANDLER,
    REGION,
    ROLE,
    RUNTIME,
    BenchError,
    ServerProcess,
    build_zip,
    create_function,
    free_port,
)
from benchmarks.stats import Summary

NOOP_SOURCE = "def handler(event, context):\n    return None\n"
#: Prints, per record, how long ago (ms) its producer stamped it into the data, with its tag.
LATENCY_SOURCE = """import base64, time


def handler(event, context):
    now = time.time()
    for record in event["Records"]:
        tag, _, sent = base64.b64decode(record["kinesis"]["data"]).decode().partition(":")
        print(f"PUT_TO_HANDLER {tag} {(now - float(sent)) * 1000:.3f}")
"""
PUT_CHUNK = 500
SHARDS = 4
#: Producer processes for the throughput runs: one boto3 client spends more CPU per PutRecords
#: call than the server (see README), so one producer would measure boto3.
PRODUCERS = 2
RECORD_BYTES = 100
CAUGHT_UP_TIMEOUT_S = 300.0
LATENCY_RATE = 100
#: Records put (and delivered) before the clock starts: one per shard or so, to start the pollers.
PRIMER = 8
LATENCY_WARMUP_S = 1.0


def _client(service: str, url: str, access_key: str, secret_key: str) -> Any:
    import boto3
    from botocore.config import Config

    factory: Any = boto3.client  # its overloads want a literal service name
    return factory(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"max_attempts": 0}, read_timeout=120),
    )


def kinesis_client(server: ServerProcess) -> Any:
    creds = server.credentials()
    return _client("kinesis", server.url, creds.access_key, creds.secret_key)


def logs_client(server: ServerProcess) -> Any:
    creds = server.credentials()
    return _client("logs", server.url, creds.access_key, creds.secret_key)


# --- producers ---------------------------------------------------------------------------------------
def _signed_puts(
    url: str, keys: tuple[str, str], stream: str, calls: list[list[int]]
) -> list[tuple[bytes, dict[str, str]]]:
    """The PutRecords requests boto3 would send for ``calls`` (record numbers), signed now."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    auth = SigV4Auth(Credentials(*keys), "kinesis", REGION)
    data = base64.b64encode(b"x" * RECORD_BYTES).decode()
    signed = []
    for numbers in calls:
        records = [{"Data": data, "PartitionKey": f"k{i}"} for i in numbers]
        body = json.dumps({"StreamName": stream, "Records": records}).encode()
        headers = {"X-Amz-Target": "Kinesis_20131202.PutRecords", "Content-Type": "application/x-amz-json-1.1"}
        request = AWSRequest(method="POST", url=f"{url}/", data=body, headers=headers)
        auth.add_auth(request)
        signed.append((body, dict(request.headers.items())))
    return signed


def _produce(
    url: str, keys: tuple[str, str], stream: str, first: int, count: int, kind: str, barrier: Barrier, out: Any
) -> None:
    """One producer process: its share of records, PutRecords 500 at a time, either through its own
    boto3 client (``kind="boto3"``) or as requests signed before the clock over one keep-alive
    connection (``"presigned"``, so that the producer's CPU goes to requests, not to boto3)."""
    try:
        calls = [
            list(range(start, min(start + PUT_CHUNK, first + count)))
            for start in range(first, first + count, PUT_CHUNK)
        ]
        if kind == "boto3":
            kinesis = _client("kinesis", url, *keys)
            payload = b"x" * RECORD_BYTES
            requests = [[{"Data": payload, "PartitionKey": f"k{i}"} for i in numbers] for numbers in calls]
            kinesis.describe_stream_summary(StreamName=stream)  # the connection is open before the clock
            barrier.wait()
            began = time.monotonic()
            for records in requests:
                if kinesis.put_records(StreamName=stream, Records=records)["FailedRecordCount"]:
                    raise BenchError("PutRecords failed some records")
        else:
            signed = _signed_puts(url, keys, stream, calls)
            host, _, port = url.removeprefix("http://").partition(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=120)
            conn.connect()
            barrier.wait()
            began = time.monotonic()
            for body, headers in signed:
                conn.request("POST", "/", body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
                if response.status != 200 or json.loads(answer)["FailedRecordCount"]:
                    raise BenchError(f"PutRecords: HTTP {response.status} {answer[:300]!r}")
            conn.close()
        out.put((began, time.monotonic(), None))
    except Exception as exc:
        out.put((0.0, 0.0, f"{type(exc).__name__}: {exc}"))


def put_all(
    server: ServerProcess, stream: str, records: int, producers: int, kind: str = "presigned"
) -> tuple[float, float]:
    """Put ``records`` records from ``producers`` processes started together; (first put, last ack),
    ``time.monotonic()`` (system-wide, so comparable between processes)."""
    ctx = multiprocessing.get_context("fork")
    creds = server.credentials()
    share = -(-records // producers)
    starts = range(0, records, share)
    barrier = ctx.Barrier(len(starts) + 1)
    out = ctx.Queue()
    keys = (creds.access_key, creds.secret_key)
    procs = [
        ctx.Process(
            target=_produce, args=(server.url, keys, stream, start, min(share, records - start), kind, barrier, out)
        )
        for start in starts
    ]
    for proc in procs:
        proc.start()
    try:
        barrier.wait(timeout=60)
        results = [out.get(timeout=CAUGHT_UP_TIMEOUT_S) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    errors = [error for _, _, error in results if error]
    if errors:
        raise BenchError(f"producer failed: {errors[0]}")
    return min(r[0] for r in results), max(r[1] for r in results)


def put_rates(server: ServerProcess, records: int, producers: int = PRODUCERS) -> dict[str, Any]:
    """PutRecords alone (a stream without mappings): pre-signed requests, then boto3 clients."""
    kinesis = kinesis_client(server)
    result: dict[str, Any] = {"records": records, "producers": producers}
    for kind in ("presigned", "boto3"):
        stream = f"bench-puts-{kind}-{uuid.uuid4().hex[:8]}"
        kinesis.create_stream(StreamName=stream, ShardCount=SHARDS)
        began, done = put_all(server, stream, records, producers, kind)
        result[f"{kind}_seconds"] = round(done - began, 3)
        result[f"{kind}_records_per_s"] = round(records / (done - began), 1)
        kinesis.delete_stream(StreamName=stream)
    return result


# --- progress ----------------------------------------------------------------------------------------
class Progress:
    """Whether a mapping has delivered everything in a stream: every shard's checkpoint past its last
    record. Reads the server's files (read-only for the stream store) without disturbing it."""

    def __init__(self, data_dir: Path) -> None:
        from squall.sources.mappings import MappingStore

        self._records = sqlite3.connect(f"file:{data_dir / 'streams.db'}?mode=ro", uri=True, isolation_level=None)
        self._mappings = MappingStore(data_dir / "mappings.db")

    def last_records(self, stream: str) -> dict[str, int]:
        rows = self._records.execute(
            "SELECT shard_id, MAX(seq) FROM records WHERE stream = ? GROUP BY shard_id", (stream,)
        ).fetchall()
        return {shard: int(last) for shard, last in rows}

    def caught_up(self, mapping: str, last: dict[str, int]) -> bool:
        return all((self._mappings.checkpoint(mapping, shard) or 0) > seq for shard, seq in last.items())

    def wait(self, stream: str, mapping: str, records: int) -> float:
        """Block until ``mapping`` has delivered the ``records`` records of ``stream`` (all of them
        already acknowledged); returns ``time.monotonic()`` then."""
        (stored,) = self._records.execute("SELECT COUNT(*) FROM records WHERE stream = ?", (stream,)).fetchone()
        if stored != records:
            raise BenchError(f"{stream} holds {stored} records, expected {records}")
        last = self.last_records(stream)
        deadline = time.monotonic() + CAUGHT_UP_TIMEOUT_S
        while not self.caught_up(mapping, last):
            if time.monotonic() > deadline:
                raise BenchError(f"{records} records were not delivered within {CAUGHT_UP_TIMEOUT_S:.0f} s")
            time.sleep(0.005)
        return time.monotonic()

    def first_batch(self, stream: str, mapping: str) -> tuple[float, int]:
        """Block until ``mapping`` has delivered its first batch of ``stream``; (``time.monotonic()``
        then, how many records were delivered by then)."""
        deadline = time.monotonic() + CAUGHT_UP_TIMEOUT_S
        while True:
            positions = {shard: self._mappings.checkpoint(mapping, shard) for shard in self.last_records(stream)}
            if any(positions.values()):
                seen = time.monotonic()
                delivered = sum(
                    self._records.execute(
                        "SELECT COUNT(*) FROM records WHERE stream = ? AND shard_id = ? AND seq < ?",
                        (stream, shard, position),
                    ).fetchone()[0]
                    for shard, position in positions.items()
                    if position
                )
                return seen, int(delivered)
            if time.monotonic() > deadline:
                raise BenchError(f"mapping {mapping} delivered nothing within {CAUGHT_UP_TIMEOUT_S:.0f} s")
            time.sleep(0.002)

    def close(self) -> None:
        self._records.close()
        self._mappings.close()


def _wait_enabled(lam: Any, mapping: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while lam.get_event_source_mapping(UUID=mapping)["State"] != "Enabled":
        if time.monotonic() > deadline:
            raise BenchError(f"mapping {mapping} did not become Enabled in {timeout_s:.0f} s")
        time.sleep(0.01)


# --- throughput --------------------------------------------------------------------------------------
def delivery(
    server: ServerProcess, lam: Any, batch_size: int, records: int, producers: int = PRODUCERS, shards: int = SHARDS
) -> dict[str, Any]:
    """End to end, the puts alone, a backlog's delivery alone and the ceiling, on the same records."""
    kinesis = kinesis_client(server)
    tag = uuid.uuid4().hex[:8]
    stream, function = f"bench-{tag}", f"bench-sink-{tag}"
    kinesis.create_stream(StreamName=stream, ShardCount=shards)
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    create_function(lam, function, build_zip(NOOP_SOURCE, tag))
    progress = Progress(server.data_dir)
    try:
        live = lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName=function, StartingPosition="LATEST", BatchSize=batch_size
        )["UUID"]
        _wait_enabled(lam, live)
        # Its pollers are running and the sandboxes warm once a first record has gone through.
        kinesis.put_records(
            StreamName=stream, Records=[{"Data": b"primer", "PartitionKey": f"p{i}"} for i in range(PRIMER)]
        )
        progress.wait(stream, live, PRIMER)
        began, put_done = put_all(server, stream, records, producers)
        delivered = progress.wait(stream, live, records + PRIMER)
        lam.delete_event_source_mapping(UUID=live)

        start = time.monotonic()
        backlog = lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName=function, StartingPosition="TRIM_HORIZON", BatchSize=batch_size
        )["UUID"]
        first, early = progress.first_batch(stream, backlog)
        drained = progress.wait(stream, backlog, records + PRIMER)
        lam.delete_event_source_mapping(UUID=backlog)
    finally:
        progress.close()
    ceiling = run_ceiling(server.data_dir / "streams.db", stream, arn, batch_size)
    if ceiling["records"] != records + PRIMER:
        raise BenchError(f"the ceiling loop read {ceiling['records']} records, expected {records + PRIMER}")
    seconds, put_seconds, drain_seconds = delivered - began, put_done - began, drained - first
    # The pollers of a new mapping start a while after it is created (see README); the rate is
    # taken from the first batch delivered on, over the records delivered after it.
    after_first = records + PRIMER - early
    backlog_rate = after_first / drain_seconds if drain_seconds > 0 and after_first else math.nan
    return {
        "batch_size": batch_size,
        "records": records,
        "shards": shards,
        "producers": producers,
        "seconds": round(seconds, 3),
        "put_seconds": round(put_seconds, 3),
        "records_per_s": round(records / seconds, 1),
        "put_records_per_s": round(records / put_seconds, 1),
        "backlog_start_seconds": round(first - start, 3),
        "backlog_seconds": round(drain_seconds, 3),
        "backlog_records_after_first_batch": after_first,
        "backlog_records_per_s": round(backlog_rate, 1),
        "ceiling_seconds": ceiling["seconds"],
        "ceiling_records_per_s": ceiling["records_per_s"],
        "ceiling_invokes": ceiling["invokes"],
        "fraction_of_ceiling": round(backlog_rate / ceiling["records_per_s"], 3),
    }


# --- the ceiling -------------------------------------------------------------------------------------
def run_ceiling(db_path: Path, stream: str, stream_arn: str, batch_size: int) -> dict[str, Any]:
    """The bare loop over one stream's records; see the module docstring."""
    try:
        import uvloop

        return uvloop.run(_ceiling(db_path, stream, stream_arn, batch_size))
    except ImportError:
        return asyncio.run(_ceiling(db_path, stream, stream_arn, batch_size))


async def _ceiling(db_path: Path, stream: str, stream_arn: str, batch_size: int) -> dict[str, Any]:
    from squall.config import Settings
    from squall.models import FunctionConfig
    from squall.platform import Platform
    from squall.services.streams.events import kinesis_batch, shape
    from squall.services.streams.service import StoredRecord

    name = "bench-ceiling"
    with tempfile.TemporaryDirectory(prefix="squall-bench-ceiling-") as tmp:
        settings = Settings.load(data_dir=Path(tmp) / "data", port=free_port(), shutdown_grace_s=2.0)
        platform = Platform.build(settings, "SQUALLBENCHKEY", "squall-bench-secret")
        await platform.start()
        try:
            config = FunctionConfig(name=name, runtime=RUNTIME, role=ROLE, handler=HANDLER, code_sha256="", code_size=0)
            await platform.create_function(config, build_zip(NOOP_SOURCE), False)
            await _wait_active(platform, name)
            function = await platform.invoker.resolve(name, None)
            await platform.invoker.invoke(function, b"{}", trigger="kinesis", wait=True)  # the sandbox is warm
            with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)) as conn:
                shard_ids = [
                    row[0]
                    for row in conn.execute(
                        "SELECT shard_id FROM shards WHERE stream = ? ORDER BY shard_id", (stream,)
                    ).fetchall()
                ]
                count = invokes = 0
                start = time.perf_counter()
                for shard_id in shard_ids:
                    position = 0
                    while True:
                        rows = conn.execute(
                            "SELECT seq, partition_key, data, arrival FROM records WHERE stream = ? AND shard_id = ?"
                            " AND seq >= ? ORDER BY seq LIMIT ?",
                            (stream, shard_id, position, batch_size),
                        ).fetchall()
                        if not rows:
                            break
                        batch = [StoredRecord(r[0], r[1], bytes(r[2]), r[3]) for r in rows]
                        _, result = await platform.invoker.invoke(
                            function,
                            kinesis_batch(batch),
                            trigger="kinesis",
                            wait=True,
                            shape=shape(shard_id, stream_arn, REGION, ROLE),
                        )
                        if result.function_error:
                            raise BenchError(f"ceiling invoke failed: {result.payload[:300]!r}")
                        count += len(batch)
                        invokes += 1
                        position = batch[-1].seq + 1
                seconds = time.perf_counter() - start
        finally:
            await platform.stop()
    return {
        "records": count,
        "invokes": invokes,
        "seconds": round(seconds, 3),
        "records_per_s": round(count / seconds, 1),
    }


async def _wait_active(platform: Any, name: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (await platform.get_function(name)).state != "Active":
        if time.monotonic() > deadline:
            raise BenchError(f"{name} did not become Active")
        await asyncio.sleep(0.01)


# --- latency -----------------------------------------------------------------------------------------
def latency(server: ServerProcess, lam: Any, seconds: float, rate: int = LATENCY_RATE) -> dict[str, Any]:
    """Put one record every 1/``rate`` s (PutRecord) stamped with ``time.time()``; the handler prints
    now minus that stamp for each record; the figures come back through CloudWatch Logs'
    FilterLogEvents on the function's log group. The first ``LATENCY_WARMUP_S`` (sandboxes starting)
    are tagged and left out."""
    kinesis, logs = kinesis_client(server), logs_client(server)
    tag = uuid.uuid4().hex[:8]
    stream, function = f"bench-lat-{tag}", f"bench-lat-{tag}"
    kinesis.create_stream(StreamName=stream, ShardCount=SHARDS)
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    create_function(lam, function, build_zip(LATENCY_SOURCE, tag))
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=function, StartingPosition="LATEST", BatchSize=100
    )["UUID"]
    _wait_enabled(lam, mapping)
    interval = 1.0 / rate
    warmup = int(LATENCY_WARMUP_S * rate)
    total = warmup + int(seconds * rate)
    start = time.monotonic()
    for i in range(total):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        label = "w" if i < warmup else "m"
        kinesis.put_record(StreamName=stream, Data=f"{label}:{time.time()!r}".encode(), PartitionKey=f"k{i}")
    achieved = total / (time.monotonic() - start)
    progress = Progress(server.data_dir)
    try:
        progress.wait(stream, mapping, total)
    finally:
        progress.close()
    lam.delete_event_source_mapping(UUID=mapping)
    samples = _collect(logs, f"/aws/lambda/{function}", total - warmup)
    return {
        "rate_per_s": rate,
        "achieved_rate_per_s": round(achieved, 1),
        "records": len(samples),
        "warmup_records": warmup,
        "latency_ms": Summary.of(samples).as_dict(),
    }


def _collect(logs: Any, group: str, expected: int, timeout_s: float = 30.0) -> list[float]:
    """The measured (``m``) samples printed by the latency handler, once all ``expected`` are in."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples: list[float] = []
        for page in logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, filterPattern='"PUT_TO_HANDLER m"'
        ):
            for event in page["events"]:
                for line in event["message"].splitlines():
                    parts = line.split()
                    if len(parts) == 3 and parts[:2] == ["PUT_TO_HANDLER", "m"]:
                        samples.append(float(parts[2]))
        if len(samples) >= expected:
            return samples
        if time.monotonic() > deadline:
            raise BenchError(f"only {len(samples)} of {expected} latency lines reached {group}")
        time.sleep(0.2)
