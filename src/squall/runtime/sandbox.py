"""One execution environment: a confined process that runs one function version's handler.

Squall's side of it: start it through a zygote, hand it one invocation at a time over its
channel, enforce the deadline, collect what it printed, and tell exactly how it died.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec

from squall.config import INIT_TIMEOUT_S, RESPONSE_PAYLOAD_LIMIT, STREAM_PAYLOAD_LIMIT
from squall.invoke.streaming import ResponseStream
from squall.models import SandboxSpec
from squall.runtime.bootstrap import frames
from squall.runtime.cgroups import CgroupManager, SandboxCgroup
from squall.runtime.zygote import ExitStatus, Zygote


class Outcome(msgspec.Struct, kw_only=True):
    """What one round trip with the sandbox produced."""

    payload: bytes
    error_type: str | None
    max_memory_mb: int | None
    alive: bool  # False when the sandbox must not be reused
    status: str | None = None  # "timeout" or "error" for the REPORT line
    #: The runtime ended between invocations, before taking this one: it may run on a fresh sandbox.
    unstarted: bool = False


class _Received:
    """A streamed response's frames as they come: forwarded to the caller's stream, or gathered
    (up to just past the buffered limit, enough to tell that it is over) when there is none."""

    def __init__(self, stream: ResponseStream | None) -> None:
        self.stream = stream
        self.content_type: str | None = None
        self.size = 0
        self._parts: list[bytes] = []

    @property
    def forwarded(self) -> bool:
        return self.stream is not None and self.content_type is not None

    async def take(self, frame: dict[str, Any], body: bytes) -> None:
        if frame["t"] == "stream":
            self.content_type = str(frame.get("content_type") or "application/octet-stream")
            if self.stream is not None:
                await self.stream.open(self.content_type)
            return
        self.size += len(body)
        if self.stream is not None:
            await self.stream.write(body)
        elif self.size <= RESPONSE_PAYLOAD_LIMIT:
            self._parts.append(body)

    def payload(self) -> bytes:
        """What the caller gets in the result: the gathered chunks, or nothing when they were forwarded."""
        return b"" if self.forwarded else b"".join(self._parts)


class Sandbox:
    """A sandbox process and its channel. Not safe for concurrent invokes: one at a time."""

    def __init__(
        self,
        spec: SandboxSpec,
        zygote: Zygote,
        directory: Path,
        cgroup: SandboxCgroup | None,
        uid: int | None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.spec = spec
        self.zygote = zygote
        self.directory = directory
        self.cgroup = cgroup
        self.uid = uid
        self.pid = 0
        self.log_path = directory / "log"
        self.log_offset = 0
        self.init_ms: float | None = None
        self.invocations = 0
        self.last_used = time.monotonic()
        self.dead = False
        self.oom_detected = False
        self.log_stream = ""
        self._log_fd: int | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def start(
        self, confine: dict[str, Any], env: dict[str, str], cgroups: CgroupManager | None, request_id: str = ""
    ) -> Outcome | None:
        """Claim a sandbox from the zygote and wait for its handler to load; an Outcome means init failed
        (``request_id``: the invocation that caused the start, named in platform errors)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        spec = {
            **confine,
            "env": env,
            "handler": self.spec.handler,
            "log_file": str(self.log_path),
            "memory_bytes": self.spec.memory_mb * 1024 * 1024,
        }
        try:
            self.pid = await self.zygote.spawn(spec, theirs.fileno())
        finally:
            theirs.close()
        if cgroups is not None:
            self.cgroup = cgroups.adopt(self.pid)
        self._reader, self._writer = await asyncio.open_unix_connection(sock=ours, limit=2**20)
        try:
            header, body = await asyncio.wait_for(self._read_frame(), INIT_TIMEOUT_S)
        except TimeoutError:
            await self.kill()
            message = f"Init timed out after {INIT_TIMEOUT_S:.2f} seconds"
            return Outcome(
                payload=_error("Sandbox.Timedout", message),
                error_type="Sandbox.Timedout",
                max_memory_mb=None,
                alive=False,
                status="timeout",
            )
        except (asyncio.IncompleteReadError, ConnectionError):
            return await self._died("")
        self.init_ms = float(header["init_ms"])
        if header.get("fault"):
            return await self._fault(header, request_id)
        if header.get("error_type"):
            await self.kill()
            return Outcome(
                payload=body, error_type=header["error_type"], max_memory_mb=None, alive=False, status="error"
            )
        return None

    async def invoke(
        self, header: dict[str, Any], payload: bytes, timeout_s: float, stream: ResponseStream | None = None
    ) -> Outcome:
        """Run one invocation under its deadline. A streamed response goes chunk by chunk to
        ``stream`` when there is one, else it is gathered into the payload, as Invoke returns it."""
        assert self._writer is not None
        self.invocations += 1
        started = time.monotonic()
        received = _Received(stream)
        delivered = True
        try:
            async with asyncio.timeout(timeout_s):
                try:
                    self._writer.write(frames.encode(header, payload))
                    await self._writer.drain()
                except ConnectionError:
                    # It ended since its last call, so this event never started; a frame it left behind says why.
                    delivered = False
                reply, body = await self._read_frame()
                while reply.get("t") in ("stream", "chunk"):
                    await received.take(reply, body)
                    reply, body = await self._read_frame()
        except TimeoutError:
            await self.kill()
            elapsed = time.monotonic() - started
            message = f"RequestId: {header['id']} Error: Task timed out after {max(elapsed, timeout_s):.2f} seconds"
            return Outcome(
                payload=_error("Sandbox.Timedout", message),
                error_type="Sandbox.Timedout",
                max_memory_mb=self._peak(),
                alive=False,
                status="timeout",
            )
        except (asyncio.IncompleteReadError, ConnectionError):
            return await self._died(header["id"], unstarted=not delivered)
        finally:
            self.last_used = time.monotonic()
        if reply.get("fault"):
            return await self._fault(reply, header["id"])
        size = reply.get("oversize") or len(body)
        if received.content_type is not None and not reply.get("error_type"):
            body = received.payload()
            size = reply.get("oversize") or received.size
        limit = STREAM_PAYLOAD_LIMIT if received.forwarded else RESPONSE_PAYLOAD_LIMIT
        if size > limit:
            message = f"Response payload size ({size} bytes) exceeded maximum allowed payload size ({limit} bytes)."
            return Outcome(
                payload=_error("Function.ResponseSizeTooLarge", message),
                error_type="Function.ResponseSizeTooLarge",
                max_memory_mb=reply.get("max_rss_mb"),
                alive=True,
                status="error",
            )
        return Outcome(
            payload=body,
            error_type=reply.get("error_type"),
            max_memory_mb=reply.get("max_rss_mb"),
            alive=True,
            status=reply.get("status"),
        )

    async def _read_frame(self) -> tuple[dict[str, Any], bytes]:
        assert self._reader is not None
        head_len, body_len = frames.decode_prefix(await self._reader.readexactly(frames.PREFIX_SIZE))
        header: dict[str, Any] = json.loads(await self._reader.readexactly(head_len))
        body = await self._reader.readexactly(body_len) if body_len else b""
        return header, body

    async def _died(self, request_id: str, unstarted: bool = False) -> Outcome:
        """The process went away mid-call: say why, as Lambda does."""
        status = await self.zygote.exit_status(self.pid, timeout=2.0) or ExitStatus(signal=9)
        await self.kill()
        if self.oom_detected or (self.cgroup is not None and self.cgroup.oom_killed()):
            error_type = "Runtime.OutOfMemory"
        else:
            error_type = "Runtime.ExitError"
        message = f"RequestId: {request_id} Error: Runtime exited with error: {status.describe()}"
        return Outcome(
            payload=_error(error_type, message),
            error_type=error_type,
            max_memory_mb=self._peak(),
            alive=False,
            status="error",
            unstarted=unstarted,
        )

    async def _fault(self, reply: dict[str, Any], request_id: str) -> Outcome:
        """A platform failure the sandbox reported (its runtime exited, no bootstrap): it is done for."""
        await self.kill()
        error_type = str(reply["error_type"])
        return Outcome(
            payload=_error(error_type, f"RequestId: {request_id} Error: {reply['fault']}"),
            error_type=error_type,
            max_memory_mb=self._peak(),
            alive=False,
            status="error",
            unstarted=bool(reply.get("unstarted")),
        )

    def _peak(self) -> int | None:
        return self.cgroup.peak_mb() if self.cgroup is not None else None

    def read_log(self) -> bytes:
        """What the sandbox printed since the last call (its stdout and stderr)."""
        if self._log_fd is None:
            try:
                self._log_fd = os.open(self.log_path, os.O_RDONLY)
            except OSError:
                return b""
        chunks = []
        while chunk := os.pread(self._log_fd, 1 << 16, self.log_offset):
            chunks.append(chunk)
            self.log_offset += len(chunk)
        if self.log_offset > 1 << 20:
            with contextlib.suppress(OSError):
                os.truncate(self.log_path, 0)
            self.log_offset = 0
        return b"".join(chunks)

    def rss_mb(self) -> int | None:
        """The process's resident memory, for the watchdog used when no cgroup is available."""
        try:
            with open(f"/proc/{self.pid}/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)
        except (OSError, ValueError, IndexError):
            return None

    async def kill(self) -> None:
        """Kill the sandbox and everything it started; idempotent."""
        if self.dead:
            return
        self.dead = True
        if self._writer is not None:
            self._writer.close()
        if self.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)
        if self.cgroup is not None:
            await asyncio.to_thread(self.cgroup.kill_all)

    async def cleanup(self) -> None:
        """Remove what the sandbox left on disk and its cgroup, once it is dead."""
        await self.kill()
        if self.pid:
            await self.zygote.exit_status(self.pid, timeout=2.0)
            self.zygote.forget(self.pid)
        if self.cgroup is not None:
            await asyncio.to_thread(self.cgroup.remove)
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None
        await asyncio.to_thread(_remove_tree, self.directory)


def _remove_tree(path: Path) -> None:
    # An unconfined sandbox's /tmp may hold read-only dirs: make them removable, never following
    # a symlink the function left there (rmtree does not follow them either).
    for root, dirs, _files in os.walk(path):
        for name in dirs:
            target = os.path.join(root, name)
            if not os.path.islink(target):
                with contextlib.suppress(OSError):
                    os.chmod(target, 0o700)
    shutil.rmtree(path, ignore_errors=True)


def _error(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()
