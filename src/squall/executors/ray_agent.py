"""``NodeAgent``: the Ray actor on each node of the Ray tier; a ``LocalExecutor`` run remotely.

The agent owns its node's sandboxes, zygotes and code cache (its own ``CodeStore``). Packages come
from the driver through Ray's object store by their SHA-256 and are fetched once per node. Every
answer carries the agent's idle sandboxes per pool key, which the driver uses for warm affinity.

An agent belongs to the cluster, not to a server: every Squall server of a deployment uses the same
agents (detached named actors), and none of them shuts an agent down. An agent that no server has
called for ``orphan_s`` (every server pings each agent every few seconds) stops its sandboxes,
removes its work directory and exits: the last server has gone, by a clean stop or a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import msgspec

from squall.errors import SandboxError
from squall.executors.base import ProvisionedState
from squall.executors.keepalive import KeepAlivePolicy
from squall.executors.local import LocalExecutor
from squall.models import InvokeRequest, InvokeResult, SandboxSpec
from squall.stores.code import CodeStore

log = logging.getLogger(__name__)


class AgentStatus(msgspec.Struct, kw_only=True):
    """An agent's state as the driver sees it after each call."""

    idle: dict[str, int]
    provisioned: dict[str, ProvisionedState]
    busy: int
    warm: int
    #: The keep-alive policy of its executor: "adaptive" (per function, from arrivals) or "fixed".
    keep_alive: str = "fixed"


class NodeAgent:
    """Runs invocations of this node with a ``LocalExecutor`` (wrapped with ``ray.remote`` by the driver)."""

    def __init__(
        self,
        work_dir: str,
        region: str,
        isolation: bool,
        orphan_s: float,
        keep_alive: KeepAlivePolicy | None = None,
        memory_floor_mb: float = 0.0,
    ) -> None:
        self.root = Path(work_dir)
        self.root.mkdir(mode=0o711, parents=True, exist_ok=True)
        self.code = CodeStore(self.root / "code")
        #: The variables that reach Squall, per function, as a server last sent them.
        self.api_env: dict[str, dict[str, str]] = {}
        self.executor = LocalExecutor(
            self.code,
            self.root / "sandboxes",
            region,
            lambda name: self.api_env.get(name, {}),
            isolation=isolation,
            keep_alive=keep_alive,
            memory_floor_mb=memory_floor_mb,
        )
        self.orphan_s = orphan_s
        self._started = False
        self._starting = asyncio.Lock()
        self._last_call = time.monotonic()
        self._watchdog: asyncio.Task[None] | None = None

    async def start(self) -> AgentStatus:
        """Start the executor; every server calls this once for each agent it finds (idempotent)."""
        self._last_call = time.monotonic()
        async with self._starting:
            if not self._started:
                await self.executor.start()
                self._started = True
                self._watchdog = asyncio.ensure_future(self._exit_when_orphaned())
        return self.status()

    async def invoke(
        self, spec: SandboxSpec, request: InvokeRequest, env: dict[str, str], packages: dict[str, Any]
    ) -> tuple[InvokeResult, AgentStatus]:
        await self._prepare(spec, env, packages)
        result = await self.executor.invoke(spec, request)
        return result, self.status()

    async def provision(
        self, spec: SandboxSpec, count: int, env: dict[str, str], packages: dict[str, Any]
    ) -> AgentStatus:
        await self._prepare(spec, env, packages)
        await self.executor.provision(spec, count)
        return self.status()

    async def unprovision(self, key: str) -> AgentStatus:
        await self.executor.unprovision(key)
        return self.status()

    async def retire(self, function_name: str) -> AgentStatus:
        await self.executor.retire(function_name)
        self.api_env.pop(function_name, None)
        return self.status()

    async def reap_idle(self, keep_alive_s: float) -> tuple[int, AgentStatus]:
        reaped = await self.executor.reap_idle(keep_alive_s)
        return reaped, self.status()

    async def _exit_when_orphaned(self) -> None:
        while time.monotonic() - self._last_call < self.orphan_s or self.executor.busy:
            await asyncio.sleep(max(0.1, min(self.orphan_s / 4, 5.0)))
        log.info("no Squall server called for %.0f s: stopping this node agent", self.orphan_s)
        with contextlib.suppress(Exception):
            await self.executor.shutdown(5.0)
        shutil.rmtree(self.root, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.root.parent.rmdir()  # the deployment's directory, once no agent of this node uses it
        import ray

        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)

    def status(self) -> AgentStatus:
        self._last_call = time.monotonic()
        return AgentStatus(
            idle=idle_by_key(self.executor),
            provisioned=self.executor.provisioned(),
            busy=self.executor.busy,
            warm=self.executor.warm,
            keep_alive="adaptive" if self.executor.keep_alive.adaptive else "fixed",
        )

    async def _prepare(self, spec: SandboxSpec, env: dict[str, str], packages: dict[str, Any]) -> None:
        """Cache the function's code and layers on this node (from the object store) and its variables."""
        self._last_call = time.monotonic()
        self.api_env[spec.function_name] = env
        for hex_digest in (spec.code_hex, *spec.layer_hexes):
            if self.code.has(hex_digest):
                continue
            ref = packages.get(hex_digest)
            if ref is None:
                raise SandboxError(f"Code package {hex_digest} was not sent to this node")
            data: bytes = await ref
            stored = await asyncio.to_thread(self.code.put, data, max_zipped=None)
            if stored.hex != hex_digest:
                raise SandboxError(f"Code package {hex_digest} arrived with SHA-256 {stored.hex}")


def idle_by_key(executor: LocalExecutor) -> dict[str, int]:
    """Idle sandboxes per pool key, on-demand and provisioned alike."""
    return executor.idle_by_key()
