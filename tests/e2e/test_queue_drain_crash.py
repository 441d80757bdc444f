"""A queue of 10,000 messages drains through a mapping while the server is killed -9 once: nothing is
lost, and a poison message ends in the dead-letter queue after maxReceiveCount receives."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import make_zip

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MESSAGES = 10_000

#: Reports every message of its batch to the test's receiver, except "poison", reported as failed.
REPORTER = """
import json, os, urllib.request

def handler(event, context):
    bodies = [r["body"] for r in event["Records"] if r["body"] != "poison"]
    failed = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "poison"]
    request = urllib.request.Request(os.environ["SINK_URL"], data=json.dumps(bodies).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return {"batchItemFailures": failed}
"""


def serve(seen: Counter[str], lock: threading.Lock) -> ThreadingHTTPServer:
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                seen.update(bodies)
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_drain_survives_kill_9_and_the_poison_reaches_the_dlq(new_server: Any) -> None:
    seen: Counter[str] = Counter()
    lock = threading.Lock()
    receiver = serve(seen, lock)
    server = new_server()
    sqs, lam = server.client("sqs"), server.client("lambda")
    dlq = sqs.create_queue(QueueName="drain-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    url = sqs.create_queue(QueueName="drain", Attributes={"VisibilityTimeout": "5", "RedrivePolicy": policy})[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for start in range(0, MESSAGES, 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{start + i:05d}"} for i in range(10)]
        )
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    lam.create_function(
        FunctionName="drainer",
        Runtime="python3.11",
        Role="arn:aws:iam::000000000000:role/r",
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": REPORTER})},
        Timeout=3,
        Environment={"Variables": {"SINK_URL": f"http://127.0.0.1:{receiver.server_port}/"}},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="drainer")
    began = time.monotonic()
    lam.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName="drainer",
        BatchSize=100,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    deadline = time.monotonic() + 120
    while len(seen) < MESSAGES // 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
    at_kill = len(seen)
    server.start()  # same data dir: messages in flight become visible again after their 5 s
    deadline = time.monotonic() + 240
    while len(seen) < MESSAGES and time.monotonic() < deadline:
        time.sleep(0.2)
    elapsed = time.monotonic() - began
    wanted = {f"m{i:05d}" for i in range(MESSAGES)}
    lost = wanted - set(seen)
    duplicates = sum(count - 1 for count in seen.values())
    print(f"[queue drain] {MESSAGES} messages, {at_kill} seen at the kill, lost {len(lost)}, "
          f"duplicates {duplicates}, {elapsed:.1f} s")  # fmt: skip
    assert not lost
    deadline = time.monotonic() + 60
    moved: list[dict[str, Any]] = []
    while not moved and time.monotonic() < deadline:
        moved = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in moved] == ["poison"]
    receiver.shutdown()
    receiver.server_close()
