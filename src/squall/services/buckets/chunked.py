"""Decoding ``Content-Encoding: aws-chunked`` request bodies (S3's streaming uploads).

The body is a series of chunks, ``<hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n``, ended by a
zero-size chunk, optionally followed by trailer lines (``x-amz-checksum-crc32:<b64>``, and for
signed trailers ``x-amz-trailer-signature:<sig>``) and an empty line. ``x-amz-content-sha256``
says which form was sent:

* ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` (and ``...-TRAILER``): every chunk is signed, each
  signature chaining from the previous one, starting at the request's own signature;
* ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``: no chunk signatures, a checksum in the trailer (what
  botocore sends over HTTPS).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from squall.services.buckets.errors import IncompleteBody, InvalidRequest, SignatureDoesNotMatch

SIGNED_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_PAYLOAD_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_FORMS = (SIGNED_PAYLOAD, SIGNED_PAYLOAD_TRAILER, UNSIGNED_PAYLOAD_TRAILER)
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class ChunkSigner:
    """What chunk signatures are chained from: the request's signing key, timestamp, scope and
    signature (the "seed")."""

    signing_key: bytes
    timestamp: str
    scope: str
    seed_signature: str

    def sign(self, previous: str, data: bytes) -> str:
        to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256-PAYLOAD",
                self.timestamp,
                self.scope,
                previous,
                _EMPTY_SHA256,
                hashlib.sha256(data).hexdigest(),
            )
        )
        return hmac.new(self.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()

    def sign_trailer(self, previous: str, trailer: bytes) -> str:
        """The signature of the trailer lines (each ``name:value\\n``). Built from S3's description of
        signed trailers; no client at hand sends them (botocore only sends unsigned trailers)."""
        to_sign = "\n".join(
            ("AWS4-HMAC-SHA256-TRAILER", self.timestamp, self.scope, previous, hashlib.sha256(trailer).hexdigest())
        )
        return hmac.new(self.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """SigV4's derived key (HMAC chain over date, region, service and ``aws4_request``)."""
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


@dataclass
class Decoded:
    """The payload of an aws-chunked body and its trailer headers (lower-case names)."""

    data: bytes
    trailers: dict[str, str] = field(default_factory=dict)


def decode(body: bytes, signer: ChunkSigner | None = None) -> Decoded:
    """The payload carried by ``body``; with ``signer``, every chunk signature (and a trailer
    signature) must be the one it computes. IncompleteBody/InvalidRequest on a malformed body."""
    out = bytearray()
    pos = 0
    previous = signer.seed_signature if signer else ""
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            raise IncompleteBody()
        header = body[pos:end].decode("latin-1")
        size_text, _, extension = header.partition(";")
        try:
            size = int(size_text.strip(), 16)
        except ValueError:
            raise InvalidRequest("Invalid chunk header in aws-chunked payload") from None  # unverified: wording
        data = body[end + 2 : end + 2 + size]
        if len(data) != size:
            raise IncompleteBody()
        if signer is not None:
            name, _, claimed = extension.partition("=")
            expected = signer.sign(previous, data)
            if name.strip() != "chunk-signature" or not hmac.compare_digest(claimed.strip(), expected):
                raise SignatureDoesNotMatch()
            previous = expected
        out += data
        pos = end + 2 + size
        if size == 0:
            break
        if body[pos : pos + 2] != b"\r\n":
            raise IncompleteBody()
        pos += 2
    return Decoded(bytes(out), _trailers(body[pos:], signer, previous))


def _trailers(rest: bytes, signer: ChunkSigner | None, previous: str) -> dict[str, str]:
    """The trailer headers after the last chunk; a signed trailer's signature is checked."""
    trailers: dict[str, str] = {}
    signed_part = bytearray()
    claimed_signature = None
    for line in rest.split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise InvalidRequest("Invalid trailer in aws-chunked payload")  # unverified: wording
        name = name.strip().lower()
        if name == "x-amz-trailer-signature":
            claimed_signature = value.strip()
            continue
        trailers[name] = value.strip()
        signed_part += line + b"\n"
    if signer is not None and claimed_signature is not None:
        expected = signer.sign_trailer(previous, bytes(signed_part))
        if not hmac.compare_digest(claimed_signature, expected):
            raise SignatureDoesNotMatch()
    return trailers
