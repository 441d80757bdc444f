"""The queue service on a real SQLite file and on PostgreSQL: visibility, FIFO groups, deduplication,
redrive, restarts."""

from __future__ import annotations

import json
import threading
import time

import pytest

from squall.services.queues.errors import (
    InvalidParameterValue,
    PurgeQueueInProgress,
    QueueDoesNotExist,
    QueueNameExists,
    ReceiptHandleIsInvalid,
)
from squall.services.queues.models import Outgoing
from squall.services.queues.service import QueueService
from tests.unit.queue_stores import QueueServices

ACCOUNT = "000000000000"


@pytest.fixture
def service(queue_services: QueueServices) -> QueueService:
    return queue_services.open()


def message(body: str, group: str | None = None, dedup: str | None = None, delay: int = 0) -> Outgoing:
    return Outgoing(body=body, attributes={}, system_attributes={}, delay=delay, group_id=group, dedup_id=dedup)


def test_create_is_idempotent_only_for_matching_attributes(service: QueueService) -> None:
    first = service.create_queue("q", False, {"DelaySeconds": "5"}, {})
    assert service.create_queue("q", False, {"DelaySeconds": "5"}, {}).id == first.id
    with pytest.raises(QueueNameExists, match="different value for attribute DelaySeconds"):
        service.create_queue("q", False, {"DelaySeconds": "6"}, {})
    service.delete_queue("q")
    with pytest.raises(QueueDoesNotExist):
        service.queue("q")


def test_visibility_and_receipt_handles(service: QueueService) -> None:
    service.create_queue("q", False, {}, {})
    service.send("q", [message("a")], ACCOUNT)
    (first,) = service.receive("q", 10, 0)
    assert first.receive_count == 1
    (second,) = service.receive("q", 10, 30)
    assert second.receive_count == 2 and second.receipt_handle != first.receipt_handle
    assert service.receive("q", 10, None) == []
    assert service.counts("q").in_flight == 1
    # A standard queue accepts the older handle too; deleting twice succeeds.
    assert service.delete("q", [first.receipt_handle, second.receipt_handle]) == [None, None]
    assert service.counts("q").in_flight == 0
    (outcome,) = service.delete("q", ["bogus"])
    assert isinstance(outcome, ReceiptHandleIsInvalid)


def test_fifo_order_groups_and_deduplication(service: QueueService) -> None:
    service.create_queue("f.fifo", True, {}, {})
    sent = service.send(
        "f.fifo",
        [message("a1", "a", "1"), message("b1", "b", "2"), message("a2", "a", "3"), message("dup", "a", "1")],
        ACCOUNT,
    )
    assert sent[3].message_id == sent[0].message_id  # a duplicate is acknowledged, not stored
    numbers = [int(s.sequence_number or 0) for s in sent[:3]]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    batch = service.receive("f.fifo", 1, 30)
    assert [m.body for m in batch] == ["a1"]
    # Group "a" has a message in flight: only "b" may be handed out.
    assert [m.body for m in service.receive("f.fifo", 10, 30)] == ["b1"]
    assert service.receive("f.fifo", 10, 30) == []
    service.delete("f.fifo", [batch[0].receipt_handle])
    assert [m.body for m in service.receive("f.fifo", 10, 30)] == ["a2"]


def test_fifo_expired_receipt_handle(service: QueueService) -> None:
    service.create_queue("f.fifo", True, {}, {})
    service.send("f.fifo", [message("a", "g", "1")], ACCOUNT)
    (got,) = service.receive("f.fifo", 1, 0)
    (outcome,) = service.delete("f.fifo", [got.receipt_handle])
    assert isinstance(outcome, InvalidParameterValue) and "The receipt handle has expired." in outcome.message


def test_redrive_to_dead_letter_queue(service: QueueService) -> None:
    service.create_queue("dlq", False, {}, {})
    policy = json.dumps({"deadLetterTargetArn": service.arn("dlq"), "maxReceiveCount": 2})
    service.create_queue("src", False, {"RedrivePolicy": policy}, {})
    service.send("src", [message("poison")], ACCOUNT)
    assert len(service.receive("src", 1, 0)) == 1
    assert len(service.receive("src", 1, 0)) == 1
    assert service.receive("src", 1, 0) == []  # the third receive moves it instead
    (moved,) = service.receive("dlq", 1, 30)
    assert moved.body == "poison" and moved.dlq_source == service.arn("src")
    assert service.dead_letter_sources("dlq") == ["src"]


