"""What subscribers receive: the JSON notification document (HTTP/S, SQS), the subscription
confirmation, and Lambda's SNS event.

Squall holds no AWS signing certificate, so ``Signature`` is not an RSA signature a client could
verify: it is the base64 SHA-256 digest of SNS's string-to-sign, and ``SigningCertURL`` names a
certificate path on Squall's endpoint that does not exist.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import quote

from squall.services.topics.messages import Message, timestamp, typed_attributes

_SIGNED_NOTIFICATION = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_SIGNED_CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def _signature(document: dict[str, Any], fields: tuple[str, ...]) -> str:
    text = "".join(f"{field}\n{document[field]}\n" for field in fields if document.get(field) is not None)
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def cert_url(endpoint_url: str) -> str:
    return f"{endpoint_url}/SimpleNotificationService-squall.pem"


def unsubscribe_url(endpoint_url: str, subscription_arn: str) -> str:
    return f"{endpoint_url}/?Action=Unsubscribe&SubscriptionArn={quote(subscription_arn, safe=':')}"


def notification(message: Message, protocol: str, subscription_arn: str, endpoint_url: str) -> dict[str, Any]:
    """The JSON document SNS posts to HTTP/S endpoints and puts in SQS messages."""
    document: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message.message_id,
        "TopicArn": message.topic_arn,
    }
    if message.subject is not None:
        document["Subject"] = message.subject
    document["Message"] = message.text_for(protocol)
    document["Timestamp"] = timestamp(message.timestamp)
    if message.sequence_number is not None:
        document["SequenceNumber"] = message.sequence_number
    document["SignatureVersion"] = "1"
    document["Signature"] = _signature(document, _SIGNED_NOTIFICATION)
    document["SigningCertURL"] = cert_url(endpoint_url)
    document["UnsubscribeURL"] = unsubscribe_url(endpoint_url, subscription_arn)
    if message.attributes:
        document["MessageAttributes"] = typed_attributes(message.attributes)
    return document


def confirmation(topic_arn: str, token: str, message_id: str, instant: float, endpoint_url: str) -> dict[str, Any]:
    """The SubscriptionConfirmation document SNS posts to a new HTTP/S subscription."""
    subscribe_url = f"{endpoint_url}/?Action=ConfirmSubscription&TopicArn={quote(topic_arn, safe=':')}&Token={token}"
    document: dict[str, Any] = {
        "Type": "SubscriptionConfirmation",
        "MessageId": message_id,
        "Token": token,
        "TopicArn": topic_arn,
        "Message": (
            f"You have chosen to subscribe to the topic {topic_arn}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message."
        ),
        "SubscribeURL": subscribe_url,
        "Timestamp": timestamp(instant),
        "SignatureVersion": "1",
    }
    document["Signature"] = _signature(document, _SIGNED_CONFIRMATION)
    document["SigningCertURL"] = cert_url(endpoint_url)
    return document


def lambda_event(message: Message, subscription_arn: str, endpoint_url: str) -> dict[str, Any]:
    """Lambda's SNS event: one record, capitalised keys, ``Subject`` null when there is none."""
    sns: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message.message_id,
        "TopicArn": message.topic_arn,
        "Subject": message.subject,
        "Message": message.text_for("lambda"),
        "Timestamp": timestamp(message.timestamp),
        "SignatureVersion": "1",
    }
    sns["Signature"] = _signature(sns, _SIGNED_NOTIFICATION)
    sns["SigningCertUrl"] = cert_url(endpoint_url)
    sns["UnsubscribeUrl"] = unsubscribe_url(endpoint_url, subscription_arn)
    sns["MessageAttributes"] = typed_attributes(message.attributes)
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": sns,
            }
        ]
    }
