"""The crash test of issue 5: 100,000 records over 4 shards, delivered to a function by an event source
mapping while the server is killed with SIGKILL three times and restarted on the same data dir.

The function reports every record it sees to an HTTP receiver in this process (outside Squall), so
what it saw survives the kills. Checked afterwards: nothing lost; the first delivery of each record
in order per shard; at most one batch per shard per kill delivered again.

The kill points are random but seeded; the seed is printed, and ``SQUALL_CRASH_SEED=<seed>`` replays
the same plan (the timing of the machine still varies).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import function_zip

from .conftest import ROLE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RECORDS = 100_000
SHARDS = 4
BATCH_SIZE = 100
KILLS = 3
PUT_CHUNK = 500
STREAM = "crash-test"
#: How long the function works on each batch before reporting it, so that kills often land mid-invocation.
WORK_MS = int(os.environ.get("SQUALL_CRASH_WORK_MS", "20"))
#: Longest delay after reaching a kill point before the kill, so it can land anywhere in a batch's cycle.
MAX_JITTER_S = 0.5

#: One record as the function reported it: (server run it arrived in, shard, id, sequence number).
Seen = tuple[int, str, str, int]


class Sink:
    """The external sink: every record the function reported, in the order the reports arrived."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._run = 0
        self._seen: list[Seen] = []
        self._distinct: set[str] = set()
        self._per_run: Counter[int] = Counter()
        self.reports = 0

    def add(self, report: dict[str, Any]) -> None:
        with self._lock:
            self.reports += 1
            for ident, number in report["records"]:
                self._seen.append((self._run, report["shard"], ident, int(number)))
                self._distinct.add(ident)
            self._per_run[self._run] += len(report["records"])

    def next_run(self) -> None:
        """Reports from now on belong to the next server process (the one started after a kill)."""
        with self._lock:
            self._run += 1

    def distinct(self) -> int:
        with self._lock:
            return len(self._distinct)

    def in_this_run(self) -> int:
        with self._lock:
            return self._per_run[self._run]

    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)


def serve(sink: Sink) -> ThreadingHTTPServer:
    """An HTTP receiver on loopback that adds every POSTed report to ``sink``."""

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            sink.add(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    return receiver


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.01)


def wait_for_all(sink: Sink, stall_s: float = 20, timeout: float = 180) -> None:
    """Until the sink saw every record, or saw nothing new for ``stall_s``."""
    deadline = time.monotonic() + timeout
    last, progressed = sink.distinct(), time.monotonic()
    while last < RECORDS and time.monotonic() - progressed < stall_s and time.monotonic() < deadline:
        time.sleep(0.05)
        if (now := sink.distinct()) > last:
            last, progressed = now, time.monotonic()


def produce(kinesis: Any) -> dict[str, tuple[str, int]]:
    """Put RECORDS records with ids 000001..; returns where each one went: (shard, sequence number)."""
    placed: dict[str, tuple[str, int]] = {}
    for start in range(1, RECORDS + 1, PUT_CHUNK):
        ids = [f"{i:06d}" for i in range(start, min(start + PUT_CHUNK, RECORDS + 1))]
        response = kinesis.put_records(
            StreamName=STREAM, Records=[{"Data": ident.encode(), "PartitionKey": ident} for ident in ids]
        )
        assert response["FailedRecordCount"] == 0, response["Records"]
        for ident, entry in zip(ids, response["Records"], strict=True):
            placed[ident] = (entry["ShardId"], int(entry["SequenceNumber"]))
    return placed


