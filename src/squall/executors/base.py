"""The executor seam: where an invocation turns into a running handler.

``LocalExecutor`` forks sandboxes from warm zygotes on this machine; a Ray executor runs the
same sandboxes on cluster nodes. Nothing above this seam may assume a sandbox is a local process:
code is addressed by its SHA-256 and every result carries its own logs and usage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import msgspec

from squall.invoke.streaming import ResponseStream
from squall.models import InvokeRequest, InvokeResult, SandboxSpec

#: ``AWS_LAMBDA_INITIALIZATION_TYPE`` of sandboxes started ahead of demand.
PROVISIONED_INIT = "provisioned-concurrency"


class ProvisionedState(msgspec.Struct, kw_only=True):
    """Where one version's provisioned sandboxes stand: how many are wanted and how many are ready."""

    target: int
    #: Initialised and alive (idle or running an invocation).
    allocated: int
    #: Initialised, alive and idle right now.
    idle: int
    #: Why the last initialisation failed (filling stops until the next ``provision``).
    failure: str | None = None


class Executor(ABC):
    """Runs invocations in sandboxes, one invocation per sandbox at a time."""

    @abstractmethod
    async def start(self) -> None:
        """Get ready to serve (start zygotes, connect to a cluster...)."""

    @abstractmethod
    async def invoke(
        self, spec: SandboxSpec, request: InvokeRequest, stream: ResponseStream | None = None
    ) -> InvokeResult:
        """Run one invocation to completion, cold-starting a sandbox when no warm one is free.

        Function failures (errors, timeouts, crashes, out of memory) are results, not
        exceptions; an exception means the platform itself could not run the invocation.
        A response the runtime streams goes to ``stream`` as it comes (the result's payload is then
        empty, or the error); an executor may also deliver it whole in the result instead.
        """

    @abstractmethod
    async def retire(self, function_name: str) -> None:
        """Stop the idle sandboxes of a function; busy ones stop when their invocation ends."""

    @abstractmethod
    async def reap_idle(self, keep_alive_s: float) -> int:
        """Stop sandboxes idle for longer than ``keep_alive_s``; return how many stopped."""

    @abstractmethod
    async def provision(self, spec: SandboxSpec, count: int) -> None:
        """Keep ``count`` initialised sandboxes of ``spec``'s version ready, with the provisioned
        initialisation type: started in the background, never reaped for idleness, replaced when
        one dies. Invocations of that version use them first. Calling again changes the count and
        retries a failed initialisation."""

    @abstractmethod
    async def unprovision(self, key: str) -> None:
        """Stop keeping sandboxes for the version with this pool key; idle ones stop now, busy ones
        when their invocation ends."""

    @abstractmethod
    def provisioned(self) -> dict[str, ProvisionedState]:
        """Every provisioned version's state, by pool key."""

    @abstractmethod
    async def shutdown(self, grace_s: float) -> None:
        """Let in-flight invocations finish for up to ``grace_s``, then kill every sandbox."""

    @property
    @abstractmethod
    def busy(self) -> int:
        """How many sandboxes are running an invocation right now."""

    @property
    @abstractmethod
    def warm(self) -> int:
        """How many sandboxes are alive (busy or idle)."""
