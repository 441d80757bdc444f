"""aws-chunked request bodies: decoding, chunk signatures (AWS's published example) and trailers."""

from __future__ import annotations

import pytest

from squall.services.buckets import checksums, chunked
from squall.services.buckets.errors import IncompleteBody, SignatureDoesNotMatch

# The example of "Signature Calculations for the Authorization Header: Transferring Payload in
# Multiple Chunks" in the S3 API reference: 65 KiB of "a" sent as a 64 KiB and a 1 KiB chunk.
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNK_SIGNATURES = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]


def signer() -> chunked.ChunkSigner:
    key = chunked.signing_key(SECRET, "20130524", "us-east-1", "s3")
    return chunked.ChunkSigner(key, "20130524T000000Z", "20130524/us-east-1/s3/aws4_request", SEED)


def signed_body(signatures: list[str]) -> bytes:
    chunks = [b"a" * 65536, b"a" * 1024, b""]
    return b"".join(
        f"{len(data):x};chunk-signature={sig}\r\n".encode() + data + b"\r\n"
        for data, sig in zip(chunks, signatures, strict=True)
    )


def test_signed_chunks_match_the_published_example() -> None:
    decoded = chunked.decode(signed_body(CHUNK_SIGNATURES), signer())
    assert decoded.data == b"a" * 66560
    assert decoded.trailers == {}


def test_a_tampered_chunk_signature_is_refused() -> None:
    wrong = [CHUNK_SIGNATURES[0], "0" * 64, CHUNK_SIGNATURES[2]]
    with pytest.raises(SignatureDoesNotMatch):
        chunked.decode(signed_body(wrong), signer())
    body = signed_body(CHUNK_SIGNATURES).replace(b"a" * 1024, b"b" + b"a" * 1023)
    with pytest.raises(SignatureDoesNotMatch):
        chunked.decode(body, signer())


def test_unsigned_payload_with_a_checksum_trailer() -> None:
    # What botocore sends over HTTPS: STREAMING-UNSIGNED-PAYLOAD-TRAILER.
    crc = checksums.checksum("crc32", b"hello world")
    body = b"b\r\nhello world\r\n0\r\n" + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    decoded = chunked.decode(body)
    assert decoded.data == b"hello world"
    assert decoded.trailers == {"x-amz-checksum-crc32": crc}


def test_several_chunks_without_signatures() -> None:
    body = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert chunked.decode(body).data == b"abcde"


@pytest.mark.parametrize(
    "body",
    [b"5\r\nabc\r\n0\r\n\r\n", b"3\r\nabc", b"3\r\nabcXX0\r\n\r\n", b""],
)
def test_truncated_or_malformed_bodies(body: bytes) -> None:
    with pytest.raises(IncompleteBody):
        chunked.decode(body)


def test_signed_trailer_is_verified() -> None:
    s = signer()
    data = b"x" * 10
    first = s.sign(SEED, data)
    last = s.sign(first, b"")
    trailer = b"x-amz-checksum-crc32:" + checksums.checksum("crc32", data).encode()
    trailer_signature = s.sign_trailer(last, trailer + b"\n")
    body = (
        f"a;chunk-signature={first}\r\n".encode()
        + data
        + f"\r\n0;chunk-signature={last}\r\n".encode()
        + trailer
        + f"\r\nx-amz-trailer-signature:{trailer_signature}\r\n\r\n".encode()
    )
    assert chunked.decode(body, s).trailers == {"x-amz-checksum-crc32": checksums.checksum("crc32", data)}
    with pytest.raises(SignatureDoesNotMatch):
        chunked.decode(body.replace(trailer_signature.encode(), b"f" * 64), s)
