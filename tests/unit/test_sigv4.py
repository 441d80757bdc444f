"""SigV4 verification against requests signed by botocore's real signers."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from squall.api.sigv4 import SigV4Verifier, credential_scope_service, parse_credential_scope
from squall.errors import (
    AccessDenied,
    ContentSHA256Mismatch,
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    UnrecognizedClient,
)

KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
ENDPOINT = "http://127.0.0.1:8990"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
ARN_PATH = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Amy-fn/invocations"

Wire = tuple[str, bytes, bytes, list[tuple[bytes, bytes]], bytes]


def sign(
    method: str,
    path_and_query: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    service: str = "lambda",
    region: str = REGION,
    key: str = KEY,
    secret: str = SECRET,
    signer: type[SigV4Auth] = SigV4Auth,
    expires: int | None = None,
) -> Wire:
    """Sign a request with botocore and return it as it would arrive on the wire."""
    request = AWSRequest(method=method, url=ENDPOINT + path_and_query, data=body, headers=headers or {})
    credentials = Credentials(key, secret)
    if expires is not None:
        assert issubclass(signer, SigV4QueryAuth)
        signer(credentials, service, region, expires=expires).add_auth(request)
    else:
        signer(credentials, service, region).add_auth(request)
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    wire_headers = [(b"host", url.netloc.encode())]
    wire_headers += [(k.lower().encode(), str(v).encode()) for k, v in prepared.headers.items()]
    raw_body = prepared.body or b""
    assert isinstance(raw_body, bytes | str)
    return (
        method,
        url.path.encode(),
        url.query.encode(),
        wire_headers,
        bytes(raw_body, "utf-8") if isinstance(raw_body, str) else raw_body,
    )


def verifier(clock: datetime | None = None, **kwargs: bool) -> SigV4Verifier:
    return SigV4Verifier({KEY: SECRET}, REGION, (lambda: clock) if clock else None, **kwargs)


def replace_header(wire: Wire, name: bytes, value: bytes) -> Wire:
    method, path, query, headers, body = wire
    return method, path, query, [(k, value if k == name else v) for k, v in headers], body


def amz_date(wire: Wire) -> str:
    return dict(wire[3])[b"x-amz-date"].decode()


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


# --- accepted -------------------------------------------------------------------------------------


def test_accepts_a_signed_request_and_reports_who_signed_it() -> None:
    wire = sign("GET", "/2015-03-31/functions")
    signed = verifier().verify(*wire)
    assert signed.access_key_id == KEY
    assert signed.service == "lambda"
    assert signed.region == REGION
    assert stamp(signed.date) == amz_date(wire)
    assert signed.date.tzinfo is not None


def test_accepts_function_arns_whose_colons_are_percent_encoded_in_the_path() -> None:
    wire = sign("POST", ARN_PATH + "?Qualifier=prod", b'{"hello": "world"}')
    assert b"%3A" in wire[1]
    assert verifier().verify(*wire).service == "lambda"


def test_accepts_several_query_parameters_with_reserved_characters() -> None:
    wire = sign("GET", "/2015-03-31/functions/?MaxItems=5&Marker=a%20b%2Fc%2Bd~e&FunctionVersion=ALL")
    verifier().verify(*wire)


def test_query_parameter_order_on_the_wire_does_not_matter() -> None:
    method, path, _, headers, body = sign("GET", "/2015-03-31/functions/?b=2&a=1&c=3")
    verifier().verify(method, path, b"c=3&a=1&b=2", headers, body)


@pytest.mark.parametrize("body", [b"", bytes(range(256)) * 4], ids=["empty", "binary"])
def test_accepts_empty_and_binary_bodies(body: bytes) -> None:
    verifier().verify(*sign("POST", ARN_PATH, body))


def test_accepts_repeated_headers_and_extra_spaces_in_values() -> None:
    wire = sign("POST", ARN_PATH, b"{}", {"X-Amz-Client-Context": "  a   b  "})
    verifier().verify(*wire)


def test_accepts_a_request_dated_by_the_date_header() -> None:
    # botocore signs with the Date header instead of X-Amz-Date when the request already has one.
    wire = sign("GET", "/2015-03-31/functions", headers={"Date": "Mon, 01 Jan 2024 00:00:00 GMT"})
    names = [name for name, _ in wire[3]]
    assert b"date" in names and b"x-amz-date" not in names
    verifier().verify(*wire)


def test_unsigned_headers_may_change_in_transit() -> None:
    wire = sign("GET", "/2015-03-31/functions")
    method, path, query, headers, body = wire
    verifier().verify(method, path, query, [*headers, (b"user-agent", b"proxy/1.0")], body)


def test_s3_signs_the_path_as_sent_and_hashes_the_payload_in_a_header() -> None:
    wire = sign("PUT", "/bucket/dir/a%20b%3Ac.txt", b"object body", service="s3", signer=S3SigV4Auth)
    assert b"x-amz-content-sha256" in dict(wire[3])
    assert verifier().verify(*wire).service == "s3"


# --- refused --------------------------------------------------------------------------------------


def test_refuses_a_changed_body_with_aws_message() -> None:
    method, path, query, headers, _ = sign("POST", ARN_PATH, b'{"amount": 1}')
    with pytest.raises(InvalidSignature) as caught:
        verifier().verify(method, path, query, headers, b'{"amount": 1000}')
    assert caught.value.message == MISMATCH
    assert (caught.value.status, caught.value.code) == (403, "InvalidSignatureException")


@pytest.mark.parametrize(
    ("part", "tamper"),
    [
        ("signed header", lambda w: replace_header(w, b"x-amz-invocation-type", b"Event")),
        ("path", lambda w: (w[0], w[1].replace(b"my-fn", b"other"), *w[2:])),
        ("query", lambda w: (w[0], w[1], b"Qualifier=dev", *w[3:])),
        ("method", lambda w: ("PUT", *w[1:])),
        ("host", lambda w: replace_header(w, b"host", b"evil.example:8990")),
    ],
)
def test_refuses_any_change_to_a_signed_part(part: str, tamper: Callable[[Wire], Wire]) -> None:
    wire = sign("POST", ARN_PATH + "?Qualifier=prod", b"{}", {"X-Amz-Invocation-Type": "RequestResponse"})
    verifier().verify(*wire)
    with pytest.raises(InvalidSignature, match=re.escape(MISMATCH)):
        verifier().verify(*tamper(wire))


def test_refuses_the_wrong_secret() -> None:
    with pytest.raises(InvalidSignature, match=re.escape(MISMATCH)):
        verifier().verify(*sign("GET", "/2015-03-31/functions", secret="not-the-secret"))


def test_refuses_an_unknown_access_key() -> None:
    with pytest.raises(UnrecognizedClient) as caught:
        verifier().verify(*sign("GET", "/2015-03-31/functions", key="AKIAUNKNOWNUNKNOWN00"))
    assert caught.value.message == "The security token included in the request is invalid."
    assert (caught.value.status, caught.value.code) == (403, "UnrecognizedClientException")


def test_refuses_an_unsigned_request() -> None:
    with pytest.raises(MissingAuthenticationToken) as caught:
        verifier().verify("GET", b"/2015-03-31/functions", b"", [(b"host", b"localhost")], b"")
    assert caught.value.status == 403
    assert caught.value.code == "MissingAuthenticationTokenException"


def test_refuses_a_request_older_than_five_minutes() -> None:
    wire = sign("GET", "/2015-03-31/functions")
    now = datetime.strptime(amz_date(wire), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) + timedelta(minutes=5, seconds=1)
    with pytest.raises(InvalidSignature) as caught:
        verifier(now).verify(*wire)
    assert caught.value.message == (
        f"Signature expired: {amz_date(wire)} is now earlier than {stamp(now - timedelta(minutes=5))} "
        f"({stamp(now)} - 5 min.)"
    )


def test_refuses_a_request_dated_more_than_five_minutes_ahead() -> None:
    wire = sign("GET", "/2015-03-31/functions")
    now = datetime.strptime(amz_date(wire), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) - timedelta(minutes=5, seconds=1)
    with pytest.raises(InvalidSignature) as caught:
        verifier(now).verify(*wire)
    assert caught.value.message == (
        f"Signature not yet current: {amz_date(wire)} is still later than "
        f"{stamp(now + timedelta(minutes=5))} ({stamp(now)} + 5 min.)"
    )


@pytest.mark.parametrize("offset", [timedelta(minutes=5), -timedelta(minutes=5), timedelta(minutes=-4)])
def test_tolerates_five_minutes_of_clock_skew(offset: timedelta) -> None:
    wire = sign("GET", "/2015-03-31/functions")
    signed_at = datetime.strptime(amz_date(wire), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    verifier(signed_at + offset).verify(*wire)


def test_refuses_credentials_scoped_to_another_region_unless_told_otherwise() -> None:
    wire = sign("GET", "/2015-03-31/functions", region="eu-west-1")
    with pytest.raises(InvalidSignature) as caught:
        verifier().verify(*wire)
    assert caught.value.message == "Credential should be scoped to a valid region, not 'eu-west-1'."
    assert verifier(strict_region=False).verify(*wire).region == "eu-west-1"


def test_refuses_a_changed_s3_body_whose_hash_header_was_signed() -> None:
    method, path, query, headers, _ = sign("PUT", "/bucket/key", b"original", service="s3", signer=S3SigV4Auth)
    with pytest.raises(ContentSHA256Mismatch) as caught:
        verifier().verify(method, path, query, headers, b"tampered")
    assert caught.value.code == "XAmzContentSHA256Mismatch"
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (
            "AWS4-HMAC-SHA256 Foo=x",
            "Authorization header requires 'Credential' parameter. "
            "Authorization header requires 'Signature' parameter. "
            "Authorization header requires 'SignedHeaders' parameter. "
            "Authorization=AWS4-HMAC-SHA256 Foo=x",
        ),
        ("AWS AKIAIOSFODNN7EXAMPLE:c2lnbmF0dXJl", "Unsupported AWS 'algorithm': 'AWS'"),
        (
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1, "
            "SignedHeaders=host;x-amz-date, Signature=abc",
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            "got 'AKIAIOSFODNN7EXAMPLE/20240101/us-east-1'",
        ),
    ],
)
def test_refuses_malformed_authorization_headers(authorization: str, message: str) -> None:
    headers = [
        (b"host", b"localhost"),
        (b"x-amz-date", b"20240101T000000Z"),
        (b"authorization", authorization.encode()),
    ]
    with pytest.raises(IncompleteSignature) as caught:
        verifier().verify("GET", b"/", b"", headers, b"")
    assert caught.value.message == message
    assert caught.value.code == "IncompleteSignatureException"


def test_refuses_a_signature_that_does_not_cover_the_host() -> None:
    wire = sign("GET", "/2015-03-31/functions")
    method, path, query, headers, body = wire
    auth = dict(headers)[b"authorization"].replace(b"SignedHeaders=host;", b"SignedHeaders=")
    with pytest.raises(InvalidSignature, match="'Host' or ':authority' must be a 'SignedHeader'"):
        verifier().verify(method, path, query, replace_header(wire, b"authorization", auth)[3], body)


# --- presigned URLs -------------------------------------------------------------------------------


def test_accepts_presigned_s3_urls_until_they_expire() -> None:
    wire = sign("GET", "/bucket/photo%20one.jpg?versionId=3", service="s3", signer=S3SigV4QueryAuth, expires=60)
    assert b"X-Amz-Signature=" in wire[2]
    signed_at = datetime.strptime(
        re.search(rb"X-Amz-Date=(\w+)", wire[2]).group(1).decode(),  # type: ignore[union-attr]
        "%Y%m%dT%H%M%SZ",
    ).replace(tzinfo=UTC)
    assert verifier(signed_at + timedelta(seconds=59)).verify(*wire).service == "s3"
    with pytest.raises(AccessDenied, match=r"^Request has expired$"):
        verifier(signed_at + timedelta(seconds=61)).verify(*wire)


def test_accepts_presigned_urls_of_other_services_and_refuses_tampered_ones() -> None:
    wire = sign("GET", "/2015-03-31/functions?MaxItems=3", signer=SigV4QueryAuth, expires=300)
    verifier().verify(*wire)
    method, path, query, headers, body = wire
    with pytest.raises(InvalidSignature, match=re.escape(MISMATCH)):
        verifier().verify(method, path, query.replace(b"MaxItems=3", b"MaxItems=4"), headers, body)


# --- routing helpers ------------------------------------------------------------------------------


def test_reads_the_credential_scope_without_verifying() -> None:
    wire = sign("GET", "/", service="kinesis", secret="whatever")
    assert credential_scope_service(wire[3]) == "kinesis"
    scope = parse_credential_scope(wire[3])
    assert scope is not None and scope.access_key_id == KEY and scope.region == REGION
    presigned = sign("GET", "/bucket/key", service="s3", signer=S3SigV4QueryAuth, expires=60)
    assert credential_scope_service(presigned[3], presigned[2]) == "s3"
    assert credential_scope_service([(b"host", b"localhost")]) is None
