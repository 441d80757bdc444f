"""PutItem, GetItem, Query and streamed PutItem operations/s on the table service's two stores, side by side.

In-process, the service's own methods (no HTTP, no request parsing): PutItem of items of 100 bytes
(on a table without a stream, and on one with a NEW_IMAGE stream), from 1 and from 4 threads;
GetItem of each item; Query of a partition of 20 items. Each figure is the median of ``--runs``
runs, each on a fresh store, with this process's CPU time per operation beside it (less sensitive
than the rate to the disk's flush times on a busy machine). PostgreSQL runs in a scratch schema of
``SQUALL_TEST_POSTGRES_DSN`` (the local server by default), dropped afterwards.

    python -m benchmarks.table_backends [--runs 3] [--items 1000] [--backends sqlite postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.stream_backends import scratch_schema
from squall.services.tables.service import TableService, WriteOp

try:
    from squall.services.tables.reads import ReadSpec
except ImportError:  # a tree from before reads.py, for a side-by-side run
    from squall.services.tables.service import ReadSpec  # type: ignore[attr-defined,no-redef]

ITEMS_PER_PARTITION = 20
THREADS = 4


def table(name: str, streamed: bool) -> dict[str, Any]:
    params: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if streamed:
        params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    return params


@contextlib.contextmanager
def sqlite_store() -> Iterator[Callable[[], Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        yield lambda: Path(tmp) / "tables.db"


@contextlib.contextmanager
def postgres_store() -> Iterator[Callable[[], Any]]:
    from squall.services.tables.postgres import PostgresTableStore

    with scratch_schema() as (dsn, schema):
        yield lambda: PostgresTableStore(dsn, schema)


def item(i: int, partitions: int) -> dict[str, Any]:
    return {"pk": {"S": f"p{i % partitions}"}, "sk": {"N": str(i)}, "v": {"S": "x" * 100}}


def rate(count: int, work: Callable[[], None]) -> tuple[float, float]:
    """Operations per second, and this process's CPU microseconds per operation."""
    began, cpu = time.perf_counter(), time.process_time()
    work()
    return count / (time.perf_counter() - began), (time.process_time() - cpu) * 1e6 / count


def one_run(service: TableService, items: int) -> dict[str, tuple[float, float]]:
    partitions = max(1, items // ITEMS_PER_PARTITION)
    service.create_table(table("plain", False))
    service.create_table(table("streamed", True))
    rates: dict[str, tuple[float, float]] = {}

    def put(name: str, numbers: range) -> None:
        for i in numbers:
            service.write(WriteOp(table=name, kind="put", item=item(i, partitions)))

    rates["put_item"] = rate(items, lambda: put("plain", range(items)))
    rates["put_item_streamed"] = rate(items, lambda: put("streamed", range(items)))

    def threaded() -> None:
        share = items // THREADS
        threads = [
            threading.Thread(target=put, args=("plain", range(items + n * share, items + (n + 1) * share)))
            for n in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    rates[f"put_item_{THREADS}_threads"] = rate(items, threaded)

    def get() -> None:
        for i in range(items):
            key = item(i, partitions)
            service.get_item("plain", {"pk": key["pk"], "sk": key["sk"]})

    rates["get_item"] = rate(items, get)
    queries = max(1, items // 5)

    def query() -> None:
        for i in range(queries):
            found = service.read(ReadSpec(table="plain", hash_value={"S": f"p{i % partitions}"}))
            assert len(found.items) >= ITEMS_PER_PARTITION

    rates["query"] = rate(queries, query)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    args = parser.parse_args()
    stores = {"sqlite": sqlite_store, "postgres": postgres_store}
    for backend in args.backends:
        runs: list[dict[str, tuple[float, float]]] = []
        for _ in range(args.runs):
            with stores[backend]() as make:
                service = TableService(make(), "000000000000", "us-east-1", expiry_interval=3600)
                try:
                    runs.append(one_run(service, args.items))
                finally:
                    service.close()
        for name in runs[0]:
            ops = statistics.median(r[name][0] for r in runs)
            cpu = statistics.median(r[name][1] for r in runs)
            print(f"{backend:9} {name:20} {ops:9.0f} ops/s {cpu:7.0f} us CPU/op")


if __name__ == "__main__":
    main()
