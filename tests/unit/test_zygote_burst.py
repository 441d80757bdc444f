"""A real zygote under a burst: many spawns requested at once all reach it, none is dropped."""

import asyncio
import socket
import sys
from pathlib import Path

from squall.errors import SandboxError
from squall.runtime.interpreters import Interpreter
from squall.runtime.zygote import Zygote

SPAWNS = 500


async def _burst(tmp_path: Path) -> tuple[list[int], list[int | None]]:
    zygote = Zygote(Interpreter("python3.11", sys.executable, []), {"preload": False})
    await zygote.start()
    keep: list[socket.socket] = []
    try:

        async def one(index: int) -> int:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            keep.append(ours)
            # A spec the child cannot run (no "env"): it exits at once with status 1. The padding
            # makes requests big enough to fill the control socket's buffer quickly.
            spec = {"log_file": str(tmp_path / f"log-{index}"), "pad": "x" * 4096}
            try:
                return await zygote.spawn(spec, theirs.fileno())
            finally:
                theirs.close()

        pids = await asyncio.gather(*(one(i) for i in range(SPAWNS)))
        statuses = await asyncio.gather(*(zygote.exit_status(pid, 30.0) for pid in pids))
        return pids, [None if s is None else s.code for s in statuses]
    finally:
        await zygote.stop()
        for sock in keep:
            sock.close()


def test_many_concurrent_spawns_all_fork(tmp_path: Path) -> None:
    pids, codes = asyncio.run(_burst(tmp_path))
    assert len(set(pids)) == SPAWNS
    assert codes == [1] * SPAWNS
    assert all((tmp_path / f"log-{i}").exists() for i in range(SPAWNS))


async def _stop_while_blocked(tmp_path: Path) -> BaseException | None:
    zygote = Zygote(Interpreter("python3.11", sys.executable, []), {"preload": False})
    await zygote.start()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        spec = {"log_file": str(tmp_path / "log"), "pad": "x" * 65536}
        spawns = [asyncio.ensure_future(zygote.spawn(spec, theirs.fileno())) for _ in range(200)]
        await asyncio.sleep(0)  # the first requests fill the socket; the rest wait for room
        await zygote.stop()
        results = await asyncio.wait_for(asyncio.gather(*spawns, return_exceptions=True), 30)
        return next((r for r in results if isinstance(r, BaseException)), None)
    finally:
        ours.close()
        theirs.close()


def test_stop_wakes_spawns_waiting_for_room(tmp_path: Path) -> None:
    failure = asyncio.run(_stop_while_blocked(tmp_path))
    assert isinstance(failure, SandboxError)
