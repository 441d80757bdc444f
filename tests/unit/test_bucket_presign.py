"""Presigned S3 URLs through the front door's verifier: Signature Version 2 (boto3's default for
S3) and SigV4 query auth, both as botocore's own presigners write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import HmacV1QueryAuth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from squall.api.sigv4 import SigV4Verifier
from squall.errors import AccessDenied, InvalidSignature, UnrecognizedClient
from squall.services.buckets.addressing import bucket_from_host
from squall.services.buckets.errors import s3_auth_error

KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
HOST = "127.0.0.1:8990"

Wire = tuple[str, bytes, bytes, list[tuple[bytes, bytes]]]


def presign_v2(method: str, url: str, expires: int = 60, auth_path: str | None = None) -> Wire:
    request = AWSRequest(method=method, url=url)
    if auth_path is not None:
        request.auth_path = auth_path
    HmacV1QueryAuth(Credentials(KEY, SECRET), expires=expires).add_auth(request)
    return _wire(method, request.url)


def presign_v4(method: str, url: str, expires: int = 60) -> Wire:
    request = AWSRequest(method=method, url=url)
    S3SigV4QueryAuth(Credentials(KEY, SECRET), "s3", "us-east-1", expires=expires).add_auth(request)
    return _wire(method, request.prepare().url)


def _wire(method: str, url: str) -> Wire:
    parts = urlsplit(url)
    return method, parts.path.encode(), parts.query.encode(), [(b"host", parts.netloc.encode())]


def verifier(offset: timedelta = timedelta()) -> SigV4Verifier:
    return SigV4Verifier({KEY: SECRET}, "us-east-1", lambda: datetime.now(UTC) + offset)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/bucket/some%20key/with%2Bplus"),
        ("PUT", "/bucket/k"),
        ("GET", "/bucket/k?response-content-type=text%2Fplain"),
        ("GET", "/bucket/k?uploadId=abc"),
    ],
)
def test_signature_v2_presigned_urls_are_accepted(method: str, path: str) -> None:
    method, raw_path, query, headers = presign_v2(method, f"http://{HOST}{path}")
    signed = verifier().verify(method, raw_path, query, headers, b"")
    assert (signed.access_key_id, signed.service) == (KEY, "s3")


def test_signature_v2_virtual_host_signs_the_bucket_in_the_resource() -> None:
    method, raw_path, query, _ = presign_v2("GET", f"http://{HOST}/k", auth_path="/bucket/k")
    headers = [(b"host", b"bucket.localhost:8990")]
    assert verifier().verify(method, raw_path, query, headers, b"").service == "s3"


def test_signature_v2_refusals() -> None:
    method, raw_path, query, headers = presign_v2("GET", f"http://{HOST}/bucket/k")
    with pytest.raises(InvalidSignature) as mismatch:
        verifier().verify(method, b"/bucket/other", query, headers, b"")
    assert s3_auth_error(mismatch.value).code == "SignatureDoesNotMatch"
    with pytest.raises(InvalidSignature):
        verifier().verify("PUT", raw_path, query, headers, b"")
    with pytest.raises(AccessDenied, match="Request has expired"):
        verifier(timedelta(seconds=61)).verify(method, raw_path, query, headers, b"")
    unknown = query.replace(KEY.encode(), b"AKIAUNKNOWN")
    with pytest.raises(UnrecognizedClient) as info:
        verifier().verify(method, raw_path, unknown, headers, b"")
    assert s3_auth_error(info.value).code == "InvalidAccessKeyId"


def test_signature_v4_presigned_s3_urls() -> None:
    method, raw_path, query, headers = presign_v4("PUT", f"http://{HOST}/bucket/a%20b%3Ac")
    assert verifier().verify(method, raw_path, query, headers, b"any body").service == "s3"
    with pytest.raises(AccessDenied, match="Request has expired"):
        verifier(timedelta(seconds=61)).verify(method, raw_path, query, headers, b"")
    with pytest.raises(InvalidSignature):
        verifier().verify(method, b"/bucket/a%20b%3Ad", query, headers, b"")


@pytest.mark.parametrize(
    ("host", "bucket"),
    [
        ("bucket.localhost:8990", "bucket"),
        ("my.dotted.bucket.s3.localhost", "my.dotted.bucket"),
        ("s3.localhost:8990", None),
        ("localhost:8990", None),
        ("127.0.0.1:8990", None),
        ("[::1]:8990", None),
    ],
)
def test_virtual_host_addressing(host: str, bucket: str | None) -> None:
    assert bucket_from_host(host) == bucket
