"""Async invocation destinations: the invocation record (spec section 4) and where it is sent.

A ``Destination`` delivers one record. Functions are the only kind Squall can reach today; queues,
topics and buses plug in as further ``Destination`` classes once those services exist.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

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

    def __init__(self, invoke_event: InvokeEvent) -> None:
        self.invoke_event = invoke_event
        self.delivery_failures = 0

    def for_arn(self, arn: str) -> Destination:
        if ":lambda:" in arn and ":function:" in arn:
            return FunctionDestination(arn, self.invoke_event)
        return UnsupportedDestination(arn)

    async def send(self, arn: str, record: dict[str, Any]) -> None:
        if not await self.for_arn(arn).deliver(record):
            self.delivery_failures += 1
