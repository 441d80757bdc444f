"""The queue service's values: a queue, a message to send, what a send and a receive return."""

from __future__ import annotations

import json

import msgspec

from squall.services.queues.messages import Attributes


class Queue(msgspec.Struct, frozen=True):
    """One queue: ``attributes`` holds every settable attribute, defaults included."""

    id: int
    name: str
    fifo: bool
    attributes: dict[str, str]
    tags: dict[str, str]
    created: float
    modified: float
    purged: float | None

    def number(self, name: str) -> int:
        return int(self.attributes[name])

    def redrive(self) -> tuple[str, int] | None:
        raw = self.attributes.get("RedrivePolicy")
        if not raw:
            return None
        policy = json.loads(raw)
        return str(policy["deadLetterTargetArn"]), int(policy["maxReceiveCount"])


class Outgoing(msgspec.Struct, frozen=True):
    """A validated message to enqueue."""

    body: str
    attributes: Attributes
    system_attributes: Attributes
    delay: int
    group_id: str | None = None
    dedup_id: str | None = None


class Sent(msgspec.Struct, frozen=True):
    message_id: str
    md5_body: str
    md5_attributes: str | None
    md5_system_attributes: str | None
    sequence_number: str | None


class Received(msgspec.Struct, frozen=True):
    """A message as one receive handed it out."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: Attributes
    system_attributes: Attributes
    sent: float
    receive_count: int
    first_receive: float
    group_id: str | None
    dedup_id: str | None
    sequence_number: str | None
    sender_id: str
    dlq_source: str | None


class Counts(msgspec.Struct, frozen=True):
    visible: int
    in_flight: int
    delayed: int