def stream_lag(server: Any) -> list[int]:
    """How many records each shard's checkpoint is behind, as ``squall streams`` reports it."""
    result = subprocess.run(
        [sys.executable, "-m", "squall", "streams", "--json", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    (mapping,) = json.loads(result.stdout)["mappings"]
    return [int(shard["behind"]) for shard in mapping["lag"]]


def analyse(seen: list[Seen], placed: dict[str, tuple[str, int]]) -> dict[str, Any]:
    """Lost, misplaced, out-of-order and duplicated records, with duplicates per run and shard."""
    first: dict[str, int] = {}
    last_first: dict[str, int] = {}
    out_of_order: list[tuple[str, str, int, int]] = []
    misplaced: list[tuple[str, tuple[str, int], tuple[str, int]]] = []
    duplicates: Counter[tuple[int, str]] = Counter()
    for run, shard, ident, number in seen:
        if placed.get(ident) != (shard, number):
            misplaced.append((ident, (shard, number), placed.get(ident, ("unknown", -1))))
        if ident in first:
            duplicates[(run, shard)] += 1
            continue
        first[ident] = run
        if number <= last_first.get(shard, -1):
            out_of_order.append((shard, ident, number, last_first[shard]))
        last_first[shard] = number
    times_seen = Counter(ident for _, _, ident, _ in seen)
    return {
        "lost": sorted(set(placed) - set(first)),
        "misplaced": misplaced,
        "out_of_order": out_of_order,
        "duplicates": duplicates,
        "duplicated_ids": sum(1 for count in times_seen.values() if count > 1),
        "deliveries": len(seen),
        "deliveries_per_run": Counter(run for run, _, _, _ in seen),
    }


@pytest.mark.timeout(480)
def test_nothing_is_lost_when_the_server_is_killed_three_times(new_server: Any, capsys: Any) -> None:
    def say(line: str) -> None:
        with capsys.disabled():
            print(f"\n[crash test] {line}", end="", flush=True)

    seed = int(os.environ.get("SQUALL_CRASH_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    # Kill k once a random share of the records within the k-th of KILLS + 1 equal slices was seen
    # (so every kill falls while records are being consumed), then after a random delay.
    plan = [(rng.uniform(k + 0.1, k + 0.9) / (KILLS + 1), rng.uniform(0, MAX_JITTER_S)) for k in range(KILLS)]
    say(f"seed {seed} (replay: SQUALL_CRASH_SEED={seed}); kill plan (share seen, then delay): {plan}")

    sink = Sink()
    receiver = serve(sink)
    try:
        began = time.monotonic()
        server = new_server()
        lam, kinesis = server.client("lambda"), server.client("kinesis")
        kinesis.create_stream(StreamName=STREAM, ShardCount=SHARDS)
        kinesis.get_waiter("stream_exists").wait(StreamName=STREAM, WaiterConfig={"Delay": 0.1})
        arn = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["StreamARN"]
        placed = produce(kinesis)
        per_shard = Counter(shard for shard, _ in placed.values())
        assert len(per_shard) == SHARDS, per_shard
        produced = time.monotonic()
        say(f"put {RECORDS} records in {produced - began:.1f} s; per shard {dict(sorted(per_shard.items()))}")

        lam.create_function(
            FunctionName="crash-sink",
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": function_zip("crash_sink", "app")},
            Timeout=30,
            Environment={
                "Variables": {"SINK_URL": f"http://127.0.0.1:{receiver.server_port}/", "WORK_MS": str(WORK_MS)}
            },
        )
        lam.get_waiter("function_active_v2").wait(FunctionName="crash-sink", WaiterConfig={"Delay": 0.05})
        mapping = lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName="crash-sink", StartingPosition="TRIM_HORIZON", BatchSize=BATCH_SIZE
        )
        consuming = time.monotonic()

        kills: list[dict[str, Any]] = []
        for k, (share, delay) in enumerate(plan, 1):
            target = int(share * RECORDS)
            wait_until(
                lambda target=target: sink.distinct() >= target and sink.in_this_run() > 0,
                timeout=90,
                what=f"{target} records were seen before kill {k}",
            )
            time.sleep(delay)
            seen_at_kill = sink.distinct()
            assert seen_at_kill < RECORDS, f"all records were delivered before kill {k}: it would test nothing"
            assert server.stop(signal.SIGKILL) == -signal.SIGKILL
            killed = time.monotonic()
            sink.next_run()
            server.start()  # the same data dir and ports; raises if the server does not come back
            restart_s = time.monotonic() - killed
            kills.append({"kill": k, "seen_before": seen_at_kill, "restart_s": round(restart_s, 2)})
            say(f"kill {k}: SIGKILL after {seen_at_kill} distinct records seen; restarted in {restart_s:.2f} s")

        # Until everything was seen, or nothing new came for a while (then the checks below say what is missing).
        wait_for_all(sink)
        consumed = time.monotonic()
        # The last batches' checkpoints are written just after their invocations return.
        deadline = time.monotonic() + 30
        while (lag := stream_lag(server)) != [0] * SHARDS and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # room for any late redelivery to show up in the counts
        state = server.client("lambda").get_event_source_mapping(UUID=mapping["UUID"])
        result = analyse(sink.seen(), placed)
    finally:
        receiver.shutdown()
        receiver.server_close()

    duplicates: Counter[tuple[int, str]] = result["duplicates"]
    total_duplicates = sum(duplicates.values())
    per_kill = [sum(n for (run, _), n in duplicates.items() if run == k) for k in range(KILLS + 1)]
    say(
        f"records {RECORDS}, deliveries {result['deliveries']} in {sink.reports} batches, "
        f"lost {len(result['lost'])}, checkpoints behind {lag}, out of order {len(result['out_of_order'])}, "
        f"misplaced {len(result['misplaced'])}, duplicate deliveries {total_duplicates} "
        f"({result['duplicated_ids']} ids seen more than once; bound {SHARDS * BATCH_SIZE * KILLS})"
    )
    say(f"duplicates by run (0 = before the first kill): {per_kill}; by run and shard: {sorted(duplicates.items())}")
    say(f"deliveries by run: {dict(sorted(result['deliveries_per_run'].items()))}; kills: {kills}")
    say(
        f"times: put {produced - began:.1f} s, consume with {KILLS} kills {consumed - consuming:.1f} s "
        f"({RECORDS / (consumed - consuming):.0f} records/s), whole test {time.monotonic() - began:.1f} s\n"
    )

    assert lag == [0] * SHARDS, f"checkpoints behind the end of their shards by {lag} records"
    assert result["lost"] == [], f"{len(result['lost'])} records lost, e.g. {result['lost'][:20]}"
    assert result["misplaced"] == [], f"reported shard/sequence differs from the put's: {result['misplaced'][:20]}"
    assert result["out_of_order"] == [], f"first deliveries out of order: {result['out_of_order'][:20]}"
    # At most one batch per shard per kill comes again, and nothing is delivered twice without a kill.
    for (run, shard), count in duplicates.items():
        assert count <= (BATCH_SIZE if run > 0 else 0), f"{count} duplicates on {shard} after kill {run}"
    assert total_duplicates <= SHARDS * BATCH_SIZE * KILLS
    assert state["State"] == "Enabled" and state["LastProcessingResult"] == "OK", state
