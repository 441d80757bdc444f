"""The object trigger: objects created in or removed from a bucket notify the functions, queues and
topics of the bucket's notification configuration, with S3's event (``{"Records": [...]}``).

``BucketService`` calls ``ObjectNotifications.listen`` after every committed write, in the writing
thread; a change that a configuration wanted is handed to the event loop, which reads the matching
configurations and sends, so a write never waits for a delivery. A function is invoked asynchronously through
``Platform.invoke`` (trigger ``s3``), so Lambda's async retries and destinations apply; a queue or
a topic gets the event as the message body.

Durability: a change a configuration wants is written to the bucket store's outbox in the object's
own transaction, claimed by the writing server, and acknowledged only once the function's event is
enqueued (durably, in the async queue) or the message sent. Every server looks for rows no live
server is delivering every ``DRAIN_INTERVAL_S``: those of a server that died (at once when it ran
on the same host, else once its claim lapses, ``BucketService.claim_s``), or left by a crash of the
only server, which takes them when it starts again. Each row is claimed by one server at a time, so
servers sharing one store send a notification once (and at least once, as S3 promises, should a
server die between sending and acknowledging). A delivery that fails (the function or queue is
gone) is logged and acknowledged: it is not retried.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from squall.invoke.destinations import MessageDestination
from squall.services.buckets.errors import InvalidArgument, NoSuchBucket
from squall.services.buckets.notifications import Caller, NotificationConfig, from_json
from squall.services.buckets.service import BucketService, ObjectChange

if TYPE_CHECKING:
    from squall.platform import Platform

log = logging.getLogger(__name__)

#: How often each server looks for outbox rows that no live server is delivering.
DRAIN_INTERVAL_S = 2.0

#: The canonical user id S3 shows as a bucket owner's ``principalId`` (Squall's single account).
OWNER_PRINCIPAL = "A3SQUALLOWNER0"


def event_key(key: str) -> str:
    """A key as S3 writes it in an event: form-URL-encoded (space as ``+``), ``/`` kept."""
    return quote_plus(key, safe="/")


def event_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def s3_record(
    change: ObjectChange, config_id: str, region: str, caller: Caller | None, now: datetime | None = None
) -> dict[str, Any]:
    """One record of S3's event (eventVersion 2.1) for ``change``; removals carry no size or eTag."""
    obj: dict[str, Any] = {"key": event_key(change.key)}
    if change.size is not None:
        obj["size"] = change.size
    if change.etag is not None:
        obj["eTag"] = change.etag.strip('"')
    obj["sequencer"] = change.sequencer
    principal = f"AWS:{caller.access_key}" if caller is not None and caller.access_key else OWNER_PRINCIPAL
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": event_time(now or datetime.now(UTC)),
        "eventName": change.event,
        "userIdentity": {"principalId": principal},
        "requestParameters": {"sourceIPAddress": caller.source_ip if caller is not None else "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": caller.request_id if caller is not None else secrets.token_hex(8).upper(),
            "x-amz-id-2": base64.b64encode(secrets.token_bytes(48)).decode(),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": config_id,
            "bucket": {
                "name": change.bucket,
                "ownerIdentity": {"principalId": OWNER_PRINCIPAL},
                "arn": f"arn:aws:s3:::{change.bucket}",
            },
            "object": obj,
        },
    }


def s3_test_event(bucket: str, request_id: str, now: datetime | None = None) -> dict[str, Any]:
    """The ``s3:TestEvent`` message S3 sends a queue or topic when a configuration names it."""
    return {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": event_time(now or datetime.now(UTC)),
        "Bucket": bucket,
        "RequestId": request_id,
        "HostId": base64.b64encode(secrets.token_bytes(48)).decode(),
    }


def matching(configs: list[NotificationConfig], change: ObjectChange) -> list[NotificationConfig]:
    return [config for config in configs if config.matches(change.event, change.key)]


