"""The alert webhook, behind a function URL: the topic's HTTP subscriber.

SNS first posts a ``SubscriptionConfirmation``: the webhook confirms it (ConfirmSubscription with
its token), for its own topic only, since the URL is open. Each ``Notification`` after that is an
alert, kept in a table under its message id (so a redelivery does not count twice).
"""

import base64
import json
import os

import boto3

sns = boto3.client("sns")
alerts = boto3.resource("dynamodb").Table(os.environ["ALERTS_TABLE"])
TOPIC = os.environ["ALARM_TOPIC"]


def handler(event, context):
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    kind = event.get("headers", {}).get("x-amz-sns-message-type")
    try:
        message = json.loads(body)
    except ValueError:
        return answer(400, "not an SNS message")
    if message.get("TopicArn") != TOPIC:
        return answer(403, "not our topic")
    if kind == "SubscriptionConfirmation":
        sns.confirm_subscription(TopicArn=TOPIC, Token=message["Token"])
        print(f"confirmed the subscription to {TOPIC}")
        return answer(200, "confirmed")
    if kind == "Notification":
        alert = json.loads(message["Message"])
        alerts.put_item(
            Item={
                "message_id": message["MessageId"],
                "subject": message.get("Subject") or "",
                "sent": message["Timestamp"],
                **alert,
            }
        )
        print(f"alert {message['MessageId']}: {alert['transactions']} transactions from {alert['window_start']}")
        return answer(200, "recorded")
    return answer(400, f"unexpected message type {kind}")


def answer(status, text):
    return {"statusCode": status, "headers": {"content-type": "text/plain"}, "body": text}
