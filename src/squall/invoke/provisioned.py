"""Provisioned concurrency: the four operations, their rules, and keeping the executor in step.

A config names a published version or an alias; the executor keeps that many initialised
sandboxes of the version it resolves to (an alias follows its version when it is repointed).
What the executor should hold is recomputed from the configs after every change, at start (so
environments come back after a restart) and every second (alias changes, deleted aliases, and
changes made through another server sharing the store). With several servers, each config's
environments are placed by one of them, the holder of its lease (``provisioned_placement.py``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from squall.aliases import is_alias
from squall.background import cancel_and_wait
from squall.errors import InvalidParameterValue, ResourceConflict, ResourceNotFound, SquallError
from squall.executors.base import ProvisionedState
from squall.invoke.concurrency import MIN_UNRESERVED
from squall.invoke.provisioned_placement import ProvisionedPlacement
from squall.invoke.provisioned_store import ProvisionedConfig, ProvisionedStore, timestamp
from squall.invoke.sync import sandbox_spec
from squall.models import LATEST, FunctionConfig, SandboxSpec

if TYPE_CHECKING:
    from squall.aliases import AliasRegistry
    from squall.executors.base import Executor
    from squall.invoke.concurrency import ConcurrencyLimiter
    from squall.registry import FunctionRegistry
    from squall.stores.base import LeaseStore

log = logging.getLogger(__name__)

RECONCILE_INTERVAL_S = 1.0
UNPUBLISHED = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
NOT_PUBLISHED_TARGET = "The function resource provided must be an alias or a published version."
WEIGHTED_ALIAS = "Alias with weights can not be used with Provisioned Concurrency"
# unverified: from LocalStack's Lambda provider (parity-tested against AWS), not an AWS document.
ALIAS_ON_PROVISIONED_VERSION = (
    "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
)
# unverified: from LocalStack's Lambda provider, as above.
VERSION_UNDER_ALIAS = "Version is pointed by a Provisioned Concurrency alias"
# unverified: from LocalStack's Lambda provider, as above.
OVER_RESERVED = (
    "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function"
)
#: AWS's StatusReason when the function's initialisation fails (seen in CloudFormation errors).
INIT_FAILURE = "FUNCTION_ERROR_INIT_FAILURE"


class ProvisionedConcurrencyConfigNotFound(SquallError, LookupError):
    """GetProvisionedConcurrencyConfig of a version or alias without a config."""

    code = "ProvisionedConcurrencyConfigNotFoundException"
    status = 404
    error_type = "User"
    message_key = "message"


class ProvisionedConcurrency:
    """Put, Get, Delete and List provisioned concurrency configs, and the environments behind them."""

    def __init__(
        self,
        store: ProvisionedStore,
        registry: FunctionRegistry,
        aliases: AliasRegistry,
        executor: Executor,
        limiter: ConcurrencyLimiter,
        leases: LeaseStore | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.aliases = aliases
        self.executor = executor
        self.limiter = limiter
        self._configs: dict[tuple[str, str], ProvisionedConfig] = {}
        #: The executor pool key each config's environments live under (its resolved version).
        self._pool_keys: dict[tuple[str, str], str] = {}
        #: The configs whose environments this server places (all of them without leases).
        self.placement = ProvisionedPlacement(leases)
        #: The pools this server placed environments in.
        self._placed: set[str] = set()
        self._lock = asyncio.Lock()  # one reconcile at a time
        self._writes = asyncio.Lock()  # one change of the configs at a time (checks, then write)
        self._loop: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the configs and start their environments (off the request path), then keep them in step."""
        await self.reconcile()
        self._loop = asyncio.ensure_future(self._reconcile_loop())

    async def stop(self) -> None:
        await cancel_and_wait(self._loop)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.placement.release)
        self.store.close()

    async def _refresh(self) -> None:
        """Read the configs again: another server sharing the store may have changed them."""
        self._configs = {(c.function_name, c.qualifier): c for c in await asyncio.to_thread(self.store.list)}

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_INTERVAL_S)
            try:
                await self.reconcile()
            except Exception:
                log.exception("provisioned concurrency reconcile failed")

    async def reconcile(self) -> None:
        """Make the executor hold what the configs this server places ask for: start, resize or stop
        environments. Every config counts against the limits, wherever it is placed."""
        async with self._lock:
            await self._refresh()
            mine = await asyncio.to_thread(self.placement.claim, list(self._configs))
            wanted: dict[str, tuple[SandboxSpec, int]] = {}
            pool_keys: dict[tuple[str, str], str] = {}
            allocations: dict[tuple[str, str], int] = {}
            for key, config in list(self._configs.items()):
                version = await self._resolved(config)
                if version is None:
                    continue
                spec = sandbox_spec(version)
                if key in mine:
                    wanted[spec.pool_key] = (spec, config.requested)
                pool_keys[key] = spec.pool_key
                allocations[(version.name, version.version)] = config.requested
            self._pool_keys = pool_keys
            self.limiter.set_provisioned(allocations)
            held = self.executor.provisioned()
            # This server's pools it no longer places, and any pool no config asks for any more.
            for pool_key in (self._placed | (held.keys() - set(pool_keys.values()))) - wanted.keys():
                await self.executor.unprovision(pool_key)
            self._placed = set(wanted)
            for pool_key, (spec, count) in wanted.items():
                state = held.get(pool_key)
                if state is None or state.target != count:
                    await self.executor.provision(spec, count)

    async def _resolved(self, config: ProvisionedConfig) -> FunctionConfig | None:
        """The version a config's environments run; None (and the config dropped) if its alias is gone."""
        version = config.qualifier
        try:
            if is_alias(config.qualifier):
                version = (await self.aliases.get(config.function_name, config.qualifier)).function_version
            return await self.registry.get(config.function_name, version)
        except ResourceNotFound:
            if is_alias(config.qualifier):
                # Deleting an alias deletes its provisioned concurrency config.
                self._configs.pop((config.function_name, config.qualifier), None)
                await asyncio.to_thread(self.store.delete, config.function_name, config.qualifier)
            return None

    # --- the operations --------------------------------------------------------------------------
    async def put(self, name: str, qualifier: str, requested: int) -> ProvisionedConfig:
        if qualifier == LATEST:
            raise InvalidParameterValue(UNPUBLISHED)
        async with self._writes:
            await self._refresh()
            version = await self._target_version(name, qualifier)
            if version == LATEST:
                raise InvalidParameterValue(UNPUBLISHED)
            await self._check_overlap(name, qualifier, version)
            self._check_limits(name, qualifier, requested)
            config = ProvisionedConfig(
                function_name=name, qualifier=qualifier, requested=requested, last_modified=timestamp()
            )
            await asyncio.to_thread(self.store.put, config)
            self._configs[(name, qualifier)] = config
            await self.reconcile()
            if self.placement.places((name, qualifier)):
                # Even with an unchanged count: a new Put retries an initialisation that failed.
                await self.executor.provision(sandbox_spec(await self.registry.get(name, version)), requested)
        return config

    async def get(self, name: str, qualifier: str) -> ProvisionedConfig:
        await self._existing_target(name, qualifier)
        await self._refresh()
        config = self._configs.get((name, qualifier))
        if config is None:
            raise ProvisionedConcurrencyConfigNotFound("No Provisioned Concurrency Config found for this function")
        return config

    async def delete(self, name: str, qualifier: str) -> None:
        """Remove a config and stop its environments; no config there is not an error."""
        await self._existing_target(name, qualifier)
        async with self._writes:
            await self._refresh()
            if self._configs.pop((name, qualifier), None) is not None:
                await asyncio.to_thread(self.store.delete, name, qualifier)
                await self.reconcile()

    async def list(self, name: str) -> builtins.list[ProvisionedConfig]:
        await self.registry.get(name)
        await self._refresh()
        return sorted((c for (fn, _), c in self._configs.items() if fn == name), key=lambda c: c.qualifier)

    async def forget(self, name: str, qualifier: str | None) -> None:
        """A function (``qualifier=None``) or one version was deleted: its configs and environments go."""
        async with self._writes:
            for key in [k for k in self._configs if k[0] == name and qualifier in (None, k[1])]:
                del self._configs[key]
            await asyncio.to_thread(self.store.delete, name, qualifier)
            await self.reconcile()

    # --- state -----------------------------------------------------------------------------------
    def state(self, config: ProvisionedConfig) -> ProvisionedState:
        """The executor's view of a config's environments (nothing allocated yet if not started)."""
        pool_key = self._pool_keys.get((config.function_name, config.qualifier))
        held = self.executor.provisioned().get(pool_key) if pool_key is not None else None
        return held or ProvisionedState(target=config.requested, allocated=0, idle=0)

    def render(self, config: ProvisionedConfig) -> dict[str, Any]:
        """The members Get/Put return (List adds FunctionArn)."""
        state = self.state(config)
        allocated = min(state.allocated, config.requested)
        body: dict[str, Any] = {
            "RequestedProvisionedConcurrentExecutions": config.requested,
            "AvailableProvisionedConcurrentExecutions": allocated,
            "AllocatedProvisionedConcurrentExecutions": allocated,
        }
        if allocated >= config.requested:
            body["Status"] = "READY"
        elif state.failure is not None:
            body["Status"] = "FAILED"
            body["StatusReason"] = INIT_FAILURE
        else:
            body["Status"] = "IN_PROGRESS"
        body["LastModified"] = config.last_modified
        return body

    # --- rules -----------------------------------------------------------------------------------
    async def _target_version(self, name: str, qualifier: str) -> str:
        """The version ``qualifier`` names (an alias: the one it points to); ResourceNotFound if absent."""
        await self.registry.get(name)
        if is_alias(qualifier):
            alias = await self.aliases.get(name, qualifier)
            if alias.weights:
                raise InvalidParameterValue(WEIGHTED_ALIAS)
            return alias.function_version
        await self.registry.get(name, qualifier)
        return qualifier

    async def _existing_target(self, name: str, qualifier: str) -> None:
        """Get and Delete: the version or alias must exist and must not be ``$LATEST``."""
        if qualifier == LATEST:
            raise InvalidParameterValue(NOT_PUBLISHED_TARGET)
        await self.registry.get(name)
        if is_alias(qualifier):
            await self.aliases.get(name, qualifier)
        else:
            await self.registry.get(name, qualifier)

    async def _check_overlap(self, name: str, qualifier: str, version: str) -> None:
        """A version has at most one config: on itself or on one alias pointing to it."""
        for (fn, other), _config in self._configs.items():
            if fn != name or other == qualifier:
                continue
            other_version = other
            if is_alias(other):
                with contextlib.suppress(ResourceNotFound):
                    other_version = (await self.aliases.get(name, other)).function_version
            if other_version != version:
                continue
            raise ResourceConflict(ALIAS_ON_PROVISIONED_VERSION if is_alias(qualifier) else VERSION_UNDER_ALIAS)

    def _check_limits(self, name: str, qualifier: str, requested: int) -> None:
        """Within the function's reserved concurrency, or leaving the account's unreserved minimum."""
        others = [c for key, c in self._configs.items() if key != (name, qualifier)]
        reserved = self.limiter.reserved.get(name)
        if reserved is not None:
            if sum(c.requested for c in others if c.function_name == name) + requested > reserved:
                raise InvalidParameterValue(OVER_RESERVED)
            return
        # Provisioned concurrency of functions without a reservation comes out of the unreserved pool.
        taken = sum(c.requested for c in others if c.function_name not in self.limiter.reserved)
        minimum = min(MIN_UNRESERVED, self.limiter.limit)
        if self.limiter.unreserved_limit - taken - requested < minimum:
            raise InvalidParameterValue(
                "Specified ConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{minimum}]."
            )
