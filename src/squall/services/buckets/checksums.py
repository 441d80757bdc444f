"""S3's checksums and entity tags, computed as S3 computes them.

* ETag of a single PUT: the hex MD5 of the body, in double quotes.
* ETag of a multipart object: the hex MD5 of the concatenated binary MD5s of its parts, then ``-``
  and the number of parts (``"<md5-of-md5s>-3"``).
* Flexible checksums (``x-amz-checksum-<algorithm>``): the base64 of the big-endian digest. CRC32
  is zlib's; CRC32C and CRC64NVME (reflected, as botocore's awscrt computes them) are table-driven
  here so no extra dependency is needed.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable, Iterable

ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")


def _reflected_table(poly: int, width: int) -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc & ((1 << width) - 1))
    return table


_CRC32C_TABLE = _reflected_table(0x82F63B78, 32)
_CRC64NVME_TABLE = _reflected_table(0x9A6C9329AC4BC9B5, 64)


def _reflected_crc(data: bytes, table: list[int], width: int) -> int:
    mask = (1 << width) - 1
    crc = mask
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ mask


def crc32(data: bytes) -> bytes:
    return (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")


def crc32c(data: bytes) -> bytes:
    return _reflected_crc(data, _CRC32C_TABLE, 32).to_bytes(4, "big")


def crc64nvme(data: bytes) -> bytes:
    return _reflected_crc(data, _CRC64NVME_TABLE, 64).to_bytes(8, "big")


_DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "crc32": crc32,
    "crc32c": crc32c,
    "crc64nvme": crc64nvme,
    "sha1": lambda data: hashlib.sha1(data).digest(),
    "sha256": lambda data: hashlib.sha256(data).digest(),
}


def checksum(algorithm: str, data: bytes) -> str:
    """``x-amz-checksum-<algorithm>`` of ``data`` (base64); ``algorithm`` is one of ``ALGORITHMS``."""
    return base64.b64encode(_DIGESTS[algorithm.lower()](data)).decode()


def etag(data: bytes) -> str:
    """The ETag of an object stored by one PUT (quoted hex MD5)."""
    return f'"{hashlib.md5(data).hexdigest()}"'


def multipart_etag(part_etags: Iterable[str]) -> str:
    """The ETag of an object assembled from parts with these (quoted hex MD5) ETags."""
    digests = [bytes.fromhex(tag.strip('"')) for tag in part_etags]
    return f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"'
