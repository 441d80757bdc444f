"""Issue 11's failover: two ``squall server --tier ray`` processes on one PostgreSQL schema and one Ray
cluster share a stream's event source mapping, each delivering its share of the shards; server A is
killed with SIGKILL while producers keep putting records, and B takes A's shards over from the shared
checkpoints within the lease time. Nothing is lost, and every shard's first deliveries stay in order.

The function reports every batch to an HTTP receiver in this process (``crash_sink``), so what it saw
survives the kill whichever server invoked it. Then a Ray worker node is lost mid-run (nothing lost
either), a node that joins takes new work. Last, a queue shared by the servers (PostgreSQL): sent to through
both, long-polled through one while the other sends, and its mapping delivered by one server at a time,
each message once.
"""

from __future__ import annotations

import itertools
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from squall.sources.queues import lease_name
from squall.sources.streams import LEASE_TTL_S, MEMBER_PREFIX
from squall.stores.postgres import PostgresLeaseStore
from tests.conftest import FUNCTIONS
from tests.contract.postgres import dsn as postgres_dsn
from tests.e2e.conftest import SquallServer
from tests.e2e.test_multiserver import NODE, agent_statuses, create, ray_cluster, schema, tier_args
from tests.e2e.test_stream_crash import Sink, analyse, serve, wait_until

__all__ = ["schema"]  # a fixture: the module's scratch schema

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHARDS = 4
BATCH_SIZE = 25
#: Records per put, and the pause between puts: a steady trickle the servers keep up with.
PUT_CHUNK = 20
PUT_PAUSE_S = 0.05
#: Records put in all; A is killed once KILL_AFTER of them were seen.
RECORDS = 2400
KILL_AFTER = 400
STREAM = "failover"
CRASH_SINK = (FUNCTIONS / "crash_sink.py").read_text()


@pytest.fixture(scope="module")
def nodes(schema: str) -> Iterator[Any]:
    """A three-node Ray cluster (``ray.cluster_utils.Cluster``), started once for the module."""
    with ray_cluster(schema) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def cluster(nodes: Any) -> str:
    return str(nodes.address)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, cluster: str, schema: str) -> Iterator[list[SquallServer]]:
    """Servers A and B of one account: own data directories, one cluster and schema."""
    root = tmp_path_factory.mktemp("failover")
    started: list[SquallServer] = []
    try:
        for name in ("a", "b"):
            server = SquallServer(root / name, tier_args(cluster, schema))
            if started:  # one account: B gets A's root key
                server.data_dir.mkdir(parents=True)
                shutil.copy(started[0].data_dir / "credentials", server.data_dir / "credentials")
            server.start()
            started.append(server)
        yield started
    finally:
        for server in started:
            server.stop()
        shutil.rmtree(Path(tempfile.gettempdir()) / "squall-ray" / schema, ignore_errors=True)


class Leases:
    """Who holds each shard of a mapping, read from the lease store the servers share."""

    def __init__(self, schema: str, mapping: str) -> None:
        from squall.stores.postgres import PostgresLeaseStore

        self.store = PostgresLeaseStore(postgres_dsn(), schema=schema)
        self.prefix = f"stream-mapping/{mapping}/"

    def shards(self) -> dict[str, str]:
        """Shard id -> the pid of the server holding it."""
        return {
            name.removeprefix(self.prefix): owner.split("/")[1]
            for name, owner in self.store.holders().items()
            if name.startswith(self.prefix)
        }

    def members(self) -> set[str]:
        return {owner.split("/")[1] for name, owner in self.store.holders().items() if name.startswith(MEMBER_PREFIX)}


class Producer(threading.Thread):
    """Puts RECORDS records with ids 000001.. to ``stream`` in small chunks through the last of ``through``
    (``switch`` drops it); remembers where each one went: (shard, sequence number)."""

    def __init__(self, through: list[Any], stream: str = STREAM) -> None:
        super().__init__(daemon=True)
        self.through = through
        self.stream = stream
        self.placed: dict[str, tuple[str, int]] = {}
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._switching = threading.Lock()

    def switch(self) -> None:
        """Put through the next server from now on (once the put in flight is answered)."""
        with self._switching:
            self.through.pop()

    def put_count(self) -> int:
        with self._lock:
            return len(self.placed)

    def run(self) -> None:
        try:
            while (start := self.put_count() + 1) <= RECORDS:
                ids = [f"{i:06d}" for i in range(start, min(start + PUT_CHUNK, RECORDS + 1))]
                with self._switching:
                    response = self.through[-1].put_records(
                        StreamName=self.stream,
                        Records=[{"Data": ident.encode(), "PartitionKey": ident} for ident in ids],
                    )
                assert response["FailedRecordCount"] == 0, response["Records"]
                with self._lock:
                    for ident, entry in zip(ids, response["Records"], strict=True):
                        self.placed[ident] = (entry["ShardId"], int(entry["SequenceNumber"]))
                time.sleep(PUT_PAUSE_S)
        except BaseException as exc:  # reported by the test
            self.error = exc


