"""GET and POST /messages: the chat history, behind the API's JWT authorizer. The caller is the
token's ``sub``, which API Gateway hands over in ``requestContext.authorizer.jwt.claims``."""

import base64
import json
import os
import uuid
from datetime import UTC, datetime

import boto3

dynamodb = boto3.client("dynamodb")
HISTORY = 50  # messages a GET returns, the latest last
MAX_TEXT = 500


def handler(event, context):
    user = event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
    room = (event.get("queryStringParameters") or {}).get("room", "lobby")
    if event["requestContext"]["http"]["method"] == "POST":
        return post(event, room, user)
    items = dynamodb.query(
        TableName=os.environ["MESSAGES_TABLE"],
        KeyConditionExpression="room = :room",
        ExpressionAttributeValues={":room": {"S": room}},
        ScanIndexForward=False,
        Limit=HISTORY,
    )["Items"]
    return _answer(200, {"room": room, "messages": [_message(item) for item in reversed(items)]})


def post(event, room, user):
    try:
        body = event.get("body") or "{}"
        text = str(json.loads(base64.b64decode(body) if event.get("isBase64Encoded") else body)["text"]).strip()
    except (ValueError, KeyError, TypeError):
        return _answer(400, {"message": "send JSON with a text"})
    if not 0 < len(text) <= MAX_TEXT:
        return _answer(400, {"message": f"a message has 1 to {MAX_TEXT} characters"})
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    item = {
        "room": {"S": room},
        "sent": {"S": f"{now}#{uuid.uuid4().hex[:8]}"},
        "author": {"S": user},
        "text": {"S": text},
    }
    dynamodb.put_item(TableName=os.environ["MESSAGES_TABLE"], Item=item)
    return _answer(201, _message(item))


def _message(item):
    return {"author": item["author"]["S"], "text": item["text"]["S"], "sent": item["sent"]["S"].split("#")[0]}


def _answer(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
