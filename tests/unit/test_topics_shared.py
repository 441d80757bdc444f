"""Two topic services and their deliverers on one store, as two servers of a deployment have on one
PostgreSQL schema (or one data directory): what one creates the other sees, every delivery is made
once whichever server publishes and whichever delivers, FIFO topics keep their order and their
deduplication across servers, a dead server's claims lapse to the other, and an idle deliverer wakes
on the other server's publish. Subscribers are real: a queue service and an HTTP endpoint on loopback.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from squall.services.queues.service import QueueService
from squall.services.topics import deliverer as deliverer_module
from squall.services.topics.deliverer import Deliverer
from squall.services.topics.messages import Message, message_attributes
from squall.services.topics.models import Draft
from squall.services.topics.service import TopicService
from tests.http_receiver import Receiver
from tests.unit.topic_stores import ACCOUNT, REGION, TopicServices

#: Every attempt immediate: retries a test can watch.
FAST_RETRIES = json.dumps(
    {"healthyRetryPolicy": {"numRetries": 3, "numNoDelayRetries": 3, "minDelayTarget": 1, "maxDelayTarget": 1}}
)


async def _no_functions(name: str, qualifier: str | None, payload: bytes) -> None:
    raise AssertionError(f"no function subscriptions in these tests, yet {name} was invoked")


@asynccontextmanager
async def deliverers(queues: QueueService, *services: TopicService) -> AsyncIterator[list[Deliverer]]:
    """One running deliverer per service, as each server runs its own."""
    running = [Deliverer(service, _no_functions, queues) for service in services]
    for deliverer in running:
        await deliverer.start()
    try:
        yield running
    finally:
        for deliverer in running:
            await deliverer.stop()


async def until(done: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(done):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def drain(queues: QueueService, name: str) -> list[dict[str, Any]]:
    """Every message of the queue, in the order it hands them out, as SNS documents."""
    documents = []
    while batch := queues.receive(name, 10, 60):
        documents += [json.loads(message.body) for message in batch]
        queues.delete(name, [message.receipt_handle for message in batch])
    return documents


def notifications(receiver: Receiver) -> list[dict[str, Any]]:
    """The notification documents posted to the endpoint and not yet taken with ``next``, failed
    attempts included."""
    return [r.json() for r in list(receiver.requests.queue) if r.json()["Type"] == "Notification"]


@pytest.fixture
def queues(tmp_path: Path) -> Iterator[QueueService]:
    """The queues both servers' SQS subscriptions deliver to, through the queue service's own methods."""
    service = QueueService(tmp_path / "queues.db", ACCOUNT, REGION)
    yield service
    service.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def colored(color: str) -> Draft:
    attributes = message_attributes({"color": {"DataType": "String", "StringValue": color}})
    return Draft(message=color, subject=None, attributes=attributes)


def plain(text: str) -> Draft:
    return Draft(message=text, subject=None, attributes={})


def test_topics_and_subscriptions_made_through_one_server_are_seen_by_the_other(
    topic_services: TopicServices,
) -> None:
    a, b = topic_services.open(), topic_services.open()
    arn = a.create_topic("orders", {"DisplayName": "Orders"}, {"team": "red"})
    assert b.list_topics(None) == ([arn], None)
    assert b.create_topic("orders", {}, {}) == arn  # idempotent through the other server
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:inbox"
    sub = b.subscribe(arn, "sqs", queue_arn, {"FilterPolicy": json.dumps({"color": ["red"]})})
    assert a.subscribe(arn, "sqs", queue_arn, {}).arn == sub.arn  # one subscription per endpoint
    attributes = a.topic_attributes(arn)
    assert attributes["DisplayName"] == "Orders" and attributes["SubscriptionsConfirmed"] == "1"
    assert [s.arn for s in a.list_subscriptions(arn, None)[0]] == [sub.arn]
    assert json.loads(a.subscription_attributes(sub.arn)["FilterPolicy"]) == {"color": ["red"]}

    a.set_subscription_attribute(sub.arn, "FilterPolicy", json.dumps({"color": ["blue"]}))
    b.set_topic_attribute(arn, "DisplayName", "Orders!")
    b.change_tags(arn, {"tier": "gold"}, ["team"])
    assert a.topic_attributes(arn)["DisplayName"] == "Orders!" and a.tags(arn) == {"tier": "gold"}

    b.publish(arn, [colored("red"), colored("blue")])
    (job,) = a.due(time.time(), 10, set())
    assert job.message is not None and job.message.message == "blue"  # the policy b's filter now holds

    a.unsubscribe(sub.arn)
    assert b.topic_attributes(arn)["SubscriptionsDeleted"] == "1" and b.pending_deliveries() == 0
    b.delete_topic(arn)
    assert a.list_topics(None) == ([], None)


def test_every_message_is_delivered_once_whichever_server_publishes_and_delivers(
    topic_services: TopicServices, queues: QueueService, receiver: Receiver
) -> None:
    a = topic_services.open("http://server-a.invalid")
    b = topic_services.open("http://server-b.invalid")
    queues.create_queue("inbox", False, {}, {})
    arn = a.create_topic("events", {}, {})
    a.subscribe(arn, "sqs", queues.arn("inbox"), {})
    pending = b.subscribe(arn, "http", receiver.url, {"DeliveryPolicy": FAST_RETRIES})
    assert not pending.confirmed
    published: list[str] = []
    lock = threading.Lock()

    def publisher(service: TopicService, tag: str) -> None:
        for call in range(10):
            results = service.publish(arn, [plain(f"{tag}-{call}-{i}") for i in range(5)])
            with lock:
                published.extend(m.message_id for m in results if isinstance(m, Message))

    async def scenario() -> None:
        async with deliverers(queues, a, b):
            # The confirmation goes out through whichever deliverer claims it; b's subscriber confirms
            # through a.
            confirmation = (await asyncio.to_thread(receiver.next)).json()
            assert confirmation["Type"] == "SubscriptionConfirmation"
            assert a.confirm(arn, confirmation["Token"]) == pending.arn
            assert b.subscription(pending.arn).confirmed
            receiver.fail = 3  # three attempts fail (HTTP 500): retried at once by whichever claims them
            await asyncio.gather(
                asyncio.to_thread(publisher, a, "a"),
                asyncio.to_thread(publisher, b, "b"),
            )
            await until(lambda: a.pending_deliveries() == 0, "every delivery")

    asyncio.run(scenario())
    assert len(published) == 100
    in_queue = drain(queues, "inbox")
    assert sorted(d["MessageId"] for d in in_queue) == sorted(published)  # each once, none lost
    posted = notifications(receiver)
    answered = Counter(d["MessageId"] for d in posted)
    assert receiver.count == 1 + 100 + 3  # the confirmation, each message once, the 3 failed attempts
    # 103 posts of 100 messages, each at least once: each was answered with 200 exactly once.
    assert set(answered) == set(published) and sum(answered.values()) == 103
    by_server = Counter(d["UnsubscribeURL"].split("/?")[0] for d in in_queue + posted)
    print(f"deliveries by server: {dict(by_server)}")


def test_a_fifo_topic_keeps_its_order_and_deduplication_across_servers(
    topic_services: TopicServices, queues: QueueService
) -> None:
    a, b = topic_services.open(), topic_services.open()
    queues.create_queue("ordered.fifo", True, {"FifoQueue": "true"}, {})
    arn = a.create_topic("ordered.fifo", {"FifoTopic": "true", "ContentBasedDeduplication": "true"}, {})
    b.subscribe(arn, "sqs", queues.arn("ordered.fifo"), {})
    sequence: dict[str, str] = {}
    lock = threading.Lock()

    def publisher(service: TopicService, tag: str) -> None:
        for n in range(20):
            (message,) = service.publish(arn, [Draft(message=f"{tag}{n}", subject=None, attributes={}, group_id="g")])
            assert isinstance(message, Message) and message.sequence_number is not None
            with lock:
                sequence[message.message_id] = message.sequence_number

    async def scenario() -> None:
        async with deliverers(queues, a, b):
            await asyncio.gather(asyncio.to_thread(publisher, a, "a"), asyncio.to_thread(publisher, b, "b"))
            # The same content again through the other server: the first message's id, not sent again.
            first_a = b.publish(arn, [Draft(message="a0", subject=None, attributes={}, group_id="g")])[0]
            first_b = a.publish(arn, [Draft(message="b0", subject=None, attributes={}, group_id="g")])[0]
            assert isinstance(first_a, Message) and isinstance(first_b, Message)
            assert {first_a.message_id, first_b.message_id} <= set(sequence)
            await until(lambda: a.pending_deliveries() == 0, "every delivery")

    asyncio.run(scenario())
    assert len(set(sequence.values())) == 40  # one number each, from the topic's one counter
    received = drain(queues, "ordered.fifo")
    assert [d["MessageId"] for d in received] == sorted(sequence, key=lambda mid: int(sequence[mid]))
    assert [d["SequenceNumber"] for d in received] == sorted(sequence.values(), key=int)
    for tag in "ab":  # and each publisher's own order
        mine = [d["Message"] for d in received if d["Message"].startswith(tag)]
        assert mine == [f"{tag}{n}" for n in range(20)]


def test_deliveries_a_dead_server_had_claimed_are_taken_over_when_its_claim_lapses(
    topic_services: TopicServices, queues: QueueService
) -> None:
    claim_s = 1.0
    a, b = topic_services.open(claim_s=claim_s), topic_services.open()
    queues.create_queue("inbox", False, {}, {})
    arn = a.create_topic("events", {}, {})
    a.subscribe(arn, "sqs", queues.arn("inbox"), {})
    published = [m.message_id for m in a.publish(arn, [plain(str(i)) for i in range(5)]) if isinstance(m, Message)]
    claimed = a.due(time.time(), 16, set())  # a's deliverer took them, then a died before sending
    claimed_at = time.time()
    assert len(claimed) == 5 and b.due(time.time(), 16, set()) == []  # held while the claim lasts
    a.close()

    async def scenario() -> float:
        async with deliverers(queues, b):
            await until(lambda: b.pending_deliveries() == 0, "the takeover")
            return time.time()

    taken_over = asyncio.run(scenario())
    assert taken_over - claimed_at >= claim_s
    assert sorted(d["MessageId"] for d in drain(queues, "inbox")) == sorted(published)  # each once


def test_claims_given_back_are_taken_at_once(topic_services: TopicServices) -> None:
    a, b = topic_services.open(), topic_services.open()
    arn = a.create_topic("t", {}, {})
    a.subscribe(arn, "sqs", f"arn:aws:sqs:{REGION}:{ACCOUNT}:q", {})
    a.publish(arn, [plain("m")])
    (job,) = a.due(time.time(), 16, set())
    assert b.due(time.time(), 16, set()) == []
    b.release([job.id])  # only the claimer can give a claim back
    assert b.due(time.time(), 16, set()) == []
    a.release([job.id])
    (again,) = b.due(time.time(), 16, set())
    assert again.id == job.id and again.attempts == 0
    a.retry_at(job.id, time.time())  # a lost its claim: its outcome no longer counts
    assert b.due(time.time(), 16, set()) == []


def test_an_idle_deliverer_wakes_on_the_other_servers_publish(
    topic_services: TopicServices, queues: QueueService, monkeypatch: pytest.MonkeyPatch
) -> None:
    if topic_services.backend != "postgres":
        pytest.skip("one server owns an embedded store: there is no other server to hear from")
    monkeypatch.setattr(deliverer_module, "IDLE_BACKSTOP_S", 60.0)  # so only the notification can wake it
    a, b = topic_services.open(), topic_services.open()
    queues.create_queue("inbox", False, {}, {})
    arn = a.create_topic("events", {}, {})
    a.subscribe(arn, "sqs", queues.arn("inbox"), {})

    async def scenario() -> float:
        async with deliverers(queues, b):
            # b's listening connection may start after the first publish: publish until b hears one.
            deadline = time.monotonic() + 30
            while b.pending_deliveries() or not queues.counts("inbox").visible:
                assert time.monotonic() < deadline, "b never heard of a's publishes"
                await asyncio.to_thread(a.publish, arn, [plain("warm-up")])
                await asyncio.sleep(0.2)
            before = queues.counts("inbox").visible
            await asyncio.sleep(0.3)  # b has looked, found nothing, and sleeps
            start = time.monotonic()
            await asyncio.to_thread(a.publish, arn, [plain("wake")])
            await until(lambda: queues.counts("inbox").visible == before + 1, "the delivery")
            return time.monotonic() - start

    latency = asyncio.run(scenario())
    print(f"publish on a to the queue through b: {latency * 1000:.0f} ms")
    assert latency < 5.0