def map_stream_to_sink(server: SquallServer, stream: str, sink_port: int) -> str:
    """A stream of SHARDS shards and a ``<stream>-sink`` function reporting to the receiver on ``sink_port``,
    mapped from TRIM_HORIZON (all through ``server``): the mapping's UUID."""
    kinesis, lam = server.client("kinesis"), server.client("lambda")
    kinesis.create_stream(StreamName=stream, ShardCount=SHARDS)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.1})
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    create_function(lam, f"{stream}-sink", CRASH_SINK, sink_port)
    return str(
        lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName=f"{stream}-sink", StartingPosition="TRIM_HORIZON", BatchSize=BATCH_SIZE
        )["UUID"]
    )


@pytest.mark.timeout(180)
def test_a_killed_servers_shards_are_taken_over_and_nothing_is_lost(
    servers: list[SquallServer], schema: str, capsys: Any
) -> None:
    def say(line: str) -> None:
        with capsys.disabled():
            print(f"\n[failover] {line}", end="", flush=True)

    a, b = servers
    pid_a, pid_b = str(a.proc.pid if a.proc else ""), str(b.proc.pid if b.proc else "")
    sink = Sink()
    receiver = serve(sink)
    try:
        kinesis_a = a.client("kinesis")
        mapping = map_stream_to_sink(a, STREAM, receiver.server_port)
        # B runs the mapping A created: the servers split the shards between them.
        assert b.client("lambda").get_event_source_mapping(UUID=mapping)["FunctionArn"].endswith("failover-sink")
        leases = Leases(schema, mapping)
        assert leases.members() == {pid_a, pid_b}
        wait_until(lambda: len(leases.shards()) == SHARDS, 30, "every shard had a server")
        split = Counter(leases.shards().values())
        assert split == {pid_a: 2, pid_b: 2}, split
        shards_of_a = sorted(shard for shard, pid in leases.shards().items() if pid == pid_a)
        all_shards = sorted(leases.shards())

        producer = Producer([b.client("kinesis"), kinesis_a])
        producer.start()
        # Kill A mid-run, once it delivered from both its shards.
        wait_until(
            lambda: sink.distinct() >= KILL_AFTER and {s for _, s, _, _ in sink.seen()} >= set(shards_of_a),
            60,
            "A delivered from its shards",
        )
        producer.switch()  # puts go on through B (behind a load balancer, the next put would go there)
        assert a.stop(signal.SIGKILL) == -signal.SIGKILL
        killed = time.monotonic()
        sink.next_run()
        seen_at_kill, put_at_kill = sink.distinct(), producer.put_count()
        assert put_at_kill < RECORDS, "every record was put before the kill: producers must run throughout"
        wait_until(lambda: leases.shards() == dict.fromkeys(all_shards, pid_b), LEASE_TTL_S + 30, "B held every shard")
        takeover_s = time.monotonic() - killed
        producer.join(120)
        assert producer.error is None, producer.error
        assert not producer.is_alive()
        placed = producer.placed
        wait_until(lambda: sink.distinct() >= len(placed), 60, "every record was seen")
        time.sleep(1)  # room for a late redelivery to show in the counts
        result = analyse(sink.seen(), placed)
        state = b.client("lambda").get_event_source_mapping(UUID=mapping)
    finally:
        receiver.shutdown()
        receiver.server_close()

    after_kill = Counter(shard for run, shard, _, _ in sink.seen() if run == 1)
    say(
        f"{len(placed)} records; A held {shards_of_a}; killed after {put_at_kill} put, {seen_at_kill} seen; B held all "
        f"{SHARDS} shards {takeover_s:.1f} s later (lease {LEASE_TTL_S:.0f} s); deliveries after the kill "
        f"by shard {dict(sorted(after_kill.items()))}; lost {len(result['lost'])}, out of order "
        f"{len(result['out_of_order'])}, duplicate deliveries {sum(result['duplicates'].values())}\n"
    )
    assert len(placed) == RECORDS
    assert result["lost"] == [], f"{len(result['lost'])} records lost, e.g. {result['lost'][:20]}"
    assert result["misplaced"] == [], result["misplaced"][:20]
    assert result["out_of_order"] == [], f"first deliveries out of order: {result['out_of_order'][:20]}"
    assert takeover_s < LEASE_TTL_S
    assert all(after_kill[shard] > 0 for shard in shards_of_a)  # B delivered A's shards after the kill
    # Only what A had in hand (its shards' batches in flight) may come twice: nothing on B's own shards.
    for (run, shard), count in result["duplicates"].items():
        assert shard in shards_of_a and count <= BATCH_SIZE, (run, shard, count)
    assert state["State"] == "Enabled" and state["LastProcessingResult"] == "OK", state


