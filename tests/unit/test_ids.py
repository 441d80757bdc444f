"""Request and trace ids: well-formed, unique, and different in a forked child."""

from __future__ import annotations

import os
import re
import uuid

from squall import ids

TRACE = re.compile(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0")


def test_request_ids_are_version_4_uuids() -> None:
    for _ in range(1000):
        text = ids.request_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_request_ids_do_not_repeat() -> None:
    assert len({ids.request_id() for _ in range(100_000)}) == 100_000


def test_trace_ids_have_xrays_shape() -> None:
    traces = {ids.trace_id() for _ in range(1000)}
    assert len(traces) == 1000
    assert all(TRACE.fullmatch(trace) for trace in traces)


def test_a_forked_child_draws_other_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send one id back and leave at once
        os.write(write, ids.request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child != ids.request_id()
