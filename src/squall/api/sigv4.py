"""AWS Signature Version 4 verification for requests to the API port.

The server recomputes the signature with botocore's own signer, fed with exactly what arrived on
the wire: the raw (still percent-encoded) path, the query parameters, only the headers the client
listed in ``SignedHeaders`` and the client's timestamp. botocore then applies the same rules the
client applied when it signed: for every service but S3 the already-encoded path is encoded a
second time (``%3A`` becomes ``%253A``), S3 signs it as sent. The payload hash is the
``x-amz-content-sha256`` header when the client sent one, else the SHA-256 of the body.

Both header auth (``Authorization: AWS4-HMAC-SHA256 ...``) and presigned URLs (``X-Amz-Signature``
in the query string, with ``X-Amz-Expires``) are accepted. Failures raise the ``AccessDenied``
family of ``squall.errors`` with AWS's wording.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.client import HTTPMessage
from urllib.parse import quote, unquote

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from squall.errors import (
    AccessDenied,
    ContentSHA256Mismatch,
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    UnrecognizedClient,
)
from squall.services.buckets import presign_v2

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
MAX_SKEW = timedelta(minutes=5)
MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."
MISSING_TOKEN = "Missing Authentication Token"
CONTENT_SHA256_MISMATCH = "The provided 'x-amz-content-sha256' header does not match what was computed."

_AMZ_DATE_RE = re.compile(r"\d{8}T\d{6}Z")
_SHA256_HEX_RE = re.compile(r"[0-9a-f]{64}")
_PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


@dataclass(frozen=True)
class SignedRequest:
    """Who signed a verified request, for which service and region, and when."""

    access_key_id: str
    service: str
    region: str
    date: datetime


@dataclass(frozen=True)
class CredentialScope:
    """The ``Credential=`` of a request, read without verifying anything."""

    access_key_id: str
    date: str
    region: str
    service: str


@dataclass(frozen=True)
class _Claim:
    """What the client says it signed."""

    scope: CredentialScope
    terminator: str
    credential: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str
    presigned: bool
    expires: int


def parse_credential_scope(headers: Sequence[tuple[bytes, bytes]], query_string: bytes = b"") -> CredentialScope | None:
    """The credential scope from the ``Authorization`` header or ``X-Amz-Credential`` query
    parameter, unverified (for routing and for ``--no-auth`` mode); ``None`` when absent."""
    credential = None
    authorization = _header_map(headers).get("authorization")
    if authorization:
        credential = _auth_components(authorization[0]).get("Credential")
    else:
        credential = dict(_query_pairs(query_string)).get("X-Amz-Credential")
    if credential is None:
        return None
    parts = credential.split("/")
    if len(parts) != 5:
        return None
    return CredentialScope(parts[0], parts[1], parts[2], parts[3])


def credential_scope_service(headers: Sequence[tuple[bytes, bytes]], query_string: bytes = b"") -> str | None:
    """The service name a request was signed for, without verifying the signature."""
    scope = parse_credential_scope(headers, query_string)
    return scope.service if scope else None


class SigV4Verifier:
    """Checks AWS SigV4 signatures against a set of access keys.

    ``keys`` maps access key ids to secret keys; ``region`` is the only region credentials may be
    scoped to (``strict_region=False`` accepts any). ``clock`` returns the current UTC time.
    """

    def __init__(
        self,
        keys: Mapping[str, str],
        region: str,
        clock: Callable[[], datetime] | None = None,
        *,
        strict_region: bool = True,
    ) -> None:
        self._keys = keys
        self._region = region
        self._clock = clock or (lambda: datetime.now(UTC))
        self._strict_region = strict_region

    def verify(
        self,
        method: str,
        raw_path: bytes,
        query_string: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
    ) -> SignedRequest:
        """Verify one request; raise an ``AccessDenied`` subclass when it is not properly signed."""
        header_map = _header_map(headers)
        query = _query_pairs(query_string)
        if presign_v2.is_presigned_v2(query, header_map):
            # S3 alone still accepts Signature Version 2 presigned URLs (boto3's default for S3).
            now = self._clock()
            key = presign_v2.verify(self._keys, now, method, raw_path, query, header_map)
            return SignedRequest(key, "s3", self._region, now)
        claim = _parse_claim(header_map, query)
        date = _parse_timestamp(claim.timestamp)
        self._check_scope(claim)
        self._check_time(claim, date)
        secret = self._keys.get(claim.scope.access_key_id)
        if secret is None:
            raise UnrecognizedClient(INVALID_TOKEN)

        content_sha256 = header_map.get("x-amz-content-sha256", [None])[0]
        if content_sha256 is not None:
            payload_hash = content_sha256
        elif claim.presigned and claim.scope.service == "s3":
            payload_hash = UNSIGNED_PAYLOAD
        else:
            payload_hash = hashlib.sha256(body).hexdigest()
        if claim.presigned:
            query = [(k, v) for k, v in query if k != "X-Amz-Signature"]
        signed = HTTPHeaders()
        for name in claim.signed_headers:
            for value in header_map.get(name, ()):
                signed[name] = value

        signer_class = _S3Recomputer if claim.scope.service == "s3" else _Recomputer
        signer = signer_class(
            Credentials(claim.scope.access_key_id, secret),
            claim.scope.service,
            claim.scope.region,
            signed_headers=signed,
            payload_hash=payload_hash,
        )
        request = AWSRequest(
            method=method.upper(),
            url="http://squall" + _decode(raw_path or b"/") + _canonical_query(query),
        )
        request.headers = signed
        request.context["timestamp"] = claim.timestamp
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected.encode(), claim.signature.encode()):
            raise InvalidSignature(SIGNATURE_MISMATCH)
        if (
            content_sha256 is not None
            and _SHA256_HEX_RE.fullmatch(content_sha256)
            and not hmac.compare_digest(content_sha256, hashlib.sha256(body).hexdigest())
        ):
            raise ContentSHA256Mismatch(CONTENT_SHA256_MISMATCH)
        return SignedRequest(claim.scope.access_key_id, claim.scope.service, claim.scope.region, date)

    def _check_scope(self, claim: _Claim) -> None:
        problems = []
        if self._strict_region and claim.scope.region != self._region:
            problems.append(f"Credential should be scoped to a valid region, not '{claim.scope.region}'.")
        if claim.terminator != TERMINATOR:
            problems.append(
                f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{claim.terminator}'."
            )
        if claim.scope.date != claim.timestamp[:8]:
            problems.append(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
                f"HTTP: '{claim.scope.date}' != '{claim.timestamp[:8]}', from '{claim.timestamp}'."
            )
        if problems:
            raise InvalidSignature(" ".join(problems))
        if "host" not in claim.signed_headers:
            raise InvalidSignature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")

    def _check_time(self, claim: _Claim, date: datetime) -> None:
        now = self._clock()
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
        if claim.presigned:
            if date - now > MAX_SKEW:
                raise AccessDenied("Request is not valid yet")
            if now > date + timedelta(seconds=claim.expires):
                raise AccessDenied("Request has expired")
            return
        if date < now - MAX_SKEW:
            raise InvalidSignature(
                f"Signature expired: {claim.timestamp} is now earlier than {_stamp(now - MAX_SKEW)} "
                f"({_stamp(now)} - 5 min.)"
            )
        if date > now + MAX_SKEW:
            raise InvalidSignature(
                f"Signature not yet current: {claim.timestamp} is still later than "
                f"{_stamp(now + MAX_SKEW)} ({_stamp(now)} + 5 min.)"
            )


class _Recomputer(SigV4Auth):
    """botocore's signer, told exactly which headers were signed and what the payload hash is."""

    def __init__(
        self,
        credentials: Credentials,
        service_name: str,
        region_name: str,
        *,
        signed_headers: HTTPMessage,
        payload_hash: str,
    ) -> None:
        super().__init__(credentials, service_name, region_name)
        self._scope_region = region_name
        self._scope_service = service_name
        self._signed_headers = signed_headers
        self._payload_hash = payload_hash

    def headers_to_sign(self, request: AWSRequest) -> HTTPMessage:
        return self._signed_headers

    def payload(self, request: AWSRequest) -> str:
        return self._payload_hash

    def signature(self, string_to_sign: str, request: AWSRequest) -> str:
        # The signing key only changes once a day per key, region and service: derive it once.
        key = _signing_key(
            self.credentials.secret_key,
            request.context["timestamp"][:8],
            self._scope_region,
            self._scope_service,
        )
        return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