@pytest.mark.timeout(180)
def test_a_ray_node_lost_mid_run_loses_no_record(
    servers: list[SquallServer], nodes: Any, schema: str, capsys: Any
) -> None:
    b = servers[1]  # A may have been killed by the test before
    sink = Sink()
    receiver = serve(sink)
    try:
        map_stream_to_sink(b, "node-loss", receiver.server_port)
        producer = Producer([b.client("kinesis")], "node-loss")
        producer.start()
        # Lose a worker node while it runs the function: once it holds a sandbox of it, mid-run.
        running: list[Any] = []

        def worker_runs_it() -> bool:
            statuses = agent_statuses(schema)
            running[:] = [
                worker
                for worker in nodes.worker_nodes
                if (status := statuses.get(f"agent-{schema}-{worker.node_id[:12]}")) is not None
                and (status.busy > 0 or any(key.startswith("node-loss-sink:") for key in status.idle))
            ]
            return bool(running)

        wait_until(lambda: sink.distinct() >= KILL_AFTER and worker_runs_it(), 60, "a worker node ran the function")
        nodes.remove_node(running[0], allow_graceful=False)
        lost_at, put_at_loss = sink.distinct(), producer.put_count()
        assert put_at_loss < RECORDS, "every record was put before the node was lost"
        sink.next_run()
        producer.join(120)
        assert producer.error is None, producer.error
        wait_until(lambda: sink.distinct() >= len(producer.placed), 90, "every record was seen")
        result = analyse(sink.seen(), producer.placed)
    finally:
        receiver.shutdown()
        receiver.server_close()
    with capsys.disabled():
        print(
            f"\n[node loss] {len(producer.placed)} records; worker node removed after {put_at_loss} put, {lost_at} "
            f"seen; lost {len(result['lost'])}, out of order {len(result['out_of_order'])}, duplicate deliveries "
            f"{sum(result['duplicates'].values())}",
            flush=True,
        )
    assert result["lost"] == [], f"{len(result['lost'])} records lost, e.g. {result['lost'][:20]}"
    assert result["misplaced"] == [], result["misplaced"][:20]
    assert result["out_of_order"] == [], f"first deliveries out of order: {result['out_of_order'][:20]}"


SLEEPER = "import time\n\ndef handler(event, context):\n    time.sleep(1)\n    return {}\n"


@pytest.mark.timeout(120)
def test_a_node_that_joins_takes_new_work(servers: list[SquallServer], nodes: Any, schema: str) -> None:
    b = servers[1]
    joined = nodes.add_node(**NODE)
    agent = f"agent-{schema}-{joined.node_id[:12]}"
    lam = b.client("lambda")

    rounds = itertools.count(1)

    def new_function_runs_there() -> bool:
        # A new function each round, called 6 times at once (more calls than nodes): its cold starts go
        # where the most memory is free, so the newcomer gets some once the server has taken it in.
        name = f"joiner-{next(rounds)}"
        create(lam, name, SLEEPER, Timeout=30)
        codes: list[int] = []
        calls = [
            threading.Thread(target=lambda: codes.append(lam.invoke(FunctionName=name)["StatusCode"])) for _ in range(6)
        ]
        for call in calls:
            call.start()
        for call in calls:
            call.join(60)
        assert codes == [200] * 6
        status = agent_statuses(schema).get(agent)
        return status is not None and any(key.startswith(f"{name}:") for key in status.idle)

    wait_until(new_function_runs_there, 60, "the node that joined ran new work")


