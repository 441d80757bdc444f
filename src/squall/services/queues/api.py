"""The SQS wire protocol as boto3 and the AWS CLI send it: JSON 1.0, ``X-Amz-Target: AmazonSQS.<Operation>``
(and, for older SDKs, the query protocol: see ``query.py``).

Queue URLs are ``http://<Host of the request>/<account>/<queue name>``; requests name their queue by
such a URL in the body, whichever host it carries.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

from starlette.types import Receive, Scope, Send

from squall.api.errors import REQUEST_ID_HEADER
from squall.errors import SquallError, UnknownOperation
from squall.services.queues import attributes as qattrs
from squall.services.queues import query, sending, wire
from squall.services.queues.errors import (
    BatchRequestTooLong,
    InvalidAddress,
    InvalidAttributeName,
    InvalidParameterValue,
    MissingParameter,
    QueueDoesNotExist,
    SqsError,
)
from squall.services.queues.service import QueueService
from squall.services.queues.waiters import Waiters

TARGET_PREFIX = "AmazonSQS."
_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_FIFO_NAME = re.compile(r"[A-Za-z0-9_-]{1,75}\.fifo")


class Request:
    """What a handler needs: the body's parameters and the host the client reached us by."""

    def __init__(self, params: dict[str, Any], host: str) -> None:
        self.params = params
        self.host = host


Handler = Callable[[Request], dict[str, Any]]


