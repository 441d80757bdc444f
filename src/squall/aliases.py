"""Aliases: named pointers to a function version, with weighted routing to a second version.

Like the function registry, it keeps every alias it has read in a cache, so resolving an alias on
the invoke path never reads the store; it is the only writer, so the cache stays true.
"""

from __future__ import annotations

import asyncio
import builtins
import random
import uuid

import msgspec

from squall.errors import InvalidParameterValue, PreconditionFailed, ResourceConflict, ResourceNotFound
from squall.models import LATEST, Alias
from squall.registry import FunctionRegistry
from squall.stores.base import MetadataStore

REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


def is_alias(qualifier: str | None) -> bool:
    """A qualifier names an alias unless it is ``$LATEST`` or a version number."""
    return bool(qualifier) and qualifier != LATEST and not str(qualifier).isdigit()


class AliasRegistry:
    """Create, read, update and delete aliases; route an invocation through one."""

    def __init__(self, store: MetadataStore, functions: FunctionRegistry, rng: random.Random | None = None) -> None:
        self.store = store
        self.functions = functions
        self._cache: dict[tuple[str, str], Alias] = {}
        #: Bumped by ``forget_function``: a store read that started before it must not refill the cache.
        self._forgotten = 0
        self._lock = asyncio.Lock()
        self._random = rng or random.Random()

    def arn(self, function_name: str, name: str) -> str:
        return self.functions.arn(function_name, name)

    # --- reads -----------------------------------------------------------------------------------
    async def get(self, function_name: str, name: str, missing: str = "Cannot find alias arn") -> Alias:
        """One alias; ResourceNotFound ``"{missing}: {alias arn}"`` if the function or alias is absent."""
        alias = self._cache.get((function_name, name))
        if alias is None:
            await self.functions.get(function_name)
            generation = self._forgotten
            alias = await asyncio.to_thread(self.store.get_alias, function_name, name)
            if alias is None:
                raise ResourceNotFound(f"{missing}: {self.arn(function_name, name)}")
            if generation == self._forgotten:  # else another server changed it meanwhile
                self._cache[(function_name, name)] = alias
        return alias

    async def list(self, function_name: str, function_version: str | None = None) -> list[Alias]:
        await self.functions.get(function_name)
        aliases = await asyncio.to_thread(self.store.list_aliases, function_name)
        return [a for a in aliases if function_version is None or a.function_version == function_version]

    async def route(self, function_name: str, name: str) -> str:
        """The version one invocation through the alias runs: the extra version with its weight's odds."""
        alias = await self.get(function_name, name, missing="Function not found")
        for version, weight in alias.weights.items():
            if self._random.random() < weight:
                return version
        return alias.function_version

    async def primary(self, function_name: str, name: str) -> str:
        """The version an alias points to (what GetFunction with the alias as Qualifier describes)."""
        return (await self.get(function_name, name, missing="Function not found")).function_version

    async def referencing(self, function_name: str, version: str) -> builtins.list[str]:
        """Names of the aliases that route any traffic to ``version``."""
        aliases = await asyncio.to_thread(self.store.list_aliases, function_name)
        return [a.name for a in aliases if a.function_version == version or version in a.weights]

    # --- writes ----------------------------------------------------------------------------------
    async def create(
        self, function_name: str, name: str, version: str, description: str, weights: dict[str, float]
    ) -> Alias:
        async with self._lock:
            await self._check_targets(function_name, version, weights)
            alias = Alias(
                function_name=function_name,
                name=name,
                function_version=version,
                description=description,
                weights=weights,
                revision_id=str(uuid.uuid4()),
            )
            if not await asyncio.to_thread(self.store.insert_alias, alias):
                raise ResourceConflict(f"Alias already exists: {self.arn(function_name, name)}")
            self._cache[(function_name, name)] = alias
            return alias

    async def update(
        self,
        function_name: str,
        name: str,
        version: str | None,
        description: str | None,
        weights: dict[str, float] | None,
        revision_id: str | None,
    ) -> Alias:
        async with self._lock:
            current = await self.get(function_name, name, missing="Alias not found")
            if revision_id is not None and revision_id != current.revision_id:
                raise PreconditionFailed(REVISION_MISMATCH)
            target = current.function_version if version is None else version
            routing = current.weights if weights is None else weights
            await self._check_targets(function_name, target, routing)
            updated = msgspec.structs.replace(
                current,
                function_version=target,
                description=current.description if description is None else description,
                weights=routing,
                revision_id=str(uuid.uuid4()),
            )
            await asyncio.to_thread(self.store.put_alias, updated)
            self._cache[(function_name, name)] = updated
            return updated

    async def delete(self, function_name: str, name: str) -> None:
        async with self._lock:
            await self.functions.get(function_name)
            await asyncio.to_thread(self.store.delete_alias, function_name, name)
            self._cache.pop((function_name, name), None)

    def forget_function(self, function_name: str | None) -> None:
        """Drop the cached aliases of a deleted or changed function (None: of every function)."""
        self._forgotten += 1
        for key in [k for k in self._cache if function_name is None or k[0] == function_name]:
            del self._cache[key]

    # --- helpers ---------------------------------------------------------------------------------
    async def _check_targets(self, function_name: str, version: str, weights: dict[str, float]) -> None:
        await self.functions.get(function_name)
        await self.functions.get(function_name, version)
        if not weights:
            return
        if len(weights) > 1:
            raise InvalidParameterValue("Number of items in AdditionalVersionWeights cannot be greater than 1")
        if version == LATEST:
            raise InvalidParameterValue("$LATEST is not supported for an alias pointing to more than 1 version")
        for extra in weights:
            if extra == version:
                raise InvalidParameterValue(
                    f"Invalid function version {version}. Function version {version} is already included "
                    "in routing configuration."
                )
            await self.functions.get(function_name, extra)
