"""The topic service on a real SQLite file and a real PostgreSQL schema: fan-out with filter
policies, FIFO deduplication, pending deliveries surviving a reopen, and the retry schedule."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from squall.services.topics.attributes import DEFAULT_HTTP_RETRY, MANAGED_RETRY, check_filter_policy, retry_delay
from squall.services.topics.errors import InvalidParameter, NotFound
from squall.services.topics.messages import Message, message_attributes
from squall.services.topics.models import Draft
from squall.services.topics.service import TopicService
from tests.unit.topic_stores import TopicServices

FN = "arn:aws:lambda:us-east-1:000000000000:function:"


@pytest.fixture
def topics(topic_services: TopicServices) -> TopicService:
    return topic_services.open()


def draft(text: str, **attributes: tuple[str, str]) -> Draft:
    raw = {name: {"DataType": kind, "StringValue": value} for name, (kind, value) in attributes.items()}
    return Draft(message=text, subject=None, attributes=message_attributes(raw))


def delivered_to(topics: TopicService) -> dict[str, list[str]]:
    """Endpoint -> the messages of the deliveries due now."""
    seen: dict[str, list[str]] = {}
    for job in topics.due(time.time(), 100, set()):
        assert job.message is not None
        seen.setdefault(job.endpoint, []).append(job.message.message)
    return seen


def test_filter_policies_on_attributes_and_body(topics: TopicService) -> None:
    arn = topics.create_topic("orders", {}, {})
    topics.subscribe(arn, "lambda", FN + "all", {})
    topics.subscribe(arn, "lambda", FN + "red", {"FilterPolicy": json.dumps({"color": ["red"]})})
    topics.subscribe(
        arn,
        "lambda",
        FN + "big",
        {"FilterPolicy": json.dumps({"size": [{"numeric": [">", 10]}], "color": [{"anything-but": "blue"}]})},
    )
    topics.subscribe(
        arn,
        "lambda",
        FN + "body",
        {"FilterPolicy": json.dumps({"order": {"kind": [{"prefix": "exp"}]}}), "FilterPolicyScope": "MessageBody"},
    )
    topics.publish(arn, [draft("m1", color=("String", "red"), size=("Number", "11"))])
    topics.publish(arn, [draft("m2", color=("String", "blue"), size=("Number", "50"))])
    topics.publish(arn, [draft(json.dumps({"order": {"kind": "express"}}), size=("Number", "5"))])
    topics.publish(arn, [draft("m4", tags=("String.Array", '["red", "green"]'), color=("String", "green"))])
    seen = delivered_to(topics)
    assert seen[FN + "all"] == ["m1", "m2", '{"order": {"kind": "express"}}', "m4"]
    assert seen[FN + "red"] == ["m1"]
    assert seen[FN + "big"] == ["m1"]
    assert seen[FN + "body"] == ['{"order": {"kind": "express"}}']


def test_unsupported_or_malformed_filter_policies_are_refused(topics: TopicService) -> None:
    arn = topics.create_topic("t", {}, {})
    for policy in ('{"a": [{"cidr": "10.0.0.0/8"}]}', '{"a": "x"}', "[1]", "{", '{"a": {"b": ["c"]}}'):
        with pytest.raises(InvalidParameter):
            topics.subscribe(arn, "lambda", FN + "f", {"FilterPolicy": policy})
    with pytest.raises(InvalidParameter, match="more than 5 keys"):
        check_filter_policy(json.dumps({f"k{i}": ["v"] for i in range(6)}), "MessageAttributes")


def test_fifo_deduplication_and_sequence_numbers(topics: TopicService) -> None:
    arn = topics.create_topic("jobs.fifo", {"FifoTopic": "true", "ContentBasedDeduplication": "true"}, {})
    topics.subscribe(arn, "sqs", "arn:aws:sqs:us-east-1:000000000000:jobs.fifo", {})
    group = Draft(message="same", subject=None, attributes={}, group_id="g")
    first, second = topics.publish(arn, [group, group])
    assert isinstance(first, Message) and isinstance(second, Message)
    assert first.message_id == second.message_id and first.sequence_number == second.sequence_number
    third = topics.publish(arn, [Draft(message="other", subject=None, attributes={}, group_id="g")])[0]
    assert isinstance(third, Message) and int(third.sequence_number or 0) > int(first.sequence_number or 0)
    assert topics.pending_deliveries() == 2
    (missing_group,) = topics.publish(arn, [Draft(message="x", subject=None, attributes={})])
    assert isinstance(missing_group, InvalidParameter)


def test_pending_deliveries_survive_a_reopen(topic_services: TopicServices) -> None:
    first = topic_services.open()
    arn = first.create_topic("t", {}, {})
    first.subscribe(arn, "lambda", FN + "f", {})
    first.publish(arn, [draft("kept")])
    first.close()
    second = topic_services.open()
    (job,) = second.due(time.time(), 10, set())
    assert job.message is not None and job.message.message == "kept"
    second.retry_at(job.id, time.time() + 60)
    assert second.due(time.time(), 10, set()) == []
    second.delivered(job.id)
    assert second.pending_deliveries() == 0


def test_deleting_a_topic_drops_its_subscriptions_and_deliveries(topics: TopicService) -> None:
    arn = topics.create_topic("t", {}, {})
    topics.subscribe(arn, "lambda", FN + "f", {})
    topics.publish(arn, [draft("gone")])
    topics.delete_topic(arn)
    assert topics.due(time.time(), 10, set()) == []
    assert topics.pending_deliveries() == 0
    with pytest.raises(NotFound):
        topics.topic_attributes(arn)


def test_retry_schedules() -> None:
    assert [retry_delay(DEFAULT_HTTP_RETRY, n) for n in (1, 2, 3, 4)] == [20.0, 20.0, 20.0, None]
    policy = {**DEFAULT_HTTP_RETRY, "numRetries": 6, "numNoDelayRetries": 3, "minDelayTarget": 1, "maxDelayTarget": 4}
    assert [retry_delay(policy, n) for n in range(1, 8)] == [0.0, 0.0, 0.0, 2.0, 3.0, 4.0, None]
    managed = [retry_delay(MANAGED_RETRY, n) for n in range(1, 17)]
    assert managed[:5] == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert all(1.0 <= (delay or 0) <= 20.0 for delay in managed[5:15]) and managed[14] == 20.0
    assert retry_delay(MANAGED_RETRY, 100_015) == 20.0 and retry_delay(MANAGED_RETRY, 100_016) is None


def test_a_fifo_subscription_gets_one_delivery_at_a_time_in_order(topics: TopicService) -> None:
    arn = topics.create_topic("ordered.fifo", {"FifoTopic": "true", "ContentBasedDeduplication": "true"}, {})
    topics.subscribe(arn, "sqs", "arn:aws:sqs:us-east-1:000000000000:ordered.fifo", {})
    topics.publish(arn, [Draft(message=f"m{i}", subject=None, attributes={}, group_id="g") for i in range(3)])
    seen = []
    for _ in range(3):
        (job,) = topics.due(time.time(), 10, set())
        assert job.message is not None
        assert topics.due(time.time(), 10, {job.id}) == []  # nothing else while it is in flight
        if job.attempts == 0 and job.message.message == "m1":
            topics.retry_at(job.id, time.time())  # a failed try: m1 stays first
            (job,) = topics.due(time.time(), 10, set())
            assert job.message is not None and job.attempts == 1
        seen.append(job.message.message)
        topics.delivered(job.id)
    assert seen == ["m0", "m1", "m2"]


def test_suffix_and_equals_ignore_case(topics: TopicService) -> None:
    arn = topics.create_topic("files", {}, {})
    policy = {"name": [{"suffix": ".png"}], "kind": [{"equals-ignore-case": "IMAGE"}]}
    topics.subscribe(arn, "lambda", FN + "images", {"FilterPolicy": json.dumps(policy)})
    topics.publish(arn, [draft("a", name=("String", "a.png"), kind=("String", "Image"))])
    topics.publish(arn, [draft("b", name=("String", "b.jpg"), kind=("String", "image"))])
    topics.publish(arn, [draft("c", name=("String", "c.png"), kind=("String", "video"))])
    assert delivered_to(topics) == {FN + "images": ["a"]}


@pytest.mark.parametrize(
    "retry",
    [
        3,
        {"numRetries": -1},
        {"numRetries": 101},
        {"minDelayTarget": 0},
        {"minDelayTarget": 30, "maxDelayTarget": 20},
        {"numRetries": 2, "numNoDelayRetries": 3},
        {"numRetries": 100, "minDelayTarget": 40, "maxDelayTarget": 40},
        {"backoffFunction": "random"},
        {"numRetries": "many"},
    ],
)
def test_bad_delivery_policies_are_refused(topics: TopicService, retry: object) -> None:
    arn = topics.create_topic("t", {}, {})
    for policy in ("[]", json.dumps({"healthyRetryPolicy": retry})):
        with pytest.raises(InvalidParameter, match="DeliveryPolicy"):
            topics.subscribe(arn, "http", "http://127.0.0.1:1/", {"DeliveryPolicy": policy})
    with pytest.raises(InvalidParameter, match="DeliveryPolicy"):
        topics.set_topic_attribute(arn, "DeliveryPolicy", json.dumps({"http": {"defaultHealthyRetryPolicy": retry}}))
    good = {"numRetries": 100, "numNoDelayRetries": 3, "minDelayTarget": 1, "maxDelayTarget": 30}
    topics.subscribe(arn, "http", "http://127.0.0.1:1/", {"DeliveryPolicy": json.dumps({"healthyRetryPolicy": good})})


def test_a_topic_file_from_before_claims_gets_their_columns_and_keeps_its_deliveries(tmp_path: Path) -> None:
    path = tmp_path / "topics.db"
    with sqlite3.connect(path) as old:  # the deliveries table as released before claims
        old.execute(
            "CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, subscription_arn TEXT NOT NULL,"
            " message_id TEXT, document TEXT, attempts INTEGER NOT NULL DEFAULT 0, due REAL NOT NULL)"
        )
    first = TopicService(path, "000000000000", "us-east-1", "http://127.0.0.1:1")
    arn = first.create_topic("t", {}, {})
    first.subscribe(arn, "lambda", FN + "f", {})
    first.publish(arn, [draft("kept")])
    first.close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE deliveries SET claimed_by = 'gone', claimed_until = ?", (time.time() + 600,))
    second = TopicService(path, "000000000000", "us-east-1", "http://127.0.0.1:1")
    try:
        assert second.due(time.time(), 10, set()) == []  # a previous process's claim holds...
        second.release_claims()  # ...until the embedded tier's start gives it up
        (job,) = second.due(time.time(), 10, set())
        assert job.message is not None and job.message.message == "kept"
    finally:
        second.close()
