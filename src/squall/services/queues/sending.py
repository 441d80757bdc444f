"""Checks a SendMessage (or batch entry) against its queue and turns it into an ``Outgoing`` message."""

from __future__ import annotations

import hashlib
from typing import Any

from squall.services.queues import messages
from squall.services.queues.errors import InvalidParameterValue, MissingParameter
from squall.services.queues.models import Outgoing, Queue

MAX_DELAY_S = 900
_NOT_FOR_QUEUE_TYPE = "The request include parameter that is not valid for this queue type."
NEEDS_GROUP = "The request must contain the parameter MessageGroupId."
NEEDS_DEDUP = (
    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly"
)


def outgoing(queue: Queue, params: dict[str, Any]) -> Outgoing:
    """The message ``params`` describe, validated for ``queue``; raises the error SQS would."""
    body = params.get("MessageBody")
    if body is None or body == "":
        # unverified: SQS's answer for an empty body (MissingParameter, as for an absent one)
        raise MissingParameter("The request must contain the parameter MessageBody.")
    body = str(body)
    messages.check_body(body)
    attrs = messages.attributes(params.get("MessageAttributes"))
    system = messages.attributes(params.get("MessageSystemAttributes"), system=True)
    limit = queue.number("MaximumMessageSize")
    if messages.size_of(body, attrs) > limit:
        raise InvalidParameterValue(
            f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."
        )
    raw_delay = params.get("DelaySeconds")
    group = params.get("MessageGroupId")
    dedup = params.get("MessageDeduplicationId")
    if raw_delay is not None and not 0 <= int(raw_delay) <= MAX_DELAY_S:
        # unverified: wording of the DelaySeconds range error
        raise InvalidParameterValue(
            f"Value {raw_delay} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= "
            f"{MAX_DELAY_S}."
        )
    if queue.fifo:
        if raw_delay is not None:
            raise InvalidParameterValue(
                f"Value {raw_delay} for parameter DelaySeconds is invalid. Reason: {_NOT_FOR_QUEUE_TYPE}"
            )
        if not group:
            raise MissingParameter(NEEDS_GROUP)
        if not dedup:
            if queue.attributes.get("ContentBasedDeduplication") != "true":
                raise InvalidParameterValue(NEEDS_DEDUP)
            dedup = content_dedup_id(body)
        delay = queue.number("DelaySeconds")
    else:
        if dedup is not None:
            raise InvalidParameterValue(
                f"Value {dedup} for parameter MessageDeduplicationId is invalid. Reason: {_NOT_FOR_QUEUE_TYPE}"
            )
        delay = queue.number("DelaySeconds") if raw_delay is None else int(raw_delay)
    return Outgoing(
        body=body,
        attributes=attrs,
        system_attributes=system,
        delay=delay,
        group_id=str(group) if group else None,
        dedup_id=str(dedup) if dedup else None,
    )


def check_fifo_batch(queue: Queue, entries: list[dict[str, Any]]) -> None:
    """A FIFO batch with an entry lacking its group or deduplication id fails as a whole."""
    for entry in entries:
        if not entry.get("MessageGroupId"):
            raise InvalidParameterValue(NEEDS_GROUP)
        if not entry.get("MessageDeduplicationId") and queue.attributes.get("ContentBasedDeduplication") != "true":
            raise InvalidParameterValue(NEEDS_DEDUP)


def content_dedup_id(body: str) -> str:
    """The deduplication id of ContentBasedDeduplication: SHA-256 of the body."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
