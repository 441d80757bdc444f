"""Async invocation destinations: the invocation record (spec section 4) and where it is sent.

A ``Destination`` delivers one record: to a function (as its async event), or to a queue or a
topic (as the message body). Buses and buckets plug in as further ``Destination`` classes. The same
classes carry a dead-letter message: the original event, with Lambda's three message attributes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from squall.services.queues.service import QueueService
    from squall.services.topics.service import TopicService

log = logging.getLogger(__name__)

#: Lambda's dead-letter ``ErrorMessage`` attribute holds the first kilobyte of the error message.
DEAD_LETTER_MESSAGE_BYTES = 1024
#: The SenderId of messages Squall sends on Lambda's behalf.
LAMBDA_SENDER = "AROASQUALLLAMBDASERVICE:squall"

#: Invokes a function asynchronously: (name, qualifier or None, payload).
InvokeEvent = Callable[[str, str | None, bytes], Awaitable[None]]


def invocation_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    request_payload: bytes,
    executed_version: str,
    function_error: str | None,
    response_payload: bytes | None,
) -> dict[str, Any]:
    """The record Lambda sends to OnSuccess / OnFailure destinations."""
    now = datetime.now(UTC)
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": executed_version}
    if function_error is not None:
        response_context["functionError"] = function_error
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": _json_or_text(request_payload),
        "responseContext": response_context,
    }
    if response_payload is not None:
        record["responsePayload"] = _json_or_text(response_payload)
    return record


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class Destination(ABC):
    """Somewhere an invocation record can be delivered."""

    def __init__(self, arn: str) -> None:
        self.arn = arn

    @abstractmethod
    async def deliver(self, record: dict[str, Any]) -> bool:
        """Send the record; False (after logging why) when it could not be delivered."""


class FunctionDestination(Destination):
    """A Lambda function, invoked asynchronously with the record as its event."""

    def __init__(self, arn: str, invoke_event: InvokeEvent) -> None:
        super().__init__(arn)
        self.invoke_event = invoke_event

    async def deliver(self, record: dict[str, Any]) -> bool:
        name, _, qualifier = self.arn.split(":function:", 1)[1].partition(":")
        try:
            await self.invoke_event(name, qualifier or None, json.dumps(record).encode())
        except Exception as exc:
            log.warning("destination %s: delivery failed: %s", self.arn, exc)
            return False
        return True


class MessageDestination(Destination):
    """A queue or a topic: a record (or a dead-letter event) becomes the body of one message."""

    async def deliver(self, record: dict[str, Any]) -> bool:
        request_id = str(record.get("requestContext", {}).get("requestId", ""))
        return await self.send(json.dumps(record), {}, request_id)

    async def send(self, body: str, attributes: dict[str, dict[str, str]], request_id: str) -> bool:
        """Send one message; False (after logging why) when it could not be sent."""
        try:
            await self._send(body, attributes, request_id)
        except Exception as exc:
            log.warning("destination %s: delivery failed: %s", self.arn, exc)
            return False
        return True

    @abstractmethod
    async def _send(self, body: str, attributes: dict[str, dict[str, str]], request_id: str) -> None:
        """Send one message or raise why not."""


class QueueDestination(MessageDestination):
    """An SQS-compatible queue."""

    def __init__(self, arn: str, queues: QueueService) -> None:
        super().__init__(arn)
        self.queues = queues

    async def _send(self, body: str, attributes: dict[str, dict[str, str]], request_id: str) -> None:
        from squall.services.queues.sending import outgoing

        name = self.queues.name_of_arn(self.arn)
        if name is None:
            raise LookupError("not a queue of this account and region")
        queue = await asyncio.to_thread(self.queues.queue, name)
        params: dict[str, Any] = {"MessageBody": body, "MessageAttributes": attributes}
        if queue.fifo:
            params |= {"MessageGroupId": "lambda", "MessageDeduplicationId": request_id or None}
        await asyncio.to_thread(self.queues.send, name, [outgoing(queue, params)], LAMBDA_SENDER)


class TopicDestination(MessageDestination):
    """An SNS-compatible topic: the message fans out to the topic's subscribers."""

    def __init__(self, arn: str, topics: TopicService) -> None:
        super().__init__(arn)
        self.topics = topics

    async def _send(self, body: str, attributes: dict[str, dict[str, str]], request_id: str) -> None:
        from squall.services.topics import messages
        from squall.services.topics.models import Draft

        topic = await asyncio.to_thread(self.topics.topic, self.arn)
        draft = Draft(
            message=body,
            subject=None,
            attributes=messages.message_attributes(attributes),
            group_id="lambda" if topic.fifo else None,
            dedup_id=request_id if topic.fifo else None,
        )
        (result,) = await asyncio.to_thread(self.topics.publish, self.arn, [draft])
        if isinstance(result, Exception):
            raise result


class UnsupportedDestination(Destination):
    """A queue, topic, bus or bucket: stored in the config, but no such service to deliver to yet."""

    async def deliver(self, record: dict[str, Any]) -> bool:
        log.warning(
            "destination %s: Squall cannot deliver to this kind of target yet; record of request %s dropped",
            self.arn,
            record["requestContext"]["requestId"],
        )
        return False


class Destinations:
    """Builds the ``Destination`` for an ARN and counts delivery failures."""

    def __init__(
        self, invoke_event: InvokeEvent, queues: QueueService | None = None, topics: TopicService | None = None
    ) -> None:
        self.invoke_event = invoke_event
        self.queues = queues
        self.topics = topics
        self.delivery_failures = 0
        self.dead_letter_errors = 0
        #: Told the function (ARN of a failed record, name of a failed dead letter); metrics set these.
        self.on_delivery_failure: Callable[[str], None] = lambda function_arn: None
        self.on_dead_letter_error: Callable[[str], None] = lambda function_name: None

    def for_arn(self, arn: str) -> Destination:
        if ":lambda:" in arn and ":function:" in arn:
            return FunctionDestination(arn, self.invoke_event)
        if arn.startswith("arn:aws:sqs:") and self.queues is not None:
            return QueueDestination(arn, self.queues)
        if arn.startswith("arn:aws:sns:") and self.topics is not None:
            return TopicDestination(arn, self.topics)
        return UnsupportedDestination(arn)

    async def send(self, arn: str, record: dict[str, Any]) -> bool:
        """Deliver a record; False, and counted in ``delivery_failures``, when it could not be."""
        if await self.for_arn(arn).deliver(record):
            return True
        self.delivery_failures += 1
        self.on_delivery_failure(str(record.get("requestContext", {}).get("functionArn", "")))
        return False

    async def dead_letter(
        self, arn: str, event: bytes, request_id: str, error_message: str, error_code: int = 200
    ) -> bool:
        """Send a failed async event to its function's DeadLetterConfig target: the event itself as the
        body, with the ``RequestID``, ``ErrorCode`` and ``ErrorMessage`` attributes Lambda sets."""
        destination = self.for_arn(arn)
        attributes = {
            "RequestID": {"DataType": "String", "StringValue": request_id},
            "ErrorCode": {"DataType": "Number", "StringValue": str(error_code)},
            "ErrorMessage": {
                "DataType": "String",
                "StringValue": error_message.encode()[:DEAD_LETTER_MESSAGE_BYTES].decode("utf-8", "ignore") or "-",
            },
        }
        delivered = False
        if isinstance(destination, MessageDestination):
            delivered = await destination.send(event.decode("utf-8", "replace"), attributes, request_id)
        else:
            log.warning("dead-letter target %s: Squall cannot deliver to this kind of target yet", arn)
        if not delivered:
            self.dead_letter_errors += 1
        return delivered
