"""Presigned URLs in Signature Version 2 (``AWSAccessKeyId``, ``Expires``, ``Signature``).

boto3's ``generate_presigned_url`` for S3 still writes these unless the client is configured with
``signature_version="s3v4"``, so S3 endpoints accept them. The string to sign is the method, the
``Content-MD5`` and ``Content-Type`` (the query's copies win, as botocore moves them there), the
``Expires`` epoch, the ``x-amz-*`` values sorted by name, and the resource: ``/bucket/key`` as sent
plus the sorted subresources (``?uploadId=...``, ``?response-content-type=...``). The signature is
the base64 HMAC-SHA1 of it under the secret key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from squall.errors import AccessDenied, InvalidSignature, UnrecognizedClient
from squall.services.buckets.addressing import bucket_from_host

PARAMS = ("AWSAccessKeyId", "Expires", "Signature")
#: Query parameters that are part of the signed resource (S3's "sub-resources" and overrides).
SUBRESOURCES = frozenset(
    [
        "accelerate",
        "acl",
        "cors",
        "defaultObjectAcl",
        "location",
        "logging",
        "partNumber",
        "policy",
        "requestPayment",
        "torrent",
        "versioning",
        "versionId",
        "versions",
        "website",
        "uploads",
        "uploadId",
        "response-content-type",
        "response-content-language",
        "response-expires",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "delete",
        "lifecycle",
        "tagging",
        "restore",
        "storageClass",
        "notification",
        "replication",
        "analytics",
        "metrics",
        "inventory",
        "select",
        "select-type",
        "object-lock",
    ]
)
INVALID_KEY = "The AWS Access Key Id you provided does not exist in our records."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your key and signing method."
)


def is_presigned_v2(query: Sequence[tuple[str, str]], headers: Mapping[str, Sequence[str]]) -> bool:
    if "authorization" in headers or not query:
        return False
    names = {name for name, _ in query}
    return all(p in names for p in PARAMS) and "X-Amz-Signature" not in names


def verify(
    keys: Mapping[str, str],
    now: datetime,
    method: str,
    raw_path: bytes,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, Sequence[str]],
) -> str:
    """The access key id that signed this presigned request; AccessDenied family otherwise."""
    params = dict(query)
    secret = keys.get(params["AWSAccessKeyId"])
    if secret is None:
        raise UnrecognizedClient(INVALID_KEY)
    try:
        expires = int(params["Expires"])
    except ValueError:
        raise AccessDenied("Request has expired") from None  # unverified: S3's answer to a non-numeric Expires
    moment = now.replace(tzinfo=UTC) if now.tzinfo is None else now
    if moment.timestamp() > expires:
        raise AccessDenied("Request has expired")

    def value(name: str) -> str:
        for key, item in query:
            if key.lower() == name:
                return item.strip()
        return headers.get(name, [""])[0].strip()

    amz = {name.lower(): item for name, item in query if name.lower().startswith("x-amz-")}
    for name, items in headers.items():
        if name.startswith("x-amz-") and name not in amz:
            amz[name] = ",".join(v.strip() for v in items)
    path = raw_path.decode("utf-8", "replace") or "/"
    bucket = bucket_from_host(headers.get("host", [""])[0])
    if bucket is not None:
        path = f"/{bucket}{path}"
    signed_params = sorted((name, item) for name, item in query if name in SUBRESOURCES)
    if signed_params:
        path += "?" + "&".join(f"{name}={item}" if item else name for name, item in signed_params)
    string_to_sign = "\n".join(
        [method.upper(), value("content-md5"), value("content-type"), params["Expires"]]
        + [f"{name}:{amz[name]}" for name in sorted(amz)]
        + [path]
    )
    expected = base64.b64encode(hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()).decode()
    if not hmac.compare_digest(expected, params["Signature"]):
        raise InvalidSignature(SIGNATURE_MISMATCH)
    return params["AWSAccessKeyId"]
