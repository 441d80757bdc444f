"""A real zygote forks isolated sandboxes straight into PID namespaces of their own, and falls back
to a stand-in process outside the namespace where the kernel refuses that (a user namespace that
does not own the zygote's PID namespace, as in rootless containers)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from squall.runtime.bootstrap import frames
from squall.runtime.interpreters import Interpreter
from squall.runtime.zygote import ExitStatus, Zygote

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="PID namespaces need root")

HANDLER = """
import os


def handler(event, context):
    if event == "exit":
        os._exit(7)
    with open("/proc/self/status") as fh:
        nspid = next(line.split()[1:] for line in fh if line.startswith("NSpid:"))
    return {"pid": os.getpid(), "nspid": nspid}
"""


def _spec(tmp_path: Path) -> dict[str, Any]:
    task = tmp_path / "task"
    task.mkdir(exist_ok=True)
    (task / "app.py").write_text(HANDLER)
    return {
        "log_file": str(tmp_path / "log"),
        "env": {"LAMBDA_TASK_ROOT": str(task), "PATH": "/usr/bin:/bin"},
        "handler": "app.handler",
        "max_files": 1024,
        "max_procs": 1024,
        "max_file_bytes": 1 << 29,
    }


async def _one_sandbox(interpreter: Interpreter, tmp_path: Path) -> tuple[dict[str, Any], int, Any, ExitStatus | None]:
    """Start a zygote whose spares prepare a root, run one invocation in one sandbox, then make it
    exit 7: the zygote's hello, the pid it reported, what the handler saw, and the exit status."""
    (tmp_path / ".root").mkdir()
    zygote = Zygote(interpreter, {"preload": False, "root_dir": str(tmp_path / ".root")})
    await zygote.start()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            pid = await zygote.spawn(_spec(tmp_path), theirs.fileno())
        finally:
            theirs.close()
        reader, writer = ours.makefile("rb"), ours.makefile("wb")
        ready = await asyncio.to_thread(frames.read, reader)
        assert ready is not None and ready[0]["t"] == "ready", (tmp_path / "log").read_text()
        for event in (b'"who"', b'"exit"'):
            writer.write(frames.encode({"id": "r", "deadline_ms": 2**50, "arn": "arn"}, event))
            writer.flush()
            reply = await asyncio.to_thread(frames.read, reader)
            if event == b'"who"':
                assert reply is not None
                seen = json.loads(reply[1])
        status = await zygote.exit_status(pid, 30.0)
        return zygote.hello, pid, seen, status
    finally:
        ours.close()
        await zygote.stop()


def test_isolated_sandbox_is_pid_one_forked_by_the_zygote(tmp_path: Path) -> None:
    interpreter = Interpreter("python3.11", sys.executable, [])
    hello, pid, seen, status = asyncio.run(_one_sandbox(interpreter, tmp_path))
    assert hello["stand_in"] is None
    assert seen["pid"] == 1
    assert seen["nspid"] == [str(pid), "1"]  # the pid the zygote reported is the sandbox itself
    assert status == ExitStatus(code=7)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux's unshare")
def test_where_setns_is_refused_a_stand_in_relays_the_exit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    wrapper = tmp_path / "python-in-user-namespace"
    wrapper.write_text(f'#!/bin/sh\nexec unshare --user --map-root-user {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    interpreter = Interpreter("python3.11", str(wrapper), [])
    with caplog.at_level(logging.WARNING, logger="squall.runtime.zygote"):
        hello, pid, seen, status = asyncio.run(_one_sandbox(interpreter, tmp_path))
    assert "setns(CLONE_NEWPID)" in hello["stand_in"]
    assert any("stand-in" in record.getMessage() for record in caplog.records)
    assert seen["pid"] == 1
    assert seen["nspid"][-1] == "1" and seen["nspid"][-2] != str(pid)  # the stand-in is the reported pid
    assert status == ExitStatus(code=7)  # relayed by the stand-in as the sandbox exited
