"""Stream mappings beyond one batch at a time: ParallelizationFactor, tumbling windows, throttles,
IteratorAge, and two servers sharing one data dir through shard leases."""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FUNCTIONS, make_zip
from tests.e2e.conftest import SquallServer
from tests.e2e.test_stream_triggers import make_stream, setup, sink_notes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: The top-level keys of aws-lambda-go's kinesis-time-window-event.json sample (checked in the unit tests).
WINDOW_EVENT_KEYS = {
    "Records",
    "window",
    "state",
    "shardId",
    "eventSourceARN",
    "isFinalInvokeForWindow",
    "isWindowTerminatedEarly",
}

#: Copies each record to the sink with its partition key and when its batch ran.
TIMED_SINK = """
import base64, json, os, time
import boto3

kinesis = boto3.client("kinesis")

def handler(event, context):
    began = time.time()
    time.sleep(0.15)
    ended = time.time()
    notes = []
    for r in event["Records"]:
        data = base64.b64decode(r["kinesis"]["data"]).decode()
        note = {"key": r["kinesis"]["partitionKey"], "data": data, "began": began, "ended": ended}
        notes.append({"Data": json.dumps(note).encode(), "PartitionKey": "sink"})
    kinesis.put_records(StreamName=os.environ["SINK"], Records=notes)
"""

#: Sums the records' numbers in the window's state; the final invocation reports the sum.
WINDOW_SUM = """
import base64, json, os
import boto3

kinesis = boto3.client("kinesis")

def handler(event, context):
    state = event["state"] or {}
    total = state.get("total", 0) + sum(int(base64.b64decode(r["kinesis"]["data"])) for r in event["Records"])
    calls = state.get("calls", 0) + 1
    if event["isFinalInvokeForWindow"]:
        note = {"total": total, "calls": calls, "window": event["window"], "records": len(event["Records"]),
                "keys": sorted(k for k in event if k != "Records"), "shardId": event["shardId"]}
        kinesis.put_record(StreamName=os.environ["SINK"], Data=json.dumps(note).encode(), PartitionKey="w")
    return {"state": {"total": total, "calls": calls}, "batchItemFailures": []}
"""


