"""Checks of what clients set: topic and subscription attributes, subscription endpoints, and
whether a message passes a subscription's filter policy."""

from __future__ import annotations

import json
from typing import Any

from squall.services.topics import attributes as tattrs
from squall.services.topics.errors import InvalidParameter
from squall.services.topics.messages import Message, body_view, filter_view
from squall.services.topics.models import Subscription, Topic
from squall.sources.filters import matches_any

PROTOCOLS = ("http", "https", "email", "email-json", "sms", "sqs", "application", "lambda", "firehose")
#: Protocols Squall delivers to; others are refused rather than stored and never served.
#: sms and email go to a durable outbox (`squall outbox`): nothing real can be sent from here.
OUTBOX_PROTOCOLS = ("sms", "email", "email-json")
DELIVERED = ("http", "https", "sqs", "lambda", *OUTBOX_PROTOCOLS)
#: Subscriptions that stay pending until the subscriber confirms them.
CONFIRMED_BY_SUBSCRIBER = ("http", "https", "email", "email-json")


def topic_attributes(given: dict[str, str], fifo: bool) -> dict[str, str]:
    stored: dict[str, str] = {}
    for name, value in given.items():
        if name in tattrs.TOPIC_CREATE_ONLY:
            continue
        if name not in tattrs.TOPIC_SETTABLE or (
            name in ("ContentBasedDeduplication", "FifoThroughputScope") and not fifo
        ):
            raise InvalidParameter("Invalid parameter: AttributeName")
        if name == "ContentBasedDeduplication":
            value = tattrs.check_boolean(name, value)
        if name == "DeliveryPolicy" and value:
            tattrs.check_delivery_policy(name, value, subscription=False)
        if name == "FifoThroughputScope" and value not in ("Topic", "MessageGroup"):
            raise InvalidParameter("Invalid parameter: FifoThroughputScope")  # unverified
        stored[name] = value
    if fifo:
        stored["FifoTopic"] = "true"
        stored.setdefault("ContentBasedDeduplication", "false")
    return stored


def subscription_attributes(protocol: str, given: dict[str, str]) -> dict[str, str]:
    stored: dict[str, str] = {}
    for name, value in given.items():
        if name not in tattrs.SUBSCRIPTION_SETTABLE:
            raise InvalidParameter("Invalid parameter: Attributes Reason: Unknown attribute")  # unverified
        if name == "RawMessageDelivery":
            value = tattrs.check_boolean(name, value)
            if value == "true" and protocol not in tattrs.RAW_DELIVERY_PROTOCOLS:
                raise InvalidParameter(
                    f"Invalid parameter: Attributes Reason: Delivery protocol [{protocol}] does not support raw "
                    "message delivery."
                )
        if name == "DeliveryPolicy":
            if protocol not in ("http", "https"):
                # unverified: wording
                raise InvalidParameter("Invalid parameter: DeliveryPolicy: Delivery policy applies only to HTTP/S")
            tattrs.check_delivery_policy(name, value, subscription=True)
        if name == "FilterPolicyScope" and value not in tattrs.FILTER_SCOPES:
            # unverified: wording
            raise InvalidParameter(
                "Invalid parameter: Attributes Reason: FilterPolicyScope: Invalid value "
                f"[{value}]. Please use either MessageBody or MessageAttributes"
            )
        stored[name] = value
    if "FilterPolicy" in stored:
        stored.setdefault("FilterPolicyScope", "MessageAttributes")
        tattrs.check_filter_policy(stored["FilterPolicy"], stored["FilterPolicyScope"])
    return stored


def check_endpoint(topic: Topic, protocol: str, endpoint: str) -> None:
    if protocol not in PROTOCOLS:
        raise InvalidParameter(f"Invalid parameter: Amazon SNS does not support this protocol string: {protocol}")
    if protocol not in DELIVERED:
        # Squall cannot reach mail, phones or mobile platforms: refused rather than stored and never delivered.
        raise InvalidParameter(f"Invalid parameter: Squall does not deliver to protocol {protocol}")
    if not endpoint:
        raise InvalidParameter("Invalid parameter: Endpoint")  # unverified
    if protocol in ("http", "https") and not endpoint.startswith(f"{protocol}://"):
        raise InvalidParameter("Invalid parameter: Endpoint must match the specified protocol")
    if protocol == "sqs":
        parts = endpoint.split(":")
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs":
            raise InvalidParameter("Invalid parameter: SQS endpoint ARN")
        if endpoint.endswith(".fifo") and not topic.fifo:
            raise InvalidParameter(
                "Invalid parameter: Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to "
                "standard SNS topics"
            )
    if protocol == "lambda":
        parts = endpoint.split(":")
        if len(parts) not in (7, 8) or parts[0] != "arn" or parts[2] != "lambda" or parts[5] != "function":
            raise InvalidParameter("Invalid parameter: Lambda endpoint ARN")
    if topic.fifo and protocol != "sqs":
        # unverified: wording (FIFO topics deliver to SQS queues only)
        raise InvalidParameter(f"Invalid parameter: Invalid protocol type: {protocol}")


def filter_policy(sub: Subscription) -> dict[str, Any] | None:
    text = sub.attributes.get("FilterPolicy")
    return json.loads(text) if text else None


def passes(policy: dict[str, Any] | None, sub: Subscription, message: Message) -> bool:
    if policy is None:
        return True
    if sub.attributes.get("FilterPolicyScope") == "MessageBody":
        view = body_view(message.text_for(sub.protocol))
        return view is not None and matches_any([policy], view)
    return matches_any([policy], filter_view(message.attributes))
