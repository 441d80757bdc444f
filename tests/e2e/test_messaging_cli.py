"""The sms/email outbox of topics, and ``squall queues``, ``squall topics`` and ``squall outbox``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from typing import Any

import pytest

from .conftest import SquallServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def cli(squall: SquallServer, *args: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-m", "squall", *args, "--json", "--data-dir", str(squall.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_outbox(squall: SquallServer, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    entries: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        entries = cli(squall, "outbox")
        if len(entries) >= count:
            break
        time.sleep(0.2)
    return entries


def test_sms_and_email_subscribers_write_to_the_outbox(squall: SquallServer) -> None:
    sns = squall.client("sns")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    sms = sns.subscribe(TopicArn=topic, Protocol="sms", Endpoint="+15555550100", ReturnSubscriptionArn=True)
    email = sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com", ReturnSubscriptionArn=True)
    assert (
        sns.get_subscription_attributes(SubscriptionArn=sms["SubscriptionArn"])["Attributes"]["PendingConfirmation"]
        == "false"
    )
    # An email subscription waits for its subscriber, who gets the confirmation in the outbox.
    (confirmation,) = wait_outbox(squall, 1)
    assert confirmation["kind"] == "SubscriptionConfirmation" and confirmation["endpoint"] == "ops@example.com"
    token = re.search(r"Token=(\w+)", confirmation["body"])
    assert token is not None
    sns.publish(TopicArn=topic, Message="rate above threshold", Subject="Alarm")
    entries = wait_outbox(squall, 2)
    assert [(e["protocol"], e["body"]) for e in entries[1:]] == [("sms", "rate above threshold")]
    sns.confirm_subscription(TopicArn=topic, Token=token.group(1))
    sns.publish(TopicArn=topic, Message="still above", Subject="Alarm")
    entries = wait_outbox(squall, 4)  # the second publish: one sms, one mail
    assert len(entries) == 4
    mails = [e for e in entries if e["protocol"] == "email" and e["kind"] == "Notification"]
    assert [(m["subject"], m["body"]) for m in mails] == [("Alarm", "still above")]
    report = cli(squall, "topics")
    (listed,) = [t for t in report["topics"] if t["arn"] == topic]
    assert sorted((s["protocol"], s["confirmed"]) for s in listed["subscriptions"]) == [
        ("email", True),
        ("sms", True),
    ]
    assert email["SubscriptionArn"] in {s["arn"] for s in listed["subscriptions"]}


def test_squall_queues_shows_backlogs(squall: SquallServer) -> None:
    sqs = squall.client("sqs")
    dlq = sqs.create_queue(QueueName="cli-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    url = sqs.create_queue(QueueName="cli-work", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    (work,) = [q for q in cli(squall, "queues") if q["name"] == "cli-work"]
    assert (work["visible"], work["in_flight"], work["delayed"]) == (2, 1, 1)
    assert work["dead_letter_queue"] == dlq_arn and work["fifo"] is False
