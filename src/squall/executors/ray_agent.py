"""``NodeAgent``: the Ray actor on each node of the Ray tier; a ``LocalExecutor`` run remotely.

The agent owns its node's sandboxes, zygotes and code cache (its own ``CodeStore``). Packages come
from the driver through Ray's object store by their SHA-256 and are fetched once per node. Every
answer carries the agent's idle sandboxes per pool key, which the driver uses for warm affinity.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec

from squall.errors import SandboxError
from squall.executors.base import ProvisionedState
from squall.executors.local import LocalExecutor
from squall.models import InvokeRequest, InvokeResult, SandboxSpec
from squall.stores.code import CodeStore


class AgentStatus(msgspec.Struct, kw_only=True):
    """An agent's state as the driver sees it after each call."""

    idle: dict[str, int]
    provisioned: dict[str, ProvisionedState]
    busy: int
    warm: int


class NodeAgent:
    """Runs invocations of this node with a ``LocalExecutor`` (wrapped with ``ray.remote`` by the driver)."""

    def __init__(self, work_dir: str, region: str, isolation: bool) -> None:
        root = Path(work_dir)
        self.code = CodeStore(root / "code")
        #: The variables that reach Squall, per function, as the driver last sent them.
        self.api_env: dict[str, dict[str, str]] = {}
        self.executor = LocalExecutor(
            self.code, root / "sandboxes", region, lambda name: self.api_env.get(name, {}), isolation=isolation
        )

    async def start(self) -> AgentStatus:
        await self.executor.start()
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

    async def shutdown(self, grace_s: float) -> None:
        await self.executor.shutdown(grace_s)

    def status(self) -> AgentStatus:
        return AgentStatus(
            idle=idle_by_key(self.executor),
            provisioned=self.executor.provisioned(),
            busy=self.executor.busy,
            warm=self.executor.warm,
        )

    async def _prepare(self, spec: SandboxSpec, env: dict[str, str], packages: dict[str, Any]) -> None:
        """Cache the function's code and layers on this node (from the object store) and its variables."""
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
