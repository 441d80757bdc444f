"""Identifiers made on every invocation: request ids (version-4 UUIDs) and X-Ray trace ids.

They must be unique, not secret, so they come from a generator seeded once from the OS rather
than from ``os.urandom`` on every call (``uuid.uuid4`` makes a ``getrandom`` system call per id,
and an invocation needs several ids).
"""

from __future__ import annotations

import os
import random
import time

_random = random.Random(os.urandom(32))
_VERSION_4 = (0x4 << 76) | (0x2 << 62)  # the version nibble and the RFC 4122 variant bits
_CLEAR = ~((0xF << 76) | (0x3 << 62))


def _reseed_after_fork() -> None:
    _random.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed_after_fork)


def request_id() -> str:
    """A random version-4 UUID in its canonical text form, like ``str(uuid.uuid4())``."""
    bits = _random.getrandbits(128)  # one C call: thread-safe under the GIL
    text = "%032x" % ((bits & _CLEAR) | _VERSION_4)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def trace_id() -> str:
    """An X-Ray trace header for a new, unsampled trace: ``Root=1-<time>-<96 bits>;Parent=<64 bits>``."""
    root = _random.getrandbits(96)
    parent = _random.getrandbits(64)
    return f"Root=1-{int(time.time()):08x}-{root:024x};Parent={parent:016x};Sampled=0"