def test_parallelization_factor_keeps_order_per_key_and_overlaps(lam: Any, squall: Any, make_function: Any) -> None:
    kinesis = squall.client("kinesis")
    source = make_stream(kinesis, "fanned-src")
    make_stream(kinesis, "fanned-sink")
    make_function(
        "fanned",
        make_zip({"app.py": TIMED_SINK}),
        Timeout=10,
        Environment={"Variables": {"SINK": "fanned-sink"}},
    )
    keys = [f"key-{k}" for k in range(8)]
    entries = [{"Data": f"{i:03d}".encode(), "PartitionKey": keys[i % len(keys)]} for i in range(160)]
    kinesis.put_records(StreamName="fanned-src", Records=entries)
    mapping = lam.create_event_source_mapping(
        EventSourceArn=source,
        FunctionName="fanned",
        StartingPosition="TRIM_HORIZON",
        BatchSize=10,
        ParallelizationFactor=4,
    )
    assert mapping["ParallelizationFactor"] == 4
    notes = sink_notes(kinesis, "fanned-sink", 160, timeout=60)
    assert sorted(n["data"] for n in notes) == [f"{i:03d}" for i in range(160)]
    for key in keys:
        seen = [n["data"] for n in notes if n["key"] == key]
        assert seen == sorted(seen), key  # in order per partition key
    batches = sorted({(n["began"], n["ended"]) for n in notes})
    overlapping = sum(1 for a, b in itertools.pairwise(batches) if b[0] < a[1])
    assert overlapping > 0, "no two batches of the shard ran at the same time"
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_tumbling_window_carries_state_and_reports_the_final_sum(lam: Any, squall: Any, make_function: Any) -> None:
    kinesis = squall.client("kinesis")
    source = make_stream(kinesis, "windowed-src")
    make_stream(kinesis, "windowed-sink")
    make_function(
        "windowed", make_zip({"app.py": WINDOW_SUM}), Timeout=10, Environment={"Variables": {"SINK": "windowed-sink"}}
    )
    mapping = lam.create_event_source_mapping(
        EventSourceArn=source,
        FunctionName="windowed",
        StartingPosition="TRIM_HORIZON",
        BatchSize=3,
        TumblingWindowInSeconds=2,
    )
    assert mapping["TumblingWindowInSeconds"] == 2
    for i in range(1, 11):
        kinesis.put_record(StreamName="windowed-src", Data=str(i).encode(), PartitionKey=f"k{i}")
    deadline = time.monotonic() + 30
    finals: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        finals = sink_notes(kinesis, "windowed-sink", 1, timeout=1)
        if sum(f["total"] for f in finals) >= 55:
            break
    assert sum(f["total"] for f in finals) == 55  # every record counted once, across windows
    for final in finals:
        assert final["records"] == 0 and final["calls"] >= 2  # state carried over batches of 3
        assert final["keys"] == sorted(WINDOW_EVENT_KEYS - {"Records"})
        start = time.strptime(final["window"]["start"], "%Y-%m-%dT%H:%M:%SZ")
        end = time.strptime(final["window"]["end"], "%Y-%m-%dT%H:%M:%SZ")
        assert time.mktime(end) - time.mktime(start) == 2
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_throttled_function_holds_records_until_it_can_run(lam: Any, squall: Any, make_function: Any) -> None:
    kinesis = squall.client("kinesis")
    source, sink = setup(kinesis, make_function, "held")
    lam.put_function_concurrency(FunctionName="held", ReservedConcurrentExecutions=0)
    mapping = lam.create_event_source_mapping(EventSourceArn=source, FunctionName="held", StartingPosition="LATEST")
    time.sleep(1.5)  # the pollers are running
    for i in range(5):
        kinesis.put_record(StreamName="held-src", Data=f"h{i}".encode(), PartitionKey="k")
    time.sleep(2)
    assert sink_notes(kinesis, sink, 1, timeout=0.5) == []  # throttled: nothing ran, nothing was dropped
    lam.delete_function_concurrency(FunctionName="held")
    notes = sink_notes(kinesis, sink, 5)
    assert [n["data"] for n in notes] == [f"h{i}" for i in range(5)]
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_two_servers_on_one_data_dir_never_deliver_a_shard_twice(tmp_path: Path) -> None:
    data = tmp_path / "shared"
    first = SquallServer(data)
    first.start()
    second = SquallServer(data)
    second.start()
    try:
        lam, kinesis = first.client("lambda"), first.client("kinesis")
        source = make_stream(kinesis, "shared-src", shards=4)
        make_stream(kinesis, "shared-sink")
        lam.create_function(
            FunctionName="shared",
            Runtime="python3.11",
            Role="arn:aws:iam::000000000000:role/r",
            Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": (FUNCTIONS / "stream_sink.py").read_text()})},
            Timeout=10,
            Environment={"Variables": {"SINK": "shared-sink"}},
        )
        lam.get_waiter("function_active_v2").wait(FunctionName="shared")
        lam.create_event_source_mapping(
            EventSourceArn=source, FunctionName="shared", StartingPosition="TRIM_HORIZON", BatchSize=5
        )
        for round_ in range(4):
            records = [{"Data": f"a{round_}-{i:02d}".encode(), "PartitionKey": f"p{i}"} for i in range(25)]
            kinesis.put_records(StreamName="shared-src", Records=records)
            time.sleep(0.5)
        notes = sink_notes(kinesis, "shared-sink", 100, timeout=60)
        time.sleep(2)  # anything delivered twice would have arrived by now
        notes = sink_notes(kinesis, "shared-sink", 100, timeout=1)
        seen = [n["data"] for n in notes]
        assert sorted(seen) == sorted({f"a{r}-{i:02d}" for r in range(4) for i in range(25)})  # once each
        holders = {k: v for k, v in _lease_holders(data).items() if k.startswith("stream-mapping/")}
        assert len(holders) == 4  # one per shard (the scheduler holds a lease of its own)
        # The holder of the leases dies; the other server takes over at once and carries on.
        owners = set(holders.values())
        victim = first if any(f"/{first.proc.pid}/" in o for o in owners) else second  # type: ignore[union-attr]
        survivor = second if victim is first else first
        assert victim.proc is not None
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(10)
        more = [{"Data": f"b-{i:02d}".encode(), "PartitionKey": f"p{i}"} for i in range(20)]
        survivor.client("kinesis").put_records(StreamName="shared-src", Records=more)
        notes = sink_notes(survivor.client("kinesis"), "shared-sink", 120, timeout=60)
        assert {f"b-{i:02d}" for i in range(20)} <= {n["data"] for n in notes}
        # The dead server's leases are freed by the survivor's next heartbeat (every 5 s) at the latest.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            held = [o for k, o in _lease_holders(data).items() if k.startswith("stream-mapping/")]
            if held and all(f"/{survivor.proc.pid}/" in o for o in held):  # type: ignore[union-attr]
                break
            time.sleep(0.2)
        assert held and all(f"/{survivor.proc.pid}/" in o for o in held), held  # type: ignore[union-attr]
    finally:
        for server in (first, second):
            if server.proc is not None and server.proc.poll() is None:
                server.stop()


def test_iterator_age_and_lease_holder_show_in_squall_streams(lam: Any, squall: Any, make_function: Any) -> None:
    from squall.cli.streams import stream_report

    kinesis = squall.client("kinesis")
    source, sink = setup(kinesis, make_function, "aged")
    kinesis.put_record(StreamName="aged-src", Data=b"old", PartitionKey="k")
    time.sleep(1.2)
    mapping = lam.create_event_source_mapping(
        EventSourceArn=source, FunctionName="aged", StartingPosition="TRIM_HORIZON"
    )
    assert sink_notes(kinesis, sink, 1)
    time.sleep(0.3)
    report = stream_report(squall.data_dir)
    (lag,) = next(m["lag"] for m in report["mappings"] if m["uuid"] == mapping["UUID"])
    # The record waited more than a second before it was sent: that is its IteratorAge.
    assert lag["last_batch_iterator_age_ms"] >= 1000 and lag["behind"] == 0
    assert lag["held_by"] is not None and f"/{squall.proc.pid}/" in lag["held_by"]
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def _lease_holders(data: Path) -> dict[str, str]:
    from squall.stores.leases import SqliteLeaseStore

    store = SqliteLeaseStore(data / "leases.db")
    try:
        return store.holders()
    finally:
        store.close()
