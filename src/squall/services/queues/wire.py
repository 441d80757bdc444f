"""SQS's JSON shapes: batch entries and results, received messages, and errors with their legacy code."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from starlette.types import Send

from squall.api.errors import REQUEST_ID_HEADER
from squall.errors import SquallError
from squall.services.queues import checksums, messages
from squall.services.queues.errors import (
    BatchEntryIdsNotDistinct,
    EmptyBatchRequest,
    InvalidBatchEntryId,
    InvalidParameterValue,
    SqsError,
    TooManyEntriesInBatchRequest,
)
from squall.services.queues.models import Received

CONTENT_TYPE = b"application/x-amz-json-1.0"
MAX_BATCH = 10
MAX_VISIBILITY_S = 43_200
_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
_SYSTEM_NAMES = (
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageDeduplicationId",
    "MessageGroupId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


def entries(params: dict[str, Any], entry_shape: str) -> list[dict[str, Any]]:
    entries = list(params.get("Entries") or [])
    if not entries:
        # unverified: wording of the empty-batch error
        raise EmptyBatchRequest(f"There should be at least one {entry_shape} in the request.")
    if len(entries) > MAX_BATCH:
        raise TooManyEntriesInBatchRequest(
            f"Maximum number of entries per request are {MAX_BATCH}. You have sent {len(entries)}."
        )
    seen: set[str] = set()
    for entry in entries:
        entry_id = str(entry.get("Id", ""))
        if not _BATCH_ID.fullmatch(entry_id):
            raise InvalidBatchEntryId(
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
                "It can be at most 80 letters long."
            )
        if entry_id in seen:
            # unverified: wording of the repeated-id error
            raise BatchEntryIdsNotDistinct(f"Id {entry_id} repeated.")
        seen.add(entry_id)
    return entries


def entry_size(entry: dict[str, Any]) -> int:
    try:
        attrs = messages.attributes(entry.get("MessageAttributes"))
    except SqsError:
        attrs = {}
    return messages.size_of(str(entry.get("MessageBody", "")), attrs)


def failure(entry_id: str, exc: SquallError) -> dict[str, Any]:
    code = getattr(exc, "query_code", exc.code)
    return {"Id": entry_id, "SenderFault": exc.status < 500, "Code": code, "Message": exc.message}


def batch_result(entries: list[dict[str, Any]], outcomes: list[Exception | None]) -> dict[str, Any]:
    successful: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for entry, outcome in zip(entries, outcomes, strict=True):
        if outcome is None:
            successful.append({"Id": entry["Id"]})
        elif isinstance(outcome, SquallError):
            failed.append(failure(str(entry["Id"]), outcome))
        else:
            raise outcome
    return {"Successful": successful, "Failed": failed}


def check_visibility(seconds: int) -> None:
    if not 0 <= seconds <= MAX_VISIBILITY_S:
        # unverified: wording of the VisibilityTimeout range error
        raise InvalidParameterValue(
            f"Value {seconds} for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= "
            f"{MAX_VISIBILITY_S}, if provided."
        )


def message(message: Received, system: set[str], names: list[str], arn: Callable[[str], str]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "MessageId": message.message_id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": checksums.md5_of_body(message.body),
        "Body": message.body,
    }
    values = {
        "SenderId": message.sender_id,
        "SentTimestamp": str(int(message.sent * 1000)),
        "ApproximateReceiveCount": str(message.receive_count),
        "ApproximateFirstReceiveTimestamp": str(int(message.first_receive * 1000)),
        "SequenceNumber": message.sequence_number,
        "MessageDeduplicationId": message.dedup_id,
        "MessageGroupId": message.group_id,
        "AWSTraceHeader": message.system_attributes.get("AWSTraceHeader", {}).get("StringValue"),
        "DeadLetterQueueSourceArn": message.dlq_source,
    }
    wanted = _SYSTEM_NAMES if "All" in system else [n for n in _SYSTEM_NAMES if n in system]
    chosen = {n: values[n] for n in wanted if values[n] is not None}
    if chosen:
        result["Attributes"] = chosen
    attrs = {
        n: v
        for n, v in message.attributes.items()
        if any(w in ("All", ".*") or n == w or (w.endswith(".*") and n.startswith(w[:-2])) for w in names)
    }
    if attrs:
        result["MD5OfMessageAttributes"] = checksums.md5_of_attributes(messages.decoded(attrs))
        result["MessageAttributes"] = attrs
    return result


def error_headers(exc: SquallError, request_id: str) -> list[tuple[bytes, bytes]]:
    headers = [(REQUEST_ID_HEADER, request_id.encode()), (b"content-type", CONTENT_TYPE)]
    query_code = getattr(exc, "query_code", None)
    if query_code:
        side = "Sender" if exc.status < 500 else "Receiver"
        headers.append((b"x-amzn-query-error", f"{query_code};{side}".encode()))
    return headers


def error_body(exc: SquallError) -> bytes:
    shape = f"com.amazonaws.sqs#{exc.code}" if isinstance(exc, SqsError) else exc.code
    return json.dumps({"__type": shape, "message": exc.message}).encode()


async def send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
