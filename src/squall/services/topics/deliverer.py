"""The background deliverer: sends each pending delivery to its subscriber and retries failures.

Deliveries live in the topic store, so a restart resumes them. Every server of a deployment that
shares the store runs a deliverer: each delivery is claimed by one of them at a time (for
``TopicService.claim_s``, longer than an attempt can take), and one claimed by a server that died is
taken by another once that claim lapses; a server that stops gives its unsent claims back at once.
An idle deliverer waits for a publish (on any server: the store's notifications) or the next due
delivery, and looks again at least every ``IDLE_BACKSTOP_S`` in case a notification was lost.

A failed delivery is retried after the delay its retry policy gives (``attributes.retry_delay``):
for HTTP/S the subscription's DeliveryPolicy, else the topic's, else SNS's default (3 retries, 20 s
apart); for Lambda and SQS, SNS's policy for AWS-managed endpoints (3 immediate retries, 2 after
1 s, 10 backing off to 20 s, then every 20 s). When the retries are exhausted the delivery is
dropped and logged.

HTTP/S: names under ``.localhost`` (Squall's function URLs) reach the loopback address, as curl's
do. A 2xx answer delivers; 5xx, other statuses below 200, timeouts (15 s) and connection
errors are retried; a 4xx answer is not retried (SNS counts it as delivered). Lambda and SQS: a
client-side error (no such function or queue, a message the queue refuses) is not retried either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from squall.errors import SquallError, TooManyRequests
from squall.localhost_names import localhost_mounts
from squall.services.topics import checks, events
from squall.services.topics.attributes import retry_delay
from squall.services.topics.models import Job
from squall.services.topics.service import TopicService

if TYPE_CHECKING:
    from squall.services.queues.service import QueueService

log = logging.getLogger(__name__)

#: Invokes a function asynchronously (InvocationType=Event): (name, qualifier or None, payload).
InvokeEvent = Callable[[str, str | None, bytes], Awaitable[Any]]

HTTP_TIMEOUT_S = 15.0
CONCURRENCY = 16
IDLE_BACKSTOP_S = 5.0
#: The SenderId SQS shows for messages SNS sends (unverified: AWS's SNS service principal id).
SNS_SENDER = "AIDAIT2UOQQY3AUEKVGXU"
USER_AGENT = "Amazon Simple Notification Service Agent"


class PermanentFailure(Exception):
    """A delivery that retrying cannot fix (an HTTP 4xx answer)."""


class Deliverer:
    """Sends due deliveries, at most ``CONCURRENCY`` at a time, until stopped."""

    def __init__(self, topics: TopicService, invoke_event: InvokeEvent, queues: QueueService | None) -> None:
        self.topics = topics
        self.invoke_event = invoke_event
        self.queues = queues
        self._wake = asyncio.Event()
        self._busy: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        topics.add_listener(self.wake)

    def wake(self) -> None:
        """Look for due deliveries now (safe from any thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        # httpx logs every request at INFO: one line per delivery attempt would drown the server's log.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, follow_redirects=False, mounts=localhost_mounts())
        self._runner = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop taking deliveries; ones in flight are cancelled, stay pending and are given back."""
        unsent = set(self._busy)
        for task in [*self._tasks, *([self._runner] if self._runner else [])]:
            task.cancel()
        for task in [*self._tasks, *([self._runner] if self._runner else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.aclose()
        if unsent:
            try:
                await asyncio.to_thread(self.topics.release, unsent)
            except Exception:
                log.warning("topic deliveries: cannot give back %d claim(s); they lapse on their own", len(unsent))

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            free = CONCURRENCY - len(self._busy)
            jobs: list[Job] = []
            try:
                if free > 0:
                    jobs = await asyncio.to_thread(self.topics.due, time.time(), free, set(self._busy))
                next_due = await asyncio.to_thread(self.topics.next_due)
            except Exception:
                log.exception("topic deliveries: cannot read pending deliveries")
                next_due = time.time() + 1.0
            for job in jobs:
                self._busy.add(job.id)
                task = asyncio.ensure_future(self._deliver(job))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            timeout = IDLE_BACKSTOP_S if next_due is None else min(max(next_due - time.time(), 0.0), IDLE_BACKSTOP_S)
            if timeout == 0.0 and not jobs:
                # What is due is held back (a FIFO subscription's next, behind the one in flight) or no
                # slot is free: a finishing delivery wakes us.
                timeout = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _deliver(self, job: Job) -> None:
        try:
            try:
                await self._send(job)
            except PermanentFailure as exc:
                log.warning("topic delivery to %s failed for good: %s", job.subscription_arn, exc)
                await asyncio.to_thread(self.topics.delivered, job.id)
            except Exception as exc:
                delay = retry_delay(job.retry_policy, job.attempts + 1)
                if delay is None:
                    attempts = job.attempts + 1
                    log.warning("topic delivery to %s dropped after %d tries: %s", job.subscription_arn, attempts, exc)
                    await asyncio.to_thread(self.topics.delivered, job.id)
                else:
                    log.info("topic delivery to %s failed (%s); retry in %.1f s", job.subscription_arn, exc, delay)
                    await asyncio.to_thread(self.topics.retry_at, job.id, time.time() + delay)
            else:
                await asyncio.to_thread(self.topics.delivered, job.id)
        except Exception:
            log.exception("topic delivery %d: cannot record its outcome", job.id)
        finally:
            self._busy.discard(job.id)
            self._wake.set()

    async def _send(self, job: Job) -> None:
        if job.protocol in checks.OUTBOX_PROTOCOLS:
            await self._to_outbox(job)
            return
        if job.document is not None:
            await self._post(
                job,
                json.dumps(job.document),
                "SubscriptionConfirmation",
                job.document["MessageId"],
                str(job.document["TopicArn"]),
            )
            return
        message = job.message
        assert message is not None
        url = self.topics.endpoint_url
        if job.protocol in ("lambda", "sqs"):
            try:
                if job.protocol == "lambda":
                    parts = job.endpoint.split(":")
                    payload = json.dumps(events.lambda_event(message, job.subscription_arn, url)).encode()
                    await self.invoke_event(parts[6], parts[7] if len(parts) > 7 else None, payload)
                else:
                    await self._enqueue(job)
            except SquallError as exc:
                # A client-side error (the function or queue is gone, the message does not fit) is not
                # retried by SNS; throttling and server-side errors are.
                if 400 <= exc.status < 500 and not isinstance(exc, TooManyRequests):
                    raise PermanentFailure(f"{exc.code}: {exc.message}") from exc
                raise
        else:
            body = (
                message.text_for(job.protocol)
                if job.raw
                else json.dumps(events.notification(message, job.protocol, job.subscription_arn, url))
            )
            await self._post(job, body, "Notification", message.message_id, message.topic_arn)

    async def _to_outbox(self, job: Job) -> None:
        """The sms/email stand-in: the text (sms), the mail (email), or the JSON document (email-json)."""
        subject: str | None
        if job.document is not None:
            kind, subject = "SubscriptionConfirmation", "AWS Notification - Subscription Confirmation"
            body = (
                f"You have chosen to subscribe to the topic: {job.document['TopicArn']}\n"
                f"To confirm this subscription, visit: {job.document['SubscribeURL']}\n"
                f"(or call ConfirmSubscription with Token={job.document['Token']})"
            )
        else:
            message = job.message
            assert message is not None
            kind, subject = "Notification", message.subject
            if job.protocol == "email-json":
                document = events.notification(message, job.protocol, job.subscription_arn, self.topics.endpoint_url)
                body = json.dumps(document)
            else:
                body = message.text_for(job.protocol)
        await asyncio.to_thread(
            self.topics.add_to_outbox, job.subscription_arn, job.protocol, job.endpoint, kind, subject, body
        )

    async def _post(self, job: Job, body: str, kind: str, message_id: str, topic_arn: str) -> None:
        assert self._client is not None
        headers = {
            "content-type": "text/plain; charset=UTF-8",
            "user-agent": USER_AGENT,
            "x-amz-sns-message-type": kind,
            "x-amz-sns-message-id": message_id,
            "x-amz-sns-topic-arn": topic_arn,
        }
        if kind == "Notification":
            headers["x-amz-sns-subscription-arn"] = job.subscription_arn
            if job.raw:
                headers["x-amz-sns-rawdelivery"] = "true"
        response = await self._client.post(job.endpoint, content=body.encode(), headers=headers)
        if 400 <= response.status_code < 500:
            raise PermanentFailure(f"HTTP {response.status_code}")
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"HTTP {response.status_code}")

    async def _enqueue(self, job: Job) -> None:
        from squall.services.queues.sending import outgoing

        message = job.message
        assert message is not None
        if self.queues is None:
            raise RuntimeError("no queue service")
        name = self.queues.name_of_arn(job.endpoint)
        if name is None:
            raise RuntimeError(f"{job.endpoint} is not a queue of this account")
        queue = await asyncio.to_thread(self.queues.queue, name)
        params: dict[str, Any] = {}
        if job.raw:
            params["MessageBody"] = message.text_for("sqs")
            params["MessageAttributes"] = message.attributes
        else:
            document = events.notification(message, "sqs", job.subscription_arn, self.topics.endpoint_url)
            params["MessageBody"] = json.dumps(document)
        if queue.fifo:
            params["MessageGroupId"] = message.group_id or "sns"
            params["MessageDeduplicationId"] = message.dedup_id or message.message_id
        await asyncio.to_thread(self.queues.send, name, [outgoing(queue, params)], SNS_SENDER)