QUEUE_SINK = """
import json, os, urllib.request

def handler(event, context):
    bodies = [r["body"] for r in event["Records"]]
    report = {"shard": "queue", "records": [[body, int(body)] for body in bodies]}
    request = urllib.request.Request(os.environ["SINK_URL"], data=json.dumps(report).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return {}
"""


@pytest.mark.timeout(180)
def test_a_queue_is_shared_and_its_mapping_delivered_by_one_server_at_a_time(
    servers: list[SquallServer], cluster: str, schema: str, tmp_path: Path
) -> None:
    b = servers[1]  # A may have been killed by the test before
    c = SquallServer(tmp_path / "c", tier_args(cluster, schema))
    c.data_dir.mkdir()
    shutil.copy(b.data_dir / "credentials", c.data_dir / "credentials")
    c.start()
    sink = Sink()
    receiver = serve(sink)
    leases = PostgresLeaseStore(postgres_dsn(), schema=schema)
    try:
        sqs_b, sqs_c, lam = b.client("sqs"), c.client("sqs"), b.client("lambda")
        url = sqs_b.create_queue(QueueName="shared")["QueueUrl"]
        queue_arn = sqs_c.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        # A long poll through C wakes when B sends (PostgreSQL's NOTIFY), long before its 10 s.
        polling = sqs_c.receive_message
        began = time.monotonic()
        with ThreadPoolExecutor(1) as pool:
            poll = pool.submit(polling, QueueUrl=url, WaitTimeSeconds=10, VisibilityTimeout=0)
            time.sleep(0.5)
            sqs_b.send_message(QueueUrl=url, MessageBody="000000")
            [woken] = poll.result(timeout=15)["Messages"]
        woke_after = time.monotonic() - began - 0.5
        assert woken["Body"] == "000000" and woke_after < 2.0, woke_after
        sqs_c.delete_message(QueueUrl=url, ReceiptHandle=woken["ReceiptHandle"])  # a handle of C's, through C

        create_function(lam, "shared-sink", QUEUE_SINK, receiver.server_port)
        mapping = c.client("lambda").create_event_source_mapping(
            EventSourceArn=queue_arn, FunctionName="shared-sink", BatchSize=10
        )["UUID"]
        bodies = [f"{i:06d}" for i in range(1, 401)]
        for n, start in enumerate(range(0, 300, 10)):  # sent through both servers
            (sqs_b, sqs_c)[n % 2].send_message_batch(
                QueueUrl=url, Entries=[{"Id": body, "MessageBody": body} for body in bodies[start : start + 10]]
            )
        wait_until(lambda: sink.distinct() >= 300, 60, "every message was delivered")
        # One server polls the mapping (A too may hold it, when the test that kills it did not run).
        live = {str(server.proc.pid) for server in [*servers, c] if server.proc and server.proc.poll() is None}
        pid_c = str(c.proc.pid if c.proc else "")
        assert holder_pid(leases, mapping) in live

        # C stops: if it held the mapping, it hands it over at once; B delivers the rest either way.
        assert c.stop() == 0
        for start in range(300, 400, 10):
            sqs_b.send_message_batch(
                QueueUrl=url, Entries=[{"Id": body, "MessageBody": body} for body in bodies[start : start + 10]]
            )
        wait_until(lambda: sink.distinct() >= len(bodies), 60, "every message was delivered after C stopped")
        time.sleep(2)  # room for a second delivery to show
        delivered = Counter(ident for _, _, ident, _ in sink.seen())
        assert holder_pid(leases, mapping) in live - {pid_c}
    finally:
        receiver.shutdown()
        receiver.server_close()
        leases.close()
        if c.proc is not None and c.proc.poll() is None:
            c.stop()
    assert delivered == dict.fromkeys(bodies, 1)  # each message once, whichever server sent or polled
    assert "Traceback" not in c.log_path.read_text()


def holder_pid(leases: PostgresLeaseStore, mapping: str) -> str:
    """The pid of the server holding a queue mapping's lease."""
    return leases.holders()[lease_name(mapping)].split("/")[1]


def create_function(lam: Any, name: str, source: str, sink_port: int) -> None:
    """A function of ``source`` whose ``SINK_URL`` is the receiver on ``sink_port``."""
    variables = {"SINK_URL": f"http://127.0.0.1:{sink_port}/", "WORK_MS": "20"}
    create(lam, name, source, Timeout=30, Environment={"Variables": variables})
