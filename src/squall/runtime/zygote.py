"""Squall's side of a zygote: start it, ask it to fork sandboxes, learn how they exit."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import msgspec

from squall.errors import SandboxError
from squall.runtime.interpreters import Interpreter

log = logging.getLogger(__name__)

#: The directory that holds the ``squall`` package, so the zygote can import its bootstrap.
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
START_TIMEOUT_S = 60.0
ZYGOTE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


class ExitStatus(msgspec.Struct):
    """How a sandbox process ended: an exit code or the signal that killed it."""

    code: int | None = None
    signal: int | None = None

    def describe(self) -> str:
        """Lambda's wording: ``exit status 1`` or ``signal: killed``."""
        if self.signal is not None:
            names = {9: "killed", 15: "terminated", 11: "segmentation fault", 6: "aborted"}
            return f"signal: {names.get(self.signal, str(self.signal))}"
        return f"exit status {self.code}"


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Zygote:
    """A running zygote for one runtime."""

    def __init__(self, interpreter: Interpreter, setup: dict[str, Any] | None = None) -> None:
        self.interpreter = interpreter
        #: What spares prepare before they are claimed: ``root_dir``, ``cgroup_base``.
        self.setup = setup or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.hello: dict[str, Any] = {}
        self._sock: socket.socket | None = None
        self._tokens = itertools.count(1)
        self._spawns: dict[int, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[ExitStatus]] = {}
        self._reader: asyncio.Task[None] | None = None
        #: One sender at a time: requests go out whole and in order, and only one waits for room.
        self._send_lock = asyncio.Lock()
        #: Settled when the control socket has room again (or is closed): what a blocked sender awaits.
        self._room: asyncio.Future[None] | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None and self._sock is not None

    async def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        code = "import sys; sys.path.insert(0, sys.argv[2]); from squall.runtime.bootstrap import zygote; zygote.main()"
        argv = [
            self.interpreter.executable,
            "-I",
            "-c",
            code,
            str(theirs.fileno()),
            PACKAGE_PARENT,
            json.dumps(self.setup),
            *self.interpreter.extra_site,
        ]
        # A minimal environment: sandboxes are forks of the zygote, and the exec-time environment
        # block stays in their memory, so nothing of the server's own environment may be in it.
        self.process = subprocess.Popen(
            argv, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, close_fds=True, env=ZYGOTE_ENV
        )
        theirs.close()
        ours.setblocking(False)
        self._sock = ours
        loop = asyncio.get_running_loop()
        try:
            raw = await asyncio.wait_for(loop.sock_recv(ours, 65536), START_TIMEOUT_S)
        except TimeoutError:
            await self.stop()
            raise SandboxError(f"the {self.interpreter.runtime} zygote did not start") from None
        if not raw:
            await self.stop()
            raise SandboxError(f"the {self.interpreter.runtime} zygote exited while starting")
        self.hello = json.loads(raw)
        self._reader = asyncio.create_task(self._read_loop())
        if self.hello.get("stand_in"):
            log.warning(
                "zygote %s cannot fork sandboxes into PID namespaces of their own (%s): each isolated "
                "sandbox keeps a stand-in process outside its namespace (about 1.7 MB more per sandbox)",
                self.interpreter.runtime,
                self.hello["stand_in"],
            )
        log.info(
            "zygote %s ready (pid %s, python %s, preloaded %s)",
            self.interpreter.runtime,
            self.hello["pid"],
            self.hello["python"],
            ",".join(self.hello["preloaded"]),
        )

    async def spawn(self, spec: dict[str, Any], channel_fd: int) -> int:
        """Fork a sandbox that runs ``spec`` with ``channel_fd`` as its channel; returns its pid."""
        if not self.alive or self._sock is None:
            raise SandboxError(f"the {self.interpreter.runtime} zygote is not running")
        token = next(self._tokens)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._spawns[token] = future
        message = json.dumps({"t": "spawn", "token": token, "spec": spec}).encode()
        try:
            await self._send(message, channel_fd)
        except BaseException:
            self._spawns.pop(token, None)
            raise
        try:
            pid = await asyncio.wait_for(future, START_TIMEOUT_S)
        finally:
            self._spawns.pop(token, None)
        self._exits.setdefault(pid, asyncio.get_running_loop().create_future())
        return pid

    async def _send(self, message: bytes, fd: int) -> None:
        """Send one request with ``fd`` attached, waiting for room when the socket's buffer is full
        (a burst of cold starts queues faster than the zygote forks)."""
        loop = asyncio.get_running_loop()
        async with self._send_lock:
            while True:
                sock = self._sock
                if sock is None:
                    raise SandboxError(f"the {self.interpreter.runtime} zygote is not running")
                try:
                    socket.send_fds(sock, [message], [fd])
                    return
                except BlockingIOError:
                    pass
                except OSError as exc:
                    raise SandboxError(f"the {self.interpreter.runtime} zygote is not running: {exc}") from exc
                self._room = loop.create_future()
                fileno = sock.fileno()
                loop.add_writer(fileno, _settle, self._room)
                try:
                    await self._room
                finally:
                    self._room = None
                    loop.remove_writer(fileno)

    async def exit_status(self, pid: int, timeout: float) -> ExitStatus | None:
        """How ``pid`` ended, waiting up to ``timeout`` seconds for the zygote to reap it."""
        future = self._exits.get(pid)
        if future is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return None

    def has_exited(self, pid: int) -> bool:
        """Whether the zygote has reported ``pid``'s exit (a sandbox that died while idle)."""
        future = self._exits.get(pid)
        return future is not None and future.done()

    def forget(self, pid: int) -> None:
        self._exits.pop(pid, None)

    async def _read_loop(self) -> None:
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                raw = await loop.sock_recv(self._sock, 65536)
            except OSError:
                raw = b""
            if not raw:
                break
            message = json.loads(raw)
            if message["t"] == "spawned":
                future = self._spawns.pop(message["token"], None)
                if future is not None and not future.done():
                    log.debug("forked sandbox %s in %.2f ms", message["pid"], message["fork_ms"])
                    future.set_result(message["pid"])
            elif message["t"] == "exit":
                status = ExitStatus(code=message.get("code"), signal=message.get("signal"))
                exit_future = self._exits.setdefault(message["pid"], loop.create_future())
                if not exit_future.done():
                    exit_future.set_result(status)
        self._fail_spawns()

    def _fail_spawns(self) -> None:
        for pending in self._spawns.values():
            if not pending.done():
                pending.set_exception(SandboxError("the zygote exited"))
        self._spawns.clear()

    async def stop(self) -> None:
        """Close the control socket: the zygote exits and its sandboxes die with it."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._sock is not None:
            if self._room is not None:  # a sender waiting for room: it wakes and sees the socket gone
                asyncio.get_running_loop().remove_writer(self._sock.fileno())
                _settle(self._room)
            self._sock.close()
            self._sock = None
        self._fail_spawns()
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)
            await asyncio.to_thread(self.process.wait)