class _S3Recomputer(_Recomputer, S3SigV4Auth):
    """Like ``_Recomputer`` but with S3's rule: the path is signed as sent, not encoded again."""


def _parse_claim(headers: Mapping[str, list[str]], query: list[tuple[str, str]]) -> _Claim:
    authorization = headers.get("authorization")
    if authorization:
        return _claim_from_header(authorization[0], headers)
    params = dict(query)
    if "X-Amz-Algorithm" in params or "X-Amz-Signature" in params:
        return _claim_from_query(params)
    raise MissingAuthenticationToken(MISSING_TOKEN)


def _claim_from_header(authorization: str, headers: Mapping[str, list[str]]) -> _Claim:
    algorithm = authorization.strip().split(" ", 1)[0]
    if algorithm != ALGORITHM:
        raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{algorithm}'")
    components = _auth_components(authorization)
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not components.get(name)
    ]
    timestamp = _request_timestamp(headers)
    if timestamp is None:
        problems.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if problems:
        raise IncompleteSignature(" ".join(problems) + f" Authorization={authorization}")
    assert timestamp is not None
    return _claim(
        components["Credential"],
        components["SignedHeaders"],
        components["Signature"],
        timestamp,
        presigned=False,
        expires=0,
    )


def _claim_from_query(params: Mapping[str, str]) -> _Claim:
    missing = [name for name in _PRESIGN_PARAMS if not params.get(name)]
    if missing:
        raise IncompleteSignature(
            "".join(f"AWS query-string parameters must include '{name}'. " for name in missing)
            + "Re-examine the query-string parameters."
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{params['X-Amz-Algorithm']}'")
    try:
        expires = int(params["X-Amz-Expires"])
    except ValueError:
        raise IncompleteSignature("X-Amz-Expires should be a number") from None
    if expires < 0:
        raise IncompleteSignature("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_EXPIRES_S:
        raise IncompleteSignature(
            f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES_S}"
        )
    return _claim(
        params["X-Amz-Credential"],
        params["X-Amz-SignedHeaders"],
        params["X-Amz-Signature"],
        params["X-Amz-Date"],
        presigned=True,
        expires=expires,
    )


def _claim(
    credential: str, signed_headers: str, signature: str, timestamp: str, *, presigned: bool, expires: int
) -> _Claim:
    parts = credential.split("/")
    if len(parts) != 5:
        raise IncompleteSignature(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{credential}'"
        )
    return _Claim(
        scope=CredentialScope(parts[0], parts[1], parts[2], parts[3]),
        terminator=parts[4],
        credential=credential,
        signed_headers=tuple(h.strip().lower() for h in signed_headers.split(";") if h.strip()),
        signature=signature,
        timestamp=timestamp,
        presigned=presigned,
        expires=expires,
    )


def _request_timestamp(headers: Mapping[str, list[str]]) -> str | None:
    """``X-Amz-Date``, or the ``Date`` header (botocore signs with it when a request has one)."""
    amz_date = headers.get("x-amz-date")
    if amz_date:
        return amz_date[0].strip()
    date = headers.get("date")
    if not date:
        return None
    try:
        parsed = parsedate_to_datetime(date[0])
    except (TypeError, ValueError):
        return date[0].strip()
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _stamp(parsed)


@functools.lru_cache(maxsize=256)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """SigV4's derived key: HMAC chain over date, region, service and ``aws4_request``."""
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def _parse_timestamp(timestamp: str) -> datetime:
    if _AMZ_DATE_RE.fullmatch(timestamp):
        try:
            # Sliced by hand: strptime costs more than the rest of the parsing together.
            return datetime(
                int(timestamp[0:4]),
                int(timestamp[4:6]),
                int(timestamp[6:8]),
                int(timestamp[9:11]),
                int(timestamp[11:13]),
                int(timestamp[13:15]),
                tzinfo=UTC,
            )
        except ValueError:
            pass
    raise IncompleteSignature(
        f"Date must be in ISO-8601 'basic format'. Got '{timestamp}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _auth_components(authorization: str) -> dict[str, str]:
    """``Credential``, ``SignedHeaders`` and ``Signature`` of an Authorization header value
    (separated by commas and/or spaces, as different SDKs write them)."""
    _, _, rest = authorization.strip().partition(" ")
    components: dict[str, str] = {}
    for part in re.split(r"[,\s]+", rest):
        name, sep, value = part.partition("=")
        if sep:
            components.setdefault(name, value)
    return components


def _header_map(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for name, value in headers:
        result.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return result


def _query_pairs(query_string: bytes) -> list[tuple[str, str]]:
    """Decoded ``(name, value)`` pairs in wire order; ``+`` is kept literally, as SigV4 does."""
    pairs = []
    for item in _decode(query_string).split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


def _canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Re-encode each pair SigV4's way; botocore sorts them when it builds the canonical request."""
    encoded = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
    return "?" + encoded if encoded else ""


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(AMZ_DATE_FORMAT)
