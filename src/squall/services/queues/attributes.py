"""Queue attributes: defaults, the ones a client may set, and their validation.

Values are kept as SQS returns them: strings. ``RedrivePolicy`` is stored in SQS's normal form
(``{"deadLetterTargetArn":"...","maxReceiveCount":5}``), whatever spacing or number type the client sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from squall.services.queues.errors import InvalidAttributeName, InvalidAttributeValue, InvalidParameterValue

MAX_MESSAGE_BYTES = 262_144
DEFAULTS = {
    "DelaySeconds": "0",
    "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
    "MessageRetentionPeriod": "345600",
    "ReceiveMessageWaitTimeSeconds": "0",
    "VisibilityTimeout": "30",
    "SqsManagedSseEnabled": "true",
}
FIFO_DEFAULTS = {
    "ContentBasedDeduplication": "false",
    "DeduplicationScope": "queue",
    "FifoThroughputLimit": "perQueue",
}
#: Settable attributes that take an integer, with their inclusive ranges.
RANGES = {
    "DelaySeconds": (0, 900),
    "MaximumMessageSize": (1024, MAX_MESSAGE_BYTES),
    "MessageRetentionPeriod": (60, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": (0, 20),
    "VisibilityTimeout": (0, 43_200),
    "KmsDataKeyReusePeriodSeconds": (60, 86_400),
}
_FREE_TEXT = {"Policy", "KmsMasterKeyId", "RedriveAllowPolicy"}
_BOOLEANS = {"SqsManagedSseEnabled", "ContentBasedDeduplication", "FifoQueue"}
_FIFO_ONLY = {"ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"}
_ENUMS = {"DeduplicationScope": ("messageGroup", "queue"), "FifoThroughputLimit": ("perQueue", "perMessageGroupId")}
COMPUTED = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
)
SETTABLE = (*RANGES, *_FREE_TEXT, *_BOOLEANS, *_FIFO_ONLY, "RedrivePolicy")
ALL_NAMES = frozenset((*COMPUTED, *SETTABLE))

#: Looks up a queue by ARN: ``None`` if there is none, else whether it is a FIFO queue.
QueueKind = Callable[[str], bool | None]


def unknown(name: str) -> InvalidAttributeName:
    return InvalidAttributeName(f"Unknown Attribute {name}.")


def invalid(name: str, reason: str = "") -> InvalidAttributeValue:
    # unverified: the text of an out-of-range attribute (as SQS users report it, not from a recording)
    suffix = f" Reason: {reason}" if reason else ""
    return InvalidAttributeValue(f"Invalid value for the parameter {name}.{suffix}")


def validate(given: Mapping[str, Any], fifo: bool, kind: QueueKind, creating: bool) -> dict[str, str]:
    """The normal form of attributes a client sets on a (FIFO or standard) queue."""
    result: dict[str, str] = {}
    for name, raw in given.items():
        value = str(raw)
        if name not in SETTABLE:
            raise unknown(name)
        if name in _FIFO_ONLY and not fifo:
            raise unknown(name)
        if name == "FifoQueue":
            if not creating:
                if not fifo:
                    raise unknown(name)
                raise invalid(name, "Modifying queue type is not supported.")
            if value.lower() != "true" and fifo:
                raise invalid(name)
        if name in RANGES:
            low, high = RANGES[name]
            if not value.lstrip("-").isdigit() or not low <= int(value) <= high:
                raise invalid(name)
            value = str(int(value))
        elif name in _BOOLEANS:
            if value.lower() not in ("true", "false"):
                raise invalid(name)
            value = value.lower()
        elif name in _ENUMS and value not in _ENUMS[name]:
            raise invalid(name)
        elif name == "RedrivePolicy" and value:
            value = redrive_policy(value, fifo, kind)
        result[name] = value
    return result


def redrive_policy(raw: str, fifo: bool, kind: QueueKind) -> str:
    """A RedrivePolicy in SQS's normal form; InvalidParameterValue naming what is wrong."""

    def bad(reason: str) -> InvalidParameterValue:
        return InvalidParameterValue(f"Value {raw} for parameter RedrivePolicy is invalid. Reason: {reason}")

    try:
        policy = json.loads(raw)
    except ValueError:
        # unverified: SQS's reason for a RedrivePolicy that is not JSON
        raise bad("Redrive policy is not a valid JSON map.") from None
    if not isinstance(policy, dict):
        raise bad("Redrive policy is not a valid JSON map.")
    arn = policy.get("deadLetterTargetArn")
    if not isinstance(arn, str) or not arn.startswith("arn:") or len(arn.split(":")) != 6:
        raise bad("Invalid value for deadLetterTargetArn.")
    count = policy.get("maxReceiveCount")
    if isinstance(count, str) and count.isdigit():
        count = int(count)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
        # unverified: the reason's wording (as emulators and user reports spell it)
        raise bad(f"Invalid value for maxReceiveCount: {count}, valid values are from 1 to 1000 both inclusive.")
    target = kind(arn)
    if target is None:
        # unverified: the reason SQS gives for a dead-letter queue that does not exist
        raise bad("Dead letter target does not exist.")
    if target != fifo:
        # unverified: the reason SQS gives for mixing FIFO and standard queues
        raise bad("Dead-letter queue must be same type of queue as the source.")
    return json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": count}, separators=(",", ":"))
