"""How records find their shard: MD5 hash keys over even ranges of the 128-bit key space."""

from __future__ import annotations

import hashlib

HASH_KEY_SPACE = 2**128
#: The sequence number of a stream's first record; the n-th record's is this plus n.
SEQUENCE_BASE = 49_590_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000


def hash_key(partition_key: str, explicit_hash_key: str | None = None) -> int:
    """The record's hash key: the explicit one, or the MD5 of the partition key as an integer."""
    if explicit_hash_key is not None:
        return int(explicit_hash_key)
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8"), usedforsecurity=False).digest(), "big")


def even_ranges(count: int) -> list[tuple[int, int]]:
    """``count`` adjacent (start, end) hash-key ranges covering the whole space, as Kinesis splits it."""
    width = HASH_KEY_SPACE // count
    ranges = [(i * width, (i + 1) * width - 1) for i in range(count)]
    ranges[-1] = (ranges[-1][0], HASH_KEY_SPACE - 1)
    return ranges


def shard_id(index: int) -> str:
    return f"shardId-{index:012d}"


def sequence_number(counter: int) -> str:
    """A Kinesis-looking sequence number: increasing decimal strings, unique per stream."""
    return str(SEQUENCE_BASE + counter)
