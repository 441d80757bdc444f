"""POST /signup and POST /login: accounts in the users table (salted password hashes), and RS256
tokens for the chat API, signed with the app's key (see signing.py)."""

import base64
import json
import os
import re
import time

import boto3
import jwt
import signing
from passwords import DECOY, hash_password, verify_password

dynamodb = boto3.client("dynamodb")
USERNAME = re.compile(r"^[a-z0-9_-]{3,32}$")
TOKEN_LIFETIME_S = 3600
_key = None  # (kid, private key), once per sandbox


def handler(event, context):
    try:
        body = event.get("body") or "{}"
        form = json.loads(base64.b64decode(body) if event.get("isBase64Encoded") else body)
        username, password = str(form["username"]).lower(), str(form["password"])
    except (ValueError, KeyError, TypeError):
        return _answer(400, {"message": "send JSON with a username and a password"})
    if event["routeKey"] == "POST /signup":
        return sign_up(username, password)
    return log_in(username, password)


def sign_up(username, password):
    if not USERNAME.match(username) or len(password) < 8:
        return _answer(400, {"message": "a username of 3-32 letters, digits, - or _, and 8+ characters of password"})
    try:
        dynamodb.put_item(
            TableName=os.environ["USERS_TABLE"],
            Item={
                "username": {"S": username},
                "password": {"S": hash_password(password)},
                "created": {"N": str(int(time.time()))},
            },
            ConditionExpression="attribute_not_exists(username)",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return _answer(409, {"message": "that username is taken"})
    return _answer(201, {"username": username})


def log_in(username, password):
    item = dynamodb.get_item(TableName=os.environ["USERS_TABLE"], Key={"username": {"S": username}}).get("Item")
    stored = item["password"]["S"] if item else DECOY
    if not verify_password(password, stored) or item is None:
        return _answer(401, {"message": "wrong username or password"})
    kid, key = _signing_key()
    now = int(time.time())
    claims = {
        "iss": os.environ["ISSUER"],
        "aud": os.environ["AUDIENCE"],
        "sub": username,
        "iat": now,
        "exp": now + TOKEN_LIFETIME_S,
    }
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
    return _answer(200, {"token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S})


def _signing_key():
    global _key
    if _key is None:
        _key = signing.current_key()
        signing.publish(*_key)  # idempotent: every new sandbox (re)publishes the same keys
    return _key


def _answer(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
