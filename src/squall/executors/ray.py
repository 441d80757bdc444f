"""``RayExecutor``: the Ray tier. Invocations run on node agents (one Ray actor per node, each
owning a ``LocalExecutor``); this driver places them, ships code and watches nodes come and go.

Placement: an agent with an idle sandbox for the version first (warm affinity), else the agent
with the most free memory, counted against its node's Ray ``memory`` resource. An invocation in
flight on an agent that dies fails as a platform error (``SandboxError``): sync callers get a
``ServiceException``, the async dispatcher and the mapping pollers retry it. Nodes are reconciled
every few seconds, so agents are started on joining nodes and replaced after they die.

Several servers (drivers) of one deployment share the agents: one detached actor per node named
``agent-<cluster>-<node>`` in the ``squall`` namespace, created by whichever server finds none
(``get_if_exists``). A server that stops leaves them running for the others; an agent no server
has called for ``orphan_s`` exits by itself (``NodeAgent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from squall.errors import SandboxError
from squall.executors.base import Executor, ProvisionedState
from squall.executors.keepalive import KeepAlivePolicy
from squall.executors.ray_agent import AgentStatus, NodeAgent
from squall.executors.ray_placement import AgentSlot, Placement
from squall.invoke.streaming import ResponseStream
from squall.models import InvokeRequest, InvokeResult, SandboxSpec
from squall.stores.code import CodeStore

log = logging.getLogger(__name__)

#: Ray namespace of the agents (so tools and tests can find them by name).
NAMESPACE = "squall"
RECONCILE_INTERVAL_S = 2.0
#: An agent that no server has called for this long exits (its last server is gone).
AGENT_ORPHAN_S = 60.0
_LOST = (RayActorError, ActorDiedError, ActorUnavailableError)
#: What Lambda says when the service itself fails an invocation.
# ServiceException with HTTP 500 is what Lambda answers for its own transient failures (AWS Step
# Functions' "Handle Lambda service exceptions" page). unverified: the message text, which Lambda does
# not document for a lost execution environment; worded after the ServiceException description.
NODE_LOST = "The AWS Lambda service encountered an internal error: the node running the invocation was lost."


class RayExecutor(Executor):
    """Runs invocations on a Ray cluster: ``address`` None starts a local Ray instance.

    ``cluster`` names the deployment (servers sharing one PostgreSQL schema share its agents);
    ``work_dir`` is each agent's directory on its own node, ``<tmp>/squall-ray/<cluster>`` by default.
    """

    def __init__(
        self,
        code_store: CodeStore,
        region: str,
        api_env: Callable[[str], dict[str, str]],
        address: str | None = None,
        isolation: bool = True,
        cluster: str = "squall",
        work_dir: Path | None = None,
        orphan_s: float = AGENT_ORPHAN_S,
        keep_alive: KeepAlivePolicy | None = None,
        memory_floor_mb: float = 0.0,
    ) -> None:
        self.code_store = code_store
        self.memory_floor_mb = memory_floor_mb
        #: The policy each new agent's executor starts from (a copy per agent: each learns its own node's arrivals).
        self.keep_alive = keep_alive
        self.cluster = cluster
        self.work_dir = work_dir or Path(tempfile.gettempdir()) / "squall-ray" / cluster
        self.orphan_s = orphan_s
        self.region = region
        self.api_env = api_env
        self.address = address
        self.isolation = isolation
        self.placement = Placement()
        self.init_s: float | None = None
        self._actors: dict[str, Any] = {}
        self._packages: dict[str, Any] = {}
        self._status: dict[str, AgentStatus] = {}
        #: Which agent holds each provisioned version.
        self._provisioned_on: dict[str, str] = {}
        self._reconciling = asyncio.Lock()
        self._reconciler: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._busy = 0

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        started = time.monotonic()
        await asyncio.to_thread(
            ray.init,
            address=self.address,
            namespace=NAMESPACE,
            include_dashboard=False,
            log_to_driver=False,
            ignore_reinit_error=True,
        )
        self.init_s = time.monotonic() - started
        log.info("connected to Ray in %.2fs", self.init_s)
        await self.reconcile()
        self._reconciler = asyncio.ensure_future(self._reconcile_loop())

    async def shutdown(self, grace_s: float) -> None:
        """Let this server's invocations finish (up to ``grace_s``), then leave the cluster. The
        agents keep running for the other servers (see ``NodeAgent`` for when they stop)."""
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
        deadline = time.monotonic() + grace_s
        while self._busy and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._actors.clear()
        await asyncio.to_thread(ray.shutdown)

    async def reconcile(self) -> None:
        """Start an agent on every live node that has none; forget dead agents and agents of dead nodes."""
        async with self._reconciling:
            # An agent that died while idle (its node still up) is found here, not by a caller.
            await self._report_all()
            nodes = await asyncio.to_thread(ray.nodes)
            alive = {node["NodeID"]: node for node in nodes if node.get("Alive")}
            for slot in list(self.placement.agents.values()):
                if slot.node_id not in alive:
                    self._drop(slot.name)
            have = self.placement.nodes()
            for node_id, node in alive.items():
                if node_id not in have:
                    await self._start_agent(node_id, int(node.get("Resources", {}).get("memory", 0)) // 2**20)

    async def _start_agent(self, node_id: str, capacity_mb: int) -> None:
        """Join the node's agent, creating it if no server has yet."""
        name = f"agent-{self.cluster}-{node_id[:12]}"
        actor: Any = (
            ray.remote(NodeAgent)
            .options(
                name=name,
                namespace=NAMESPACE,
                get_if_exists=True,
                lifetime="detached",
                num_cpus=0,
                max_concurrency=1000,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            )
            .remote(
                str(self.work_dir / node_id[:12]),
                self.region,
                self.isolation,
                self.orphan_s,
                self.keep_alive,
                self.memory_floor_mb,
            )
        )
        try:
            status: AgentStatus = await actor.start.remote()
        except Exception as exc:
            # Not killed: it may be another server's agent that is merely slow; a dead one is
            # replaced at the next reconcile.
            log.warning("node agent %s did not start: %s", name, exc)
            return
        self._actors[name] = actor
        self.placement.add(name, node_id, capacity_mb)
        self._note(name, status)
        log.info("node agent %s started (%d MB)", name, capacity_mb)

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_INTERVAL_S)
            try:
                await self.reconcile()
            except Exception:
                log.exception("reconciling Ray nodes failed")

    def _drop(self, name: str) -> None:
        self.placement.remove(name)
        self._status.pop(name, None)
        actor = self._actors.pop(name, None)
        for key in [k for k, owner in self._provisioned_on.items() if owner == name]:
            del self._provisioned_on[key]
        if actor is not None:
            with contextlib.suppress(Exception):
                ray.kill(actor)

    async def _report_all(self) -> None:
        """Every agent's fresh idle sandboxes (agents that died are dropped)."""
        for name, status in await self._each(lambda actor: actor.status.remote()):
            self._note(name, status)

    async def _refresh(self) -> None:
        """``_report_all``, shared by the callers that ask while one is under way."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._report_all())
        await asyncio.shield(self._refreshing)

    def _note(self, name: str, status: AgentStatus) -> None:
        self._status[name] = status
        self.placement.report(name, status.idle)

    # --- the hot path ----------------------------------------------------------------------------
    async def invoke(
        self, spec: SandboxSpec, request: InvokeRequest, stream: ResponseStream | None = None
    ) -> InvokeResult:
        # Streamed responses come back whole through Ray (up to Invoke's 6 MB), never chunk by chunk.
        slot = self.placement.choose(spec.pool_key, spec.memory_mb)
        if slot is not None and not slot.idle.get(spec.pool_key) and len(self._actors) > 1:
            # A cold start: another server may have warmed a sandbox for this version since the
            # agents last reported, so ask them all once more (warm affinity across servers).
            await self._refresh()
            slot = self.placement.choose(spec.pool_key, spec.memory_mb)
        if slot is None:
            await self.reconcile()
            slot = self.placement.choose(spec.pool_key, spec.memory_mb)
            if slot is None:
                raise SandboxError(f"No Ray node has {spec.memory_mb} MB free for {spec.function_name}")
        actor = self._actors[slot.name]
        self.placement.begin(slot, spec.pool_key, spec.memory_mb)
        self._busy += 1
        status: AgentStatus | None = None
        result: InvokeResult
        try:
            result, status = await actor.invoke.remote(
                spec, request, self.api_env(spec.function_name), self._refs(spec)
            )
        except _LOST as exc:
            log.warning("node agent %s lost during %s: %s", slot.name, request.request_id, exc)
            self._drop(slot.name)
            raise SandboxError(NODE_LOST) from exc
        finally:
            self._busy -= 1
            self.placement.finish(slot, spec.memory_mb, None if status is None else status.idle)
        self._status[slot.name] = status
        return result

    def _refs(self, spec: SandboxSpec) -> dict[str, Any]:
        """Object refs of the version's packages, put in the object store once per SHA-256."""
        refs = {}
        for hex_digest in (spec.code_hex, *spec.layer_hexes):
            ref = self._packages.get(hex_digest)
            if ref is None:
                ref = self._packages[hex_digest] = ray.put(self.code_store.get(hex_digest))
            refs[hex_digest] = ref
        return refs

    # --- broadcasts --------------------------------------------------------------------------------
    async def retire(self, function_name: str) -> None:
        self.placement.forget(function_name)
        for name, status in await self._each(lambda actor: actor.retire.remote(function_name)):
            self._note(name, status)

    async def reap_idle(self, keep_alive_s: float) -> int:
        reaped = 0
        for name, (count, status) in await self._each(lambda actor: actor.reap_idle.remote(keep_alive_s)):
            reaped += count
            self._note(name, status)
        return reaped

    async def _each(self, call: Callable[[Any], Any]) -> list[tuple[str, Any]]:
        """Call every agent; agents that died are dropped (the reconciler replaces them)."""
        names = list(self._actors)
        answers = await asyncio.gather(*(_await(call(self._actors[n])) for n in names), return_exceptions=True)
        done = []
        for name, answer in zip(names, answers, strict=True):
            if isinstance(answer, _LOST):
                self._drop(name)
            elif isinstance(answer, BaseException):
                log.warning("node agent %s failed: %s", name, answer)
            else:
                done.append((name, answer))
        return done

    # --- provisioned concurrency -------------------------------------------------------------------
    def _provisioning_agent(self, key: str) -> str | None:
        """The agent holding a pool's provisioned environments: the one this driver placed them on,
        else one that reports them (placed through another server that has since given them up)."""
        name = self._provisioned_on.get(key)
        if name is not None and name in self._actors:
            return name
        return next((n for n, status in self._status.items() if key in status.provisioned and n in self._actors), None)

    async def provision(self, spec: SandboxSpec, count: int) -> None:
        name = self._provisioning_agent(spec.pool_key)
        if name is None:
            slot = self.placement.choose(spec.pool_key, spec.memory_mb)
            if slot is None:
                raise SandboxError(f"No Ray node has {spec.memory_mb} MB free for {spec.function_name}")
            name = slot.name
        self._provisioned_on[spec.pool_key] = name
        status = await self._actors[name].provision.remote(
            spec, count, self.api_env(spec.function_name), self._refs(spec)
        )
        self._note(name, status)

    async def unprovision(self, key: str) -> None:
        name = self._provisioning_agent(key)
        self._provisioned_on.pop(key, None)
        if name is not None:
            with contextlib.suppress(*_LOST):
                self._note(name, await self._actors[name].unprovision.remote(key))

    def provisioned(self) -> dict[str, ProvisionedState]:
        states: dict[str, ProvisionedState] = {}
        for status in self._status.values():
            states.update(status.provisioned)
        return states

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def warm(self) -> int:
        return sum(slot.warm for slot in self.placement.agents.values())

    def slot(self, name: str) -> AgentSlot | None:
        return self.placement.agents.get(name)


async def _await(ref: Any) -> Any:
    return await ref