class ObjectNotifications:
    """Listens to a bucket service and delivers its bucket notifications (see the module docstring)."""

    def __init__(self, buckets: BucketService, platform: Platform) -> None:
        self.buckets = buckets
        self.platform = platform
        self.failures = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._drainer: asyncio.Task[None] | None = None
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        buckets.add_listener(self.listen)

    async def start(self) -> None:
        """Deliver what the outbox holds that no live server is delivering: at once, then every
        ``DRAIN_INTERVAL_S`` (another server's rows once it has died, or its claim lapsed)."""
        self._loop = asyncio.get_running_loop()
        self._drainer = asyncio.ensure_future(self._drain())

    async def stop(self) -> None:
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
            self._drainer = None

    async def _drain(self) -> None:
        while True:
            try:
                for change in await asyncio.to_thread(self.buckets.claim_notifications):
                    self._spawn(change)
            except Exception as exc:  # the bucket store failed: the rows stay for the next round
                log.warning("bucket notifications: the outbox could not be read: %s", exc)
            await asyncio.sleep(DRAIN_INTERVAL_S)

    def listen(self, change: ObjectChange) -> None:
        """The bucket service's listener: runs in the writing thread, so it only hands work over. Only
        a change a configuration wanted has an outbox row (claimed by this server)."""
        if change.outbox_id is None:
            return
        if self._loop is None or self._loop.is_closed():
            # It stays in the outbox: a server delivers it once this one's claim lapses.
            log.warning(
                "bucket %s: no event loop to deliver notifications on; %s deferred", change.bucket, change.event
            )
            return
        self._loop.call_soon_threadsafe(self._spawn, change)

    def _spawn(self, change: ObjectChange) -> None:
        task = asyncio.ensure_future(self._deliver(change))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, change: ObjectChange) -> None:
        """Send ``change`` to the configurations of its bucket that want it now, then acknowledge it."""
        caller = change.caller
        try:
            configs = matching(from_json(await asyncio.to_thread(self.buckets.notifications, change.bucket)), change)
            try:
                region = (await asyncio.to_thread(self.buckets.get_bucket, change.bucket)).region
            except NoSuchBucket:
                region = self.buckets.region
            for config in configs:
                body = {"Records": [s3_record(change, config.id, region, caller)]}
                if not await self._send(config, body, caller.request_id if caller else ""):
                    self.failures += 1
            if change.outbox_id is not None:
                await asyncio.to_thread(self.buckets.ack_notification, change.outbox_id)
        except Exception as exc:  # the bucket store failed: the outbox row stays for the next server
            log.warning("bucket %s: notification of %s not completed: %s", change.bucket, change.key, exc)

    async def _send(self, config: NotificationConfig, body: dict[str, Any], request_id: str) -> bool:
        payload = json.dumps(body)
        if config.kind == "function":
            name, qualifier = _function_of(config.arn)
            try:
                await self.platform.invoke(name, qualifier, payload.encode(), "Event", trigger="s3")
            except Exception as exc:
                log.warning("bucket notification to %s failed: %s", config.arn, exc)
                return False
            return True
        destination = self.platform.destinations.for_arn(config.arn)
        if not isinstance(destination, MessageDestination):
            log.warning("bucket notification to %s: not a queue or topic Squall can deliver to", config.arn)
            return False
        return await destination.send(payload, {}, request_id)

    # --- PutBucketNotificationConfiguration's checks and test event ------------------------------
    async def check_destinations(self, configs: list[NotificationConfig]) -> None:
        """InvalidArgument naming the first destination that does not exist, as S3 answers."""
        for config in configs:
            problem = await self._problem(config)
            if problem is not None:
                # unverified: S3's message is quoted in many reports; the per-destination ArgumentValue
                # texts are from memory of S3's answers.
                raise InvalidArgument(
                    "Unable to validate the following destination configurations",
                    ArgumentName=config.arn,
                    ArgumentValue=problem,
                )

    async def _problem(self, config: NotificationConfig) -> str | None:
        try:
            if config.kind == "function":
                name, qualifier = _function_of(config.arn)
                await self.platform.get_function(name, qualifier)
            elif config.kind == "queue":
                queues = self.platform.queues
                name_of = queues.name_of_arn(config.arn) if queues is not None else None
                if queues is None or name_of is None:
                    return "The destination queue does not exist"
                await asyncio.to_thread(queues.queue, name_of)
            else:
                topics = self.platform.topics
                if topics is None:
                    return "The destination topic does not exist"
                await asyncio.to_thread(topics.topic, config.arn)
        except Exception:
            if config.kind == "function":
                return f"Not authorized to invoke function [{config.arn}]"
            return f"The destination {config.kind} does not exist"
        return None

    async def send_test_events(self, bucket: str, configs: list[NotificationConfig], request_id: str) -> None:
        """S3 sends an ``s3:TestEvent`` to each queue and topic a new configuration names; one that
        cannot be sent is InvalidArgument (the configuration is then not stored)."""
        body = json.dumps(s3_test_event(bucket, request_id))
        for arn in dict.fromkeys(config.arn for config in configs if config.kind != "function"):
            destination = self.platform.destinations.for_arn(arn)
            if not isinstance(destination, MessageDestination) or not await destination.send(body, {}, request_id):
                # unverified: the ArgumentValue of S3's answer when its test message cannot be sent
                raise InvalidArgument(
                    "Unable to validate the following destination configurations",
                    ArgumentName=arn,
                    ArgumentValue=(
                        "Permissions on the destination do not allow S3 to publish notifications from this bucket"
                    ),
                )


def _function_of(arn: str) -> tuple[str, str | None]:
    """(name, qualifier) of a function ARN."""
    if ":function:" not in arn:
        return arn, None
    name, _, qualifier = arn.split(":function:", 1)[1].partition(":")
    return name, qualifier or None
