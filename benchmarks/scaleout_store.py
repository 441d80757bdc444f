"""The shared store's side of the scale-out scenario: a scratch PostgreSQL schema, the rows and bytes
the ray-tier servers wrote per invocation, and what one invocation's writes cost PostgreSQL."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.harness import BenchError
from squall.stores.postgres import drop_deployment

#: Invocations a batch of the usage writer holds, measured one after the other (see ``store_cost``).
STORE_BATCHES = (1, 16, 64)
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_dsn() -> str:
    return os.environ.get("SQUALL_BENCH_POSTGRES_DSN", DEFAULT_DSN)


@contextmanager
def scratch_schema(dsn: str) -> Iterator[str]:
    """A fresh schema name, dropped afterwards with the schemas named after it (``<schema>_streams``)."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT 1")
    try:
        yield schema
    finally:
        drop_deployment(dsn, schema)


def rows_per_invocation(schema: str, function: str, answered: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """Usage and log rows in the schema per answered invocation (the usage writer batches every 50 ms:
    wait until every answer's record is there)."""
    import psycopg

    deadline = time.monotonic() + timeout_s
    with psycopg.connect(postgres_dsn(), autocommit=True) as conn:
        while True:
            usage = _count(conn, f"SELECT COUNT(*) FROM {schema}.usage WHERE function_name = %s", function)
            if usage >= answered or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        logs = _count(conn, f"SELECT COUNT(*) FROM {schema}.log_events WHERE log_group = %s", f"/aws/lambda/{function}")
        # Only this run's invocations are in the schema yet: their rows and indexes, on disk.
        size = conn.execute(
            "SELECT pg_total_relation_size(%s) + pg_total_relation_size(%s)",
            (f"{schema}.usage", f"{schema}.log_events"),
        ).fetchone()
    return {
        "answered": answered,
        "usage_rows": usage,
        "log_rows": logs,
        "usage_rows_per_invocation": round(usage / answered, 3) if answered else None,
        "log_rows_per_invocation": round(logs / answered, 3) if answered else None,
        "stored_bytes_per_invocation": round(int(size[0]) / answered) if answered and size else None,
    }


def _count(conn: Any, sql: str, arg: str) -> int:
    row = conn.execute(sql, (arg,)).fetchone()
    return int(row[0]) if row else 0


def store_cost(schema: str, function: str, seconds: float) -> dict[str, Any]:
    """What one invocation's writes cost PostgreSQL: ``MetadataStore.record`` of B invocations at a time
    (a usage row and the invocation's real START/END/REPORT lines each, read back from the schema),
    back to back over one connection. Per invocation: wall time of the call (commit included) and the
    CPU time of the PostgreSQL backend that served it (from /proc, when PostgreSQL runs here)."""
    from squall.stores.postgres import PostgresDatabase, PostgresMetadataStore

    database = PostgresDatabase(postgres_dsn(), schema, max_size=1)  # one connection: one backend to watch
    store = PostgresMetadataStore(postgres_dsn(), schema, database=database)
    try:
        usage = store.usage(function_name=function)
        if not usage:
            raise BenchError(f"no usage record of {function} in {schema} to model an invocation on")
        record = usage[-1]
        with database.transaction() as conn:
            pid = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
            lines = conn.execute(
                "SELECT log_group, stream, timestamp, message FROM log_events WHERE position(%s in message) > 0"
                " ORDER BY id",
                (record.request_id,),
            ).fetchall()
        from squall.models import LogEvent

        group, stream = lines[0][0], lines[0][1]
        events = [LogEvent(timestamp=int(row[2]), message=str(row[3])) for row in lines]
        batches: dict[str, Any] = {}
        for size in STORE_BATCHES:
            batch_logs = [(group, stream, events)] * size
            batch_usage = [record] * size
            store.record(batch_usage, batch_logs)  # warm: plans cached
            calls = 0
            cpu_before = _backend_cpu_s(pid)
            began = time.perf_counter()
            while time.perf_counter() - began < seconds:
                store.record(batch_usage, batch_logs)
                calls += 1
            wall = time.perf_counter() - began
            cpu_after = _backend_cpu_s(pid)
            invocations = calls * size
            cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
            batches[str(size)] = {
                "calls": calls,
                "invocations": invocations,
                "wall_us_per_invocation": round(wall / invocations * 1e6, 2),
                "backend_cpu_us_per_invocation": None if cpu is None else round(cpu / invocations * 1e6, 2),
                "invocations_per_s_one_connection": round(invocations / wall, 1),
            }
    finally:
        store.close()
        database.close()
    return {
        "log_lines_per_invocation": len(events),
        "log_bytes_per_invocation": sum(len(e.message) for e in events),
        "clock_tick_s": 1 / os.sysconf("SC_CLK_TCK"),
        "batches": batches,
    }


def _backend_cpu_s(pid: int) -> float | None:
    """CPU seconds of a local PostgreSQL backend, None when it is not on this machine (or this
    machine's process ``pid`` is another program: PostgreSQL in a container, say)."""
    try:
        if not Path(f"/proc/{pid}/comm").read_text().startswith("postgres"):
            return None
    except OSError:
        return None
    return process_cpu_s(pid)


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
