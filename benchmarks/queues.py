"""Queue drain: how fast an SQS event source mapping empties a queue into a no-op function, through
plain boto3 against any endpoint (Squall, or MiniStack as the peer), measured the same way for both.

1. A function that prints one line per batch: ``DRAIN <records> <time.time()>``.
2. A queue with ``messages`` 100-byte messages, sent with SendMessageBatch (10 a call) *before* the
   clock, from a few threads.
3. CreateEventSourceMapping (BatchSize ``batch``, MaximumBatchingWindowInSeconds 1, which AWS requires
   for a batch size above 10). The queue then drains as a backlog.
4. Done when the queue reports no visible and no in-flight messages *and* the function's log lines
   add up to every message sent: the handler really ran for each, counted, never assumed.

The rate counts from the first batch's handler timestamp to the last one's (messages after the first
batch), so the mapping's start-up (pollers start on the next reconcile pass) is reported on its own.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from benchmarks.harness import HANDLER, REGION, ROLE, RUNTIME, BenchError, build_zip

DRAIN_SOURCE = (
    "import time\n\n\ndef handler(event, context):\n    print(f\"DRAIN {len(event['Records'])} {time.time():.6f}\")\n"
)
SENDERS = 4
BODY = "m" * 100


@dataclass(frozen=True)
class Endpoint:
    """Where the AWS APIs answer and with which keys."""

    url: str
    access_key: str
    secret_key: str

    def client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        factory: Any = boto3.client
        return factory(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(retries={"max_attempts": 2}, read_timeout=120, connect_timeout=10, max_pool_connections=16),
        )


def _send(sqs: Any, url: str, count: int, errors: list[str]) -> None:
    try:
        for start in range(0, count, 10):
            entries = [{"Id": str(i), "MessageBody": BODY} for i in range(min(10, count - start))]
            answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
            if answer.get("Failed"):
                raise BenchError(f"SendMessageBatch failed: {answer['Failed'][:2]}")
    except Exception as exc:
        errors.append(repr(exc))


def fill(endpoint: Endpoint, url: str, messages: int) -> float:
    """Send ``messages`` messages from ``SENDERS`` threads; returns messages/s of the sending."""
    errors: list[str] = []
    share = [messages // SENDERS + (1 if i < messages % SENDERS else 0) for i in range(SENDERS)]
    clients = [endpoint.client("sqs") for _ in share]
    threads = [threading.Thread(target=_send, args=(c, url, n, errors)) for c, n in zip(clients, share, strict=True)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError(f"filling the queue: {errors[0]}")
    return messages / (time.perf_counter() - began)


def _batches(logs: Any, group: str) -> list[tuple[int, float]]:
    found: list[tuple[int, float]] = []
    try:
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group, filterPattern='"DRAIN"'):
            for event in page["events"]:
                for line in event["message"].splitlines():
                    parts = line.split()
                    if len(parts) == 3 and parts[0] == "DRAIN":
                        found.append((int(parts[1]), float(parts[2])))
    except logs.exceptions.ResourceNotFoundException:
        return []
    return found


def drain(endpoint: Endpoint, messages: int, batch: int = 100, timeout_s: float = 300.0) -> dict[str, Any]:
    """Fill a queue, map it to a no-op function and time the drain (see the module docstring)."""
    lam, sqs, logs = endpoint.client("lambda"), endpoint.client("sqs"), endpoint.client("logs")
    suffix = uuid.uuid4().hex[:8]
    name, queue = f"bench-drain-{suffix}", f"bench-drain-{suffix}"
    lam.create_function(
        FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler=HANDLER, Code={"ZipFile": build_zip(DRAIN_SOURCE)}
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 1200})
    url = sqs.create_queue(QueueName=queue, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    send_rate = fill(endpoint, url, messages)
    created = time.time()
    began = time.perf_counter()
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=batch, MaximumBatchingWindowInSeconds=1
    )["UUID"]
    attributes = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    while True:
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=attributes)["Attributes"]
        if counts.get(attributes[0]) == "0" and counts.get(attributes[1]) == "0":
            break
        if time.perf_counter() - began > timeout_s:
            raise BenchError(f"queue not drained after {timeout_s:.0f} s: {counts}")
        time.sleep(0.02)
    emptied_s = time.perf_counter() - began
    batches: list[tuple[int, float]] = []
    while time.perf_counter() - began < timeout_s:
        batches = _batches(logs, f"/aws/lambda/{name}")
        if sum(n for n, _ in batches) >= messages:
            break
        time.sleep(0.2)
    delivered = sum(n for n, _ in batches)
    if delivered < messages:
        raise BenchError(f"the handler logged {delivered} of {messages} messages")
    lam.delete_event_source_mapping(UUID=mapping)
    batches.sort(key=lambda item: item[1])
    first, last = batches[0][1], batches[-1][1]
    after_first = delivered - batches[0][0]
    sizes = sorted(n for n, _ in batches)
    return {
        "messages": messages,
        "batch_size": batch,
        "delivered": delivered,
        "batches": len(batches),
        "median_batch": sizes[len(sizes) // 2],
        "send_msgs_per_s": round(send_rate, 1),
        "first_batch_after_s": round(first - created, 3),
        "drain_seconds": round(last - first, 3),
        "msgs_per_s": round(after_first / (last - first), 1) if last > first else None,
        "create_to_empty_s": round(emptied_s, 3),
        "end_to_end_msgs_per_s": round(messages / emptied_s, 1),
    }
