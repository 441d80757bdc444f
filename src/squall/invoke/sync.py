"""The invoke path: resolve the version, take a concurrency slot, run it, then the hooks.

Cross-cutting work (metering, log capture, later metrics and destinations) hangs off
``after_invoke`` hooks instead of being woven into this path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from squall import ids
from squall.aliases import AliasRegistry, is_alias
from squall.errors import ResourceConflict, TooManyRequests
from squall.executors.base import Executor
from squall.invoke.concurrency import ConcurrencyLimiter
from squall.invoke.streaming import ResponseStream
from squall.models import FunctionConfig, InvokeRequest, InvokeResult, SandboxSpec
from squall.registry import FunctionRegistry

AfterInvoke = Callable[[FunctionConfig, InvokeRequest, InvokeResult], None]


def sandbox_spec(config: FunctionConfig) -> SandboxSpec:
    """What the executor needs of a function version."""
    return SandboxSpec(
        function_name=config.name,
        version=config.version,
        revision_id=config.revision_id,
        runtime=config.runtime,
        handler=config.handler,
        code_hex=config.code_hex,
        memory_mb=config.memory_size,
        timeout_s=config.timeout,
        ephemeral_mb=config.ephemeral_storage,
        environment=config.environment,
        architecture=config.architectures[0] if config.architectures else "x86_64",
        log_format=config.logging_config.get("LogFormat", "Text"),
        log_level=config.logging_config.get("ApplicationLogLevel"),
        layer_hexes=tuple(ref.code_hex for ref in config.layer_refs),
    )


class Invoker:
    """Runs invocations for every front end (API, async dispatcher, pollers, gateway)."""

    def __init__(
        self,
        registry: FunctionRegistry,
        executor: Executor,
        limiter: ConcurrencyLimiter,
        hooks: list[AfterInvoke],
        aliases: AliasRegistry | None = None,
    ) -> None:
        self.registry = registry
        self.executor = executor
        self.limiter = limiter
        self.hooks = hooks
        self.aliases = aliases
        #: In-flight invocations per function, and who hears of throttles (metrics read and set these).
        self.running: Counter[str] = Counter()
        self.on_throttle: Callable[[str, str | None], None] = lambda name, qualifier: None

    async def resolve(self, name: str, qualifier: str | None) -> FunctionConfig:
        """The version an invocation will run (an alias picks one by weight); it must be invocable."""
        version = qualifier
        if self.aliases is not None and qualifier is not None and is_alias(qualifier):
            version = await self.aliases.route(name, qualifier)
        config = await self.registry.get_active(name, version)
        if config.state != "Active":
            raise ResourceConflict(
                "The operation cannot be performed at this time. The function is "
                f"currently in the following state: {config.state}"
            )
        return config

    async def invoke(
        self,
        config: FunctionConfig,
        payload: bytes,
        *,
        qualifier: str | None = None,
        client_context: str | None = None,
        trigger: str = "api",
        wait: bool = False,
        request_id: str | None = None,
        stream: ResponseStream | None = None,
        shape: dict[str, Any] | None = None,
    ) -> tuple[InvokeRequest, InvokeResult]:
        """Run one invocation. Over the concurrency limit: throttle, or wait when ``wait``. A
        response the function streams goes to ``stream`` as it comes, when given. ``shape``: how the
        sandbox builds the event from ``payload`` (a stream batch's rows), None when it is the event."""
        if wait:
            slot = await self.limiter.take(config.name, config.version)
        else:
            taken = self.limiter.try_take(config.name, config.version)
            if taken is None:
                self.on_throttle(config.name, qualifier)
                raise TooManyRequests(self.limiter.throttle_reason(config.name))
            slot = taken
        request = InvokeRequest(
            request_id=request_id or ids.request_id(),
            payload=payload,
            invoked_arn=self.registry.arn(config.name, qualifier),
            client_context=client_context,
            trace_id=ids.trace_id(),
            trigger=trigger,
            shape=shape,
        )
        self.running[config.name] += 1
        try:
            result = await self.executor.invoke(sandbox_spec(config), request, stream)
        finally:
            self.running[config.name] -= 1
            self.limiter.release_slot(slot)
        for hook in self.hooks:
            hook(config, request, result)
        return request, result