def test_delay_and_purge(service: QueueService) -> None:
    service.create_queue("q", False, {}, {})
    service.send("q", [message("later", delay=60), message("now")], ACCOUNT)
    counts = service.counts("q")
    assert (counts.visible, counts.delayed, counts.in_flight) == (1, 1, 0)
    assert service.next_visible("q") is not None
    service.purge("q")
    assert service.counts("q").visible == 0
    with pytest.raises(PurgeQueueInProgress, match="Only one PurgeQueue operation on q is allowed every 60"):
        service.purge("q")


def test_state_survives_reopening(queue_services: QueueServices) -> None:
    first = queue_services.open()
    first.create_queue("q", False, {}, {})
    first.send("q", [message("held"), message("free")], ACCOUNT)
    (held,) = first.receive("q", 1, 300)
    first.close()
    second = queue_services.open()
    counts = second.counts("q")
    assert (counts.visible, counts.in_flight) == (1, 1)
    assert [m.body for m in second.receive("q", 10, 30)] == ["free"]
    assert second.delete("q", [held.receipt_handle]) == [None]


@pytest.mark.parametrize("receive_first", [True, False], ids=["receive-then-count", "count-alone"])
def test_messages_older_than_the_retention_period_are_dropped(
    service: QueueService, monkeypatch: pytest.MonkeyPatch, receive_first: bool
) -> None:
    """A receive drops them, and so does a count by itself (GetQueueAttributes on an idle queue)."""
    service.create_queue("q", False, {"MessageRetentionPeriod": "60"}, {})
    service.send("q", [message("old")], ACCOUNT)
    later = time.time() + 61
    monkeypatch.setattr("squall.services.queues.service.time.time", lambda: later)
    if receive_first:
        assert service.receive("q", 10, None) == []
    assert service.counts("q").visible == 0
    monkeypatch.undo()
    assert service.counts("q").visible == 0  # gone for good, not only hidden at that moment


def test_counting_does_not_wait_for_a_writer(queue_services: QueueServices, service: QueueService) -> None:
    """GetQueueAttributes is polled while consumers receive and delete: it must not queue up
    behind their write transactions (nor hold them up)."""
    if queue_services.backend != "sqlite":
        pytest.skip("PostgreSQL writers never block a count")
    service.create_queue("q", False, {}, {})
    service.send("q", [message("a"), message("b")], ACCOUNT)
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with service.db.write():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    assert holding.wait(10)
    try:
        counts = service.counts("q")
        still_held = not release.is_set() and thread.is_alive()
    finally:
        release.set()
        thread.join()
    assert still_held
    assert counts.visible == 2


def test_concurrent_receivers_never_share_a_message(service: QueueService) -> None:
    service.create_queue("q", False, {}, {})
    for start in range(0, 200, 10):
        service.send("q", [message(str(i)) for i in range(start, start + 10)], ACCOUNT)
    seen: list[str] = []
    guard = threading.Lock()

    def drain() -> None:
        while batch := service.receive("q", 10, 300):
            with guard:
                seen.extend(m.body for m in batch)

    workers = [threading.Thread(target=drain) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(seen, key=int) == [str(i) for i in range(200)]


def test_a_byte_budget_stops_a_receive_before_it_is_exceeded(service: QueueService) -> None:
    service.create_queue("budget", False, {}, {})
    service.send("budget", [message("x" * 1000) for _ in range(10)], "me")
    first = service.receive("budget", 10, None, max_bytes=3500)
    assert len(first) == 3  # a fourth body would pass 3,500 bytes: it stays in the queue, never received
    assert [m.receive_count for m in service.receive("budget", 10, None)] == [1] * 7
    service.create_queue("big", False, {}, {})
    service.send("big", [message("y" * 5000)], "me")
    assert len(service.receive("big", 10, None, max_bytes=100)) == 1  # the first message always goes
