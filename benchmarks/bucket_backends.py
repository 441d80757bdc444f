"""PUT and GET MB/s of one object on the bucket service's two stores, side by side: SQLite with body
files (embedded) and PostgreSQL with bodies as chunks (scale-out).

In-process, no HTTP: ``BucketService.put_object`` of random bytes, then ``open_object`` and reads of
1 MiB as the S3 API sends a body. Each figure is the median of ``--runs`` runs, each a new key on one
store. PostgreSQL runs in a scratch schema of ``SQUALL_TEST_POSTGRES_DSN`` (the local server by
default), dropped afterwards. Only the SQLite backend needs nothing of this branch, so the same
script measures an older checkout's embedded tier (``--backends sqlite``).

    python -m benchmarks.bucket_backends [--runs 5] [--sizes 1,100] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from squall.services.buckets.service import BucketService

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
READ = 1024 * 1024
MB = 1024 * 1024


@contextlib.contextmanager
def sqlite_service() -> Iterator[BucketService]:
    with tempfile.TemporaryDirectory() as tmp:
        service = BucketService(Path(tmp) / "buckets.db", Path(tmp) / "objects", "us-east-1")
        try:
            yield service
        finally:
            service.close()


@contextlib.contextmanager
def postgres_service() -> Iterator[BucketService]:
    import psycopg

    from squall.services.buckets.postgres import ChunkBodies, postgres_bucket_database

    dsn = os.environ.get("SQUALL_TEST_POSTGRES_DSN", DEFAULT_DSN)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    database = postgres_bucket_database(dsn, schema)
    service = BucketService(database, ChunkBodies(database), "us-east-1")
    try:
        yield service
    finally:
        service.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


BACKENDS: dict[str, Callable[[], contextlib.AbstractContextManager[BucketService]]] = {
    "sqlite": sqlite_service,
    "postgres": postgres_service,
}


def measure(service: BucketService, size_mb: int, runs: int) -> tuple[float, float]:
    """Median PUT and GET MB/s of a ``size_mb`` object over ``runs`` runs."""
    data = os.urandom(size_mb * MB)
    puts, gets = [], []
    for run in range(runs):
        key = f"obj-{size_mb}-{run}"
        start = time.perf_counter()
        service.put_object("bench", key, data, {}, {})
        puts.append(size_mb / (time.perf_counter() - start))
        start = time.perf_counter()
        _, body = service.open_object("bench", key)
        got = 0
        with body:
            while chunk := body.read(READ):
                got += len(chunk)
        gets.append(size_mb / (time.perf_counter() - start))
        assert got == len(data)
        service.delete_object("bench", key)
    return statistics.median(puts), statistics.median(gets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="1,100", help="object sizes in MiB, comma-separated")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    print("| backend | object | PUT MB/s | GET MB/s |")
    print("|---|---|---|---|")
    for backend in args.backends.split(","):
        with BACKENDS[backend]() as service:
            service.create_bucket("bench")
            for size in (int(s) for s in args.sizes.split(",")):
                put, get = measure(service, size, args.runs)
                print(f"| {backend} | {size} MiB | {put:,.0f} | {get:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
