"""ETags and flexible checksums as S3 computes them."""

from __future__ import annotations

import base64
import hashlib

from squall.services.buckets import checksums


def test_single_put_etag_is_the_quoted_md5() -> None:
    assert checksums.etag(b"") == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert checksums.etag(b"hello world") == '"5eb63bbbe01eeed093cb22bb8f5acdc3"'


def test_multipart_etag_is_the_md5_of_part_md5s_and_the_part_count() -> None:
    parts = [b"a" * 10, b"b" * 20, b"c"]
    tags = [checksums.etag(part) for part in parts]
    expected = hashlib.md5(b"".join(hashlib.md5(part).digest() for part in parts)).hexdigest()
    assert checksums.multipart_etag(tags) == f'"{expected}-3"'
    # One part still gets the suffix, and is not the part's own MD5.
    assert checksums.multipart_etag(tags[:1]) == f'"{hashlib.md5(hashlib.md5(parts[0]).digest()).hexdigest()}-1"'


def test_crc_check_values() -> None:
    # The standard "123456789" check values of each CRC.
    assert checksums.crc32(b"123456789").hex() == "cbf43926"
    assert checksums.crc32c(b"123456789").hex() == "e3069283"
    assert checksums.crc64nvme(b"123456789").hex() == "ae8b14860a799888"


def test_checksum_headers_are_base64_of_the_big_endian_digest() -> None:
    assert checksums.checksum("crc32", b"hello world") == "DUoRhQ=="  # what botocore sent for this body
    assert checksums.checksum("SHA256", b"abc") == base64.b64encode(hashlib.sha256(b"abc").digest()).decode()
    assert checksums.checksum("sha1", b"abc") == base64.b64encode(hashlib.sha1(b"abc").digest()).decode()
    assert len(base64.b64decode(checksums.checksum("crc64nvme", b"abc"))) == 8
