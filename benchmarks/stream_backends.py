"""PutRecords and GetRecords records/s on the stream service's two stores, SQLite and PostgreSQL, side by side.

In-process: the Kinesis API's own handlers (``PutRecords`` from the raw body as boto3 sends it, with
500 records of 100 bytes; ``GetRecords`` with Limit 10,000 over every shard of a 4-shard stream),
without HTTP. Puts come from 1 and from 4 threads (4 let the group commit share a flush). Each
figure is the median of ``--runs`` runs, each on a fresh store. PostgreSQL runs in a scratch schema
of ``SQUALL_TEST_POSTGRES_DSN`` (the local server by default), dropped afterwards.

    python -m benchmarks.stream_backends [--runs 3] [--batches 40]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from squall.services.streams.api import KinesisApi
from squall.services.streams.service import StreamService
from squall.services.streams.store import StreamStore

BATCH = 500
RECORD_BYTES = 100
SHARDS = 4
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def sqlite_store() -> Iterator[Callable[[], Path | StreamStore]]:
    with tempfile.TemporaryDirectory() as tmp:
        yield lambda: Path(tmp) / "streams.db"


@contextlib.contextmanager
def scratch_schema() -> Iterator[tuple[str, str]]:
    """``SQUALL_TEST_POSTGRES_DSN`` (the local server by default) and a fresh schema name, dropped afterwards."""
    import os

    from squall.stores.postgres import drop_deployment

    dsn = os.environ.get("SQUALL_TEST_POSTGRES_DSN", DEFAULT_DSN)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        yield dsn, schema
    finally:
        drop_deployment(dsn, schema)


@contextlib.contextmanager
def postgres_store() -> Iterator[Callable[[], Path | StreamStore]]:
    from squall.services.streams.postgres import PostgresStreamStore

    with scratch_schema() as (dsn, schema):
        yield lambda: PostgresStreamStore(dsn, schema)


def put_bodies(producer: int, batches: int) -> list[bytes]:
    """Pre-encoded PutRecords bodies, so the clock measures the handler, not this script."""
    data = base64.b64encode(b"x" * RECORD_BYTES).decode()
    return [
        json.dumps(
            {
                "StreamName": "bench",
                "Records": [{"Data": data, "PartitionKey": f"{producer}-{b}-{i}"} for i in range(BATCH)],
            }
        ).encode()
        for b in range(batches)
    ]


def measure_puts(api: KinesisApi, threads: int, batches: int) -> float:
    """Records/s of ``threads`` producers each putting ``batches`` batches."""
    bodies = [put_bodies(n, batches) for n in range(threads)]
    start = threading.Barrier(threads + 1)

    def produce(mine: list[bytes]) -> None:
        start.wait()
        for body in mine:
            api.put_records_body(body)

    workers = [threading.Thread(target=produce, args=(mine,)) for mine in bodies]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return threads * batches * BATCH / (time.perf_counter() - began)


def measure_gets(api: KinesisApi) -> tuple[float, int]:
    """Records/s reading every shard from TRIM_HORIZON to its end with GetRecords (Limit 10,000)."""
    shard_ids = [s["ShardId"] for s in api.list_shards({"StreamName": "bench"})["Shards"]]
    began = time.perf_counter()
    total = 0
    for shard_id in shard_ids:
        params = {"StreamName": "bench", "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"}
        iterator = api.get_shard_iterator(params)["ShardIterator"]
        while True:
            page = api.get_records({"ShardIterator": iterator, "Limit": 10_000})
            total += len(page["Records"])
            iterator = page["NextShardIterator"]
            if not page["Records"]:
                break
    return total / (time.perf_counter() - began), total


def run(
    backend: Callable[[], contextlib.AbstractContextManager[Callable[[], Path | StreamStore]]], batches: int
) -> dict[str, float]:
    figures: dict[str, float] = {}
    for threads in (1, 4):
        with backend() as make_store:
            service = StreamService(make_store(), "000000000000", "us-east-1")
            try:
                api = KinesisApi(service)
                api.create_stream({"StreamName": "bench", "ShardCount": SHARDS})
                figures[f"put x{threads}"] = measure_puts(api, threads, batches // threads)
                if threads == 4:
                    figures["get"], _ = measure_gets(api)
            finally:
                service.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=40, help="PutRecords calls per run (split among threads)")
    args = parser.parse_args()
    backends = {"sqlite": sqlite_store, "postgres": postgres_store}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in backends}
    for _ in range(args.runs):
        for name, backend in backends.items():  # interleaved, so load changes hit both alike
            results[name].append(run(backend, args.batches))
    print(f"records/s, median of {args.runs} runs ({args.batches} PutRecords of {BATCH} x {RECORD_BYTES} B per run)")
    print(f"{'':<26}" + "".join(f"{name:>12}" for name in backends))
    labels = {"put x1": "PutRecords, 1 thread", "put x4": "PutRecords, 4 threads", "get": "GetRecords (Limit 10000)"}
    for key, label in labels.items():
        row = [statistics.median(r[key] for r in results[name]) for name in backends]
        print(f"{label:<26}" + "".join(f"{value:>12,.0f}" for value in row))


if __name__ == "__main__":
    main()
