"""The topic service's values: a topic, a subscription, a publish request, a delivery to make."""

from __future__ import annotations

from typing import Any

import msgspec

from squall.services.topics.messages import Attributes, Message


class Topic(msgspec.Struct, frozen=True):
    arn: str
    name: str
    fifo: bool
    attributes: dict[str, str]
    tags: dict[str, str]


class Subscription(msgspec.Struct, frozen=True):
    arn: str
    topic_arn: str
    protocol: str
    endpoint: str
    owner: str
    attributes: dict[str, str]
    confirmed: bool

    @property
    def listed_arn(self) -> str:
        """The ARN ListSubscriptions shows: ``PendingConfirmation`` until confirmed."""
        return self.arn if self.confirmed else "PendingConfirmation"


class Draft(msgspec.Struct, frozen=True):
    """A validated publish request (or batch entry), before the topic's own checks."""

    message: str
    subject: str | None
    attributes: Attributes
    structure: dict[str, str] | None = None
    group_id: str | None = None
    dedup_id: str | None = None


class Job(msgspec.Struct, frozen=True):
    """One pending delivery: a notification of ``message`` or a subscription confirmation ``document``."""

    id: int
    attempts: int
    subscription_arn: str
    protocol: str
    endpoint: str
    raw: bool
    retry_policy: dict[str, Any]
    message: Message | None
    document: dict[str, Any] | None
