"""The app's token-signing key: one RSA key pair, made on first use and kept in a table (the first
sandbox to make one wins a conditional put; the others read it), and published as the issuer's
OpenID discovery document and JWKS on the site bucket, where the JWT authorizer fetches them."""

import contextlib
import json
import os
import uuid

import boto3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

dynamodb = boto3.client("dynamodb")
s3 = boto3.client("s3")
ISSUER = os.environ["ISSUER"]


def current_key():
    """(kid, private key) of the app's signing key, making it if there is none yet."""
    found = _read()
    if found is None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        # If another sandbox made one first, its key is the one to use.
        with contextlib.suppress(dynamodb.exceptions.ConditionalCheckFailedException):
            dynamodb.put_item(
                TableName=os.environ["KEYS_TABLE"],
                Item={"id": {"S": "current"}, "kid": {"S": uuid.uuid4().hex[:16]}, "pem": {"S": pem}},
                ConditionExpression="attribute_not_exists(id)",
            )
        found = _read()
    kid, pem = found
    return kid, serialization.load_pem_private_key(pem.encode(), password=None)


def publish(kid, key):
    """Put the discovery document and the public key set where ``<issuer>/.well-known/...`` serves them."""
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    documents = {
        ".well-known/openid-configuration": {
            "issuer": ISSUER,
            "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"],
        },
        ".well-known/jwks.json": {"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]},
    }
    for name, document in documents.items():
        s3.put_object(
            Bucket=os.environ["SITE_BUCKET"],
            Key=name,
            Body=json.dumps(document).encode(),
            ContentType="application/json",
            CacheControl="max-age=300",
        )


def _read():
    key = {"id": {"S": "current"}}
    item = dynamodb.get_item(TableName=os.environ["KEYS_TABLE"], Key=key, ConsistentRead=True).get("Item")
    return None if item is None else (item["kid"]["S"], item["pem"]["S"])
