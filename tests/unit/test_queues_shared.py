"""Two queue services on one store, as two servers on one PostgreSQL schema (or one data directory)
have: a message one receives is hidden from the other; no message is received twice while hidden;
receipt handles work on either; FIFO groups stay in order and locked across both; deduplication ids
and dead-letter redrive hold across both; and a long poll on one wakes when the other sends."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from squall.cli.main import main
from squall.services.queues.api import Request, SqsApi
from squall.services.queues.errors import InvalidParameterValue
from squall.services.queues.models import Outgoing, Received
from squall.services.queues.service import QueueService
from tests.contract.postgres import dsn as postgres_dsn
from tests.threads import run_together
from tests.unit.queue_stores import ACCOUNT, QueueServices

THREADS_PER_SERVER = 3


def message(body: str, group: str | None = None, dedup: str | None = None) -> Outgoing:
    return Outgoing(body=body, attributes={}, system_attributes={}, delay=0, group_id=group, dedup_id=dedup)


def test_a_message_received_through_one_server_is_hidden_from_the_other_until_its_timeout(
    queue_services: QueueServices,
) -> None:
    a, b = queue_services.open(), queue_services.open()
    a.create_queue("q", False, {}, {})
    b.send("q", [message("hello")], ACCOUNT)
    (first,) = a.receive("q", 10, 1)
    assert b.receive("q", 10, None) == []
    assert b.counts("q").in_flight == 1
    time.sleep(1.1)
    (again,) = b.receive("q", 10, 30)
    assert (again.message_id, again.receive_count) == (first.message_id, 2)


def test_receivers_on_both_servers_never_get_one_message_twice_and_delete_through_the_other(
    queue_services: QueueServices,
) -> None:
    a, b = queue_services.open(), queue_services.open()
    a.create_queue("q", False, {}, {})
    for start in range(0, 600, 10):
        (a if start % 20 else b).send("q", [message(str(i)) for i in range(start, start + 10)], ACCOUNT)
    got: dict[str, list[Received]] = {"a": [], "b": []}
    guard = threading.Lock()

    def drain(service: QueueService, into: list[Received]) -> Callable[[], None]:
        def loop() -> None:
            while batch := service.receive("q", 10, 300):
                with guard:
                    into.extend(batch)

        return loop

    run_together([drain(s, got[n]) for n, s in (("a", a), ("b", b)) for _ in range(THREADS_PER_SERVER)])
    bodies = [m.body for m in got["a"] + got["b"]]
    assert sorted(bodies, key=int) == [str(i) for i in range(600)]  # each once, none lost
    if queue_services.backend == "postgres":
        # Receives on PostgreSQL run side by side (one SQLite writer's busy wait may starve the other).
        assert got["a"] and got["b"]
    assert a.counts("q").in_flight == 600
    # Each server deletes what the other received, by the other's receipt handles.
    assert b.delete("q", [m.receipt_handle for m in got["a"]]) == [None] * len(got["a"])
    assert a.delete("q", [m.receipt_handle for m in got["b"]]) == [None] * len(got["b"])
    counts = b.counts("q")
    assert (counts.visible, counts.in_flight, counts.delayed) == (0, 0, 0)


def test_visibility_changes_by_receipt_handle_work_on_either_server(queue_services: QueueServices) -> None:
    a, b = queue_services.open(), queue_services.open()
    a.create_queue("q", False, {}, {})
    a.create_queue("f.fifo", True, {}, {})
    a.send("q", [message("m")], ACCOUNT)
    (held,) = a.receive("q", 1, 300)
    assert b.change_visibility("q", [(held.receipt_handle, 0)]) == [None]  # visible again at once
    (again,) = a.receive("q", 1, 300)
    assert again.receive_count == 2
    b.send("f.fifo", [message("x", "g", "d")], ACCOUNT)
    (fifo,) = b.receive("f.fifo", 1, 300)
    assert a.change_visibility("f.fifo", [(fifo.receipt_handle, 0)]) == [None]
    (fresh,) = a.receive("f.fifo", 1, 300)
    # A FIFO queue takes only the latest receive's handle, whichever server issued the older one.
    (outcome,) = b.delete("f.fifo", [fifo.receipt_handle])
    assert isinstance(outcome, InvalidParameterValue) and "expired" in outcome.message
    assert b.delete("f.fifo", [fresh.receipt_handle]) == [None]
    assert a.counts("f.fifo").in_flight == 0


def test_fifo_groups_stay_in_order_and_locked_while_in_flight_across_servers(queue_services: QueueServices) -> None:
    a, b = queue_services.open(), queue_services.open()
    a.create_queue("f.fifo", True, {}, {})
    groups, per_group = 4, 30
    for n in range(per_group):
        sender = a if n % 2 else b
        sender.send("f.fifo", [message(f"{g}-{n}", f"g{g}", f"{g}-{n}") for g in range(groups)], ACCOUNT)
    (head,) = a.receive("f.fifo", 1, 300)
    assert head.body == "0-0"
    # While g0's first message is in flight through a, b gets nothing of g0.
    others = b.receive("f.fifo", 10, 0)
    assert others and all(m.group_id != "g0" for m in others)
    assert a.delete("f.fifo", [head.receipt_handle]) == [None]

    in_flight: set[str] = set()
    order: dict[str, list[int]] = defaultdict(list)
    guard = threading.Lock()

    def consume(service: QueueService) -> Callable[[], None]:
        def loop() -> None:
            idle_since = time.monotonic()
            while time.monotonic() - idle_since < 1.0:
                batch = service.receive("f.fifo", 3, 30)
                if not batch:
                    time.sleep(0.01)
                    continue
                idle_since = time.monotonic()
                with guard:
                    for group in {m.group_id or "" for m in batch}:
                        assert group not in in_flight, f"{group} handed out while a message of it was in flight"
                        in_flight.add(group)
                    for m in batch:
                        order[m.group_id or ""].append(int(m.body.split("-")[1]))
                # Out of the set before the delete commits: until then the store still holds the group.
                with guard:
                    in_flight.difference_update(m.group_id or "" for m in batch)
                assert service.delete("f.fifo", [m.receipt_handle for m in batch]) == [None] * len(batch)

        return loop

    run_together([consume(s) for s in (a, b) for _ in range(THREADS_PER_SERVER)])
    expected = {f"g{g}": list(range(per_group)) for g in range(groups)}
    expected["g0"] = list(range(1, per_group))  # g0-0 was deleted above; the probe's came back (visibility 0)
    assert dict(order) == expected  # every message once, in order per group


def test_deduplication_ids_hold_across_servers(queue_services: QueueServices) -> None:
    a, b = queue_services.open(), queue_services.open()
    a.create_queue("f.fifo", True, {}, {})
    rounds, senders = 10, 2 * THREADS_PER_SERVER * 2
    sent: dict[int, set[str]] = defaultdict(set)
    guard = threading.Lock()
    start = threading.Barrier(senders)

    def send(service: QueueService) -> Callable[[], None]:
        def each_round() -> None:
            start.wait()
            for n in range(rounds):
                (result,) = service.send("f.fifo", [message(f"body {n}", "g", f"d-{n}")], ACCOUNT)
                with guard:
                    sent[n].add(result.message_id)

        return each_round

    run_together([send(s) for s in (a, b) for _ in range(senders // 2)])
    assert all(len(ids) == 1 for ids in sent.values())  # every sender was told the one message's id
    assert b.counts("f.fifo").visible == rounds


def test_dead_letter_redrive_works_across_servers(queue_services: QueueServices) -> None:
    a, b = queue_services.open(), queue_services.open()
    dlq = a.create_queue("dead", False, {}, {})
    policy = json.dumps({"deadLetterTargetArn": a.arn(dlq.name), "maxReceiveCount": 1})
    b.create_queue("work", False, {"RedrivePolicy": policy}, {})
    a.send("work", [message("poison")], ACCOUNT)
    (first,) = a.receive("work", 1, 0)
    assert b.receive("work", 1, 0) == []  # received once already: b moves it to the dead-letter queue
    (dead,) = a.receive("dead", 1, 30)
    assert (dead.message_id, dead.dlq_source) == (first.message_id, b.arn("work"))
    assert b.dead_letter_sources("dead") == ["work"]


def test_a_long_poll_on_one_server_wakes_when_the_other_sends(queue_services: QueueServices) -> None:
    if queue_services.backend == "sqlite":
        pytest.skip("an embedded store has one server: a send wakes only its own long polls")
    a, b = queue_services.open(), queue_services.open()
    a.create_queue("q", False, {}, {})
    heard = threading.Event()
    api = SqsApi(b)
    b.add_listener(lambda name: heard.set())
    deadline = time.monotonic() + 30
    # The listening connection may start after the first send: send until b hears one.
    while not heard.wait(0.05):
        assert time.monotonic() < deadline, "b never heard of a's sends"
        a.send("q", [message("warm-up")], ACCOUNT)
    a.purge("q")
    url = f"http://localhost/{ACCOUNT}/q"

    async def long_poll() -> tuple[float, dict[str, object]]:
        began = time.monotonic()
        poll = asyncio.ensure_future(
            api.receive_message(Request({"QueueUrl": url, "WaitTimeSeconds": 10}, "localhost"))
        )
        await asyncio.sleep(0.3)
        assert not poll.done()
        await asyncio.to_thread(a.send, "q", [message("wake")], ACCOUNT)
        answer = await poll
        return time.monotonic() - began, answer

    took, answer = asyncio.run(long_poll())
    assert [m["Body"] for m in answer["Messages"]] == ["wake"]  # type: ignore[attr-defined]
    assert took < 2.0, f"the long poll on b took {took:.2f} s to see a's send"


def test_squall_queues_reads_the_deployments_postgresql(
    queue_services: QueueServices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if queue_services.storage.schema is None:
        pytest.skip("the embedded tier's `squall queues` reads the data dir (tests/e2e/test_messaging_cli.py)")
    server = queue_services.open()
    server.create_queue("shared", False, {}, {})
    server.send("shared", [message("m")], ACCOUNT)
    monkeypatch.setenv("SQUALL_TIER", "ray")
    monkeypatch.setenv("SQUALL_POSTGRES_DSN", postgres_dsn())
    monkeypatch.setenv("SQUALL_POSTGRES_SCHEMA", queue_services.storage.schema)
    result = CliRunner().invoke(main, ["queues", "--json", "--data-dir", str(tmp_path / "empty")])
    assert result.exit_code == 0, result.output
    [listed] = json.loads(result.output)
    assert (listed["name"], listed["visible"]) == ("shared", 1)