class SqsApi:
    """The ``sqs`` service of the API port."""

    def __init__(self, service: QueueService) -> None:
        self.service = service
        self.waiters = Waiters()
        service.add_listener(self.waiters.notify)
        self.handlers: dict[str, Handler] = {
            "CreateQueue": self.create_queue,
            "GetQueueUrl": self.get_queue_url,
            "ListQueues": self.list_queues,
            "DeleteQueue": self.delete_queue,
            "GetQueueAttributes": self.get_queue_attributes,
            "SetQueueAttributes": self.set_queue_attributes,
            "PurgeQueue": self.purge_queue,
            "TagQueue": self.tag_queue,
            "UntagQueue": self.untag_queue,
            "ListQueueTags": self.list_queue_tags,
            "ListDeadLetterSourceQueues": self.list_dead_letter_source_queues,
            "SendMessage": self.send_message,
            "SendMessageBatch": self.send_message_batch,
            "DeleteMessage": self.delete_message,
            "DeleteMessageBatch": self.delete_message_batch,
            "ChangeMessageVisibility": self.change_message_visibility,
            "ChangeMessageVisibilityBatch": self.change_message_visibility_batch,
        }
        self.async_handlers: dict[str, Callable[[Request], Awaitable[dict[str, Any]]]] = {
            "ReceiveMessage": self.receive_message,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(scope.get("squall.request_id", ""))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body: bytes = scope.get("squall.body") or b""
        query_string: bytes = scope.get("query_string", b"")
        legacy = query.is_query(headers, query_string)
        try:
            if legacy:
                operation, params = query.parse(body, query_string)
                if "QueueUrl" not in params and scope["path"].count("/") >= 2:
                    # Query-protocol clients may address the queue by the request's path instead.
                    params["QueueUrl"] = f"http://{headers.get('host', 'localhost')}{scope['path']}"
            else:
                operation = headers.get("x-amz-target", "").removeprefix(TARGET_PREFIX)
                params = _json_params(body)
            result = await self._dispatch(operation, Request(params, headers.get("host", "localhost")))
        except SquallError as exc:
            if legacy:
                error_headers = [(REQUEST_ID_HEADER, request_id.encode()), (b"content-type", query.CONTENT_TYPE)]
                await wire.send(send, exc.status, error_headers, query.render_error(exc, request_id))
            else:
                await wire.send(send, exc.status, wire.error_headers(exc, request_id), wire.error_body(exc))
            return
        if legacy:
            await wire.send(
                send, 200, [(b"content-type", query.CONTENT_TYPE)], query.render(operation, result, request_id)
            )
        else:
            await wire.send(send, 200, [(b"content-type", wire.CONTENT_TYPE)], json.dumps(result).encode())

    async def _dispatch(self, operation: str, request: Request) -> dict[str, Any]:
        if operation in self.async_handlers:
            return await self.async_handlers[operation](request)
        if operation in self.handlers:
            return await asyncio.to_thread(self.handlers[operation], request)
        raise UnknownOperation(f"Operation {operation or '(none)'} is not supported by Squall's SQS.")

    # --- helpers ------------------------------------------------------------------------------------
    def _url(self, request: Request, name: str) -> str:
        return f"http://{request.host}/{self.service.account_id}/{name}"

    def _name(self, request: Request) -> str:
        url = request.params.get("QueueUrl")
        if not url:
            raise MissingParameter("The request must contain the parameter QueueUrl.")
        parts = urlparse(str(url)).path.strip("/").split("/")
        if len(parts) != 2 or not parts[1]:
            # unverified: SQS's answer for a QueueUrl that is not a queue's URL
            raise InvalidAddress(f"The address {url} is not valid for this endpoint.")
        if parts[0] != self.service.account_id:
            raise QueueDoesNotExist()
        return parts[1]

    # --- queues -------------------------------------------------------------------------------------
    def create_queue(self, request: Request) -> dict[str, Any]:
        name = request.params.get("QueueName")
        if not name:
            raise MissingParameter("The request must contain the parameter QueueName.")
        name = str(name)
        given = {str(k): str(v) for k, v in (request.params.get("Attributes") or {}).items()}
        fifo = given.get("FifoQueue", "false").lower() == "true"
        if fifo and not _FIFO_NAME.fullmatch(name):
            # unverified: wording for a FIFO queue whose name lacks the .fifo suffix
            raise InvalidParameterValue(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, "
                "must end with .fifo suffix and be 1 to 80 in length."
            )
        if not fifo and not _NAME.fullmatch(name):
            # unverified: wording from SQS's documentation of queue names, as SDK users quote it
            raise InvalidParameterValue(
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
            )
        settings = qattrs.validate(given, fifo, self.service.kind_of, creating=True)
        tags = {str(k): str(v) for k, v in (request.params.get("tags") or {}).items()}
        self.service.create_queue(name, fifo, settings, tags)
        return {"QueueUrl": self._url(request, name)}

    def get_queue_url(self, request: Request) -> dict[str, Any]:
        name = str(request.params.get("QueueName") or "")
        owner = request.params.get("QueueOwnerAWSAccountId")
        if owner is not None and owner != self.service.account_id:
            raise QueueDoesNotExist()
        self.service.queue(name)
        return {"QueueUrl": self._url(request, name)}

    def list_queues(self, request: Request) -> dict[str, Any]:
        names = self.service.list_queues(str(request.params.get("QueueNamePrefix") or ""))
        limit = request.params.get("MaxResults")
        if limit is not None and not 1 <= int(limit) <= 1000:
            # unverified: wording of the MaxResults range error
            raise InvalidParameterValue(
                f"Value {limit} for parameter MaxResults is invalid. Reason: MaxResults must be an integer between "
                "1 and 1000."
            )
        token = request.params.get("NextToken")
        if token:
            try:
                after = base64.urlsafe_b64decode(str(token).encode()).decode()
            except (ValueError, UnicodeDecodeError):
                # unverified: SQS's answer to a NextToken it did not issue
                raise InvalidParameterValue("Invalid NextToken value.") from None
            names = [n for n in names if n > after]
        page = names[: int(limit) if limit is not None else 1000]
        result: dict[str, Any] = {}
        if page:
            # unverified: whether SQS's JSON protocol sends an empty QueueUrls list; we omit it, as the
            # query protocol did
            result["QueueUrls"] = [self._url(request, n) for n in page]
        if limit is not None and len(names) > len(page):
            result["NextToken"] = base64.urlsafe_b64encode(page[-1].encode()).decode()
        return result

    def delete_queue(self, request: Request) -> dict[str, Any]:
        self.service.delete_queue(self._name(request))
        return {}

    def get_queue_attributes(self, request: Request) -> dict[str, Any]:
        name = self._name(request)
        wanted = [str(n) for n in request.params.get("AttributeNames") or []]
        for attribute in wanted:
            if attribute != "All" and attribute not in qattrs.ALL_NAMES:
                raise InvalidAttributeName(f"Unknown Attribute {attribute}.")
        queue = self.service.queue(name)
        everything = "All" in wanted
        values: dict[str, str] = {
            **queue.attributes,
            "QueueArn": self.service.arn(name),
            "CreatedTimestamp": str(int(queue.created)),
            "LastModifiedTimestamp": str(int(queue.modified)),
        }
        if queue.fifo:
            values["FifoQueue"] = "true"
        if everything or any(n.startswith("ApproximateNumberOf") for n in wanted):
            counts = self.service.counts(name)
            values["ApproximateNumberOfMessages"] = str(counts.visible)
            values["ApproximateNumberOfMessagesNotVisible"] = str(counts.in_flight)
            values["ApproximateNumberOfMessagesDelayed"] = str(counts.delayed)
        chosen = values if everything else {n: values[n] for n in wanted if n in values}
        return {"Attributes": chosen} if chosen else {}

    def set_queue_attributes(self, request: Request) -> dict[str, Any]:
        name = self._name(request)
        queue = self.service.queue(name)
        given = {str(k): str(v) for k, v in (request.params.get("Attributes") or {}).items()}
        self.service.set_attributes(name, qattrs.validate(given, queue.fifo, self.service.kind_of, creating=False))
        return {}

    def purge_queue(self, request: Request) -> dict[str, Any]:
        self.service.purge(self._name(request))
        return {}

    def tag_queue(self, request: Request) -> dict[str, Any]:
        tags = {str(k): str(v) for k, v in (request.params.get("Tags") or {}).items()}
        self.service.change_tags(self._name(request), tags, [])
        return {}

    def untag_queue(self, request: Request) -> dict[str, Any]:
        self.service.change_tags(self._name(request), {}, [str(k) for k in request.params.get("TagKeys") or []])
        return {}

    def list_queue_tags(self, request: Request) -> dict[str, Any]:
        return {"Tags": self.service.queue(self._name(request)).tags}

    def list_dead_letter_source_queues(self, request: Request) -> dict[str, Any]:
        names = self.service.dead_letter_sources(self._name(request))
        return {"queueUrls": [self._url(request, n) for n in names]}

    # --- sending ------------------------------------------------------------------------------------
    def send_message(self, request: Request) -> dict[str, Any]:
        name = self._name(request)
        message = sending.outgoing(self.service.queue(name), request.params)
        (sent,) = self.service.send(name, [message], self.service.account_id)
        result: dict[str, Any] = {"MD5OfMessageBody": sent.md5_body, "MessageId": sent.message_id}
        if sent.md5_attributes:
            result["MD5OfMessageAttributes"] = sent.md5_attributes
        if sent.md5_system_attributes:
            result["MD5OfMessageSystemAttributes"] = sent.md5_system_attributes
        if sent.sequence_number:
            result["SequenceNumber"] = sent.sequence_number
        return result

    def send_message_batch(self, request: Request) -> dict[str, Any]:
        name = self._name(request)
        entries = wire.entries(request.params, "SendMessageBatchRequestEntry")
        queue = self.service.queue(name)
        total = sum(wire.entry_size(e) for e in entries)
        if total > qattrs.MAX_MESSAGE_BYTES:
            raise BatchRequestTooLong(
                f"Batch requests cannot be longer than {qattrs.MAX_MESSAGE_BYTES} bytes. You have sent {total} bytes."
            )
        if queue.fifo:
            sending.check_fifo_batch(queue, entries)
        failed: list[dict[str, Any]] = []
        accepted = []
        for entry in entries:
            try:
                accepted.append((entry["Id"], sending.outgoing(queue, entry)))
            except SqsError as exc:
                failed.append(wire.failure(entry["Id"], exc))
        sent = self.service.send(name, [m for _, m in accepted], self.service.account_id) if accepted else []
        successful = []
        for (entry_id, _), result in zip(accepted, sent, strict=True):
            item: dict[str, Any] = {
                "Id": entry_id,
                "MessageId": result.message_id,
                "MD5OfMessageBody": result.md5_body,
            }
            if result.md5_attributes:
                item["MD5OfMessageAttributes"] = result.md5_attributes
            if result.md5_system_attributes:
                item["MD5OfMessageSystemAttributes"] = result.md5_system_attributes
            if result.sequence_number:
                item["SequenceNumber"] = result.sequence_number
            successful.append(item)
        return {"Successful": successful, "Failed": failed}

    # --- receiving ----------------------------------------------------------------------------------
    async def receive_message(self, request: Request) -> dict[str, Any]:
        params = request.params
        name = self._name(request)
        limit = params.get("MaxNumberOfMessages")
        if limit is not None and not 1 <= int(limit) <= wire.MAX_BATCH:
            raise InvalidParameterValue(
                f"Value {limit} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, "
                "if provided."
            )
        wait = params.get("WaitTimeSeconds")
        if wait is not None and not 0 <= int(wait) <= 20:
            # unverified: wording as SDK users and emulators quote it
            raise InvalidParameterValue(
                f"Value {wait} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided."
            )
        visibility = params.get("VisibilityTimeout")
        if visibility is not None:
            wire.check_visibility(int(visibility))
        queue = await asyncio.to_thread(self.service.queue, name)
        wait_s = queue.number("ReceiveMessageWaitTimeSeconds") if wait is None else int(wait)
        deadline = time.monotonic() + wait_s
        while True:
            future = self.waiters.arm(name)
            try:
                got = await asyncio.to_thread(
                    self.service.receive, name, int(limit or 1), None if visibility is None else int(visibility)
                )
                remaining = deadline - time.monotonic()
                if got or remaining <= 0:
                    break
                soonest = await asyncio.to_thread(self.service.next_visible, name)
                if soonest is not None:
                    remaining = min(remaining, max(0.0, soonest - time.time()) + 0.01)
                await self.waiters.wait(future, remaining)
            finally:
                self.waiters.disarm(name, future)
        system = {
            str(n) for n in [*(params.get("AttributeNames") or []), *(params.get("MessageSystemAttributeNames") or [])]
        }
        names = [str(n) for n in params.get("MessageAttributeNames") or []]
        return {"Messages": [wire.message(m, system, names, self.service.arn) for m in got]}

    # --- deleting and hiding ------------------------------------------------------------------------
    def delete_message(self, request: Request) -> dict[str, Any]:
        name = self._name(request)
        handle = request.params.get("ReceiptHandle")
        if not handle:
            raise MissingParameter("The request must contain the parameter ReceiptHandle.")
        (outcome,) = self.service.delete(name, [str(handle)])
        if outcome is not None:
            raise outcome
        return {}

    def delete_message_batch(self, request: Request) -> dict[str, Any]:
        name = self._name(request)
        entries = wire.entries(request.params, "DeleteMessageBatchRequestEntry")
        outcomes = self.service.delete(name, [str(e.get("ReceiptHandle", "")) for e in entries])
        return wire.batch_result(entries, outcomes)

    def change_message_visibility(self, request: Request) -> dict[str, Any]:
        name = self._name(request)
        handle = request.params.get("ReceiptHandle")
        if not handle:
            raise MissingParameter("The request must contain the parameter ReceiptHandle.")
        seconds = int(request.params.get("VisibilityTimeout", 0))
        wire.check_visibility(seconds)
        (outcome,) = self.service.change_visibility(name, [(str(handle), seconds)])
        if outcome is not None:
            raise outcome
        return {}

    def change_message_visibility_batch(self, request: Request) -> dict[str, Any]:
        name = self._name(request)
        entries = wire.entries(request.params, "ChangeMessageVisibilityBatchRequestEntry")
        changes: list[tuple[str, int]] = []
        bad: dict[int, SqsError] = {}
        for i, entry in enumerate(entries):
            seconds = int(entry.get("VisibilityTimeout", 0))
            try:
                wire.check_visibility(seconds)
            except SqsError as exc:
                bad[i] = exc
            changes.append((str(entry.get("ReceiptHandle", "")), seconds))
        good = [c for i, c in enumerate(changes) if i not in bad]
        done = iter(self.service.change_visibility(name, good))
        outcomes: list[Exception | None] = [bad[i] if i in bad else next(done) for i in range(len(entries))]
        return wire.batch_result(entries, outcomes)


def _json_params(body: bytes) -> dict[str, Any]:
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        params = None
    if not isinstance(params, dict):
        # unverified: SQS's answer to a body that is not a JSON object
        raise InvalidParameterValue("The request body is not valid JSON.")
    return params
