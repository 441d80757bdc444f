"""Event invoke configs: per function version or alias, how async events are retried and routed.

PutFunctionEventInvokeConfig replaces a config, UpdateFunctionEventInvokeConfig merges into it.
Configs are kept by function name and qualifier in their own SQLite file (embedded tier) or the
shared configuration database (scale-out tier).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from squall.aliases import is_alias
from squall.errors import InvalidParameterValue, ResourceNotFound
from squall.models import LATEST
from squall.stores.config import QualifiedConfigs
from squall.stores.sql import SqlDatabase

if TYPE_CHECKING:
    from squall.aliases import AliasRegistry
    from squall.registry import FunctionRegistry

DEFAULT_RETRIES = 2
DEFAULT_MAX_AGE_S = 21_600
RETRIES_MIN, RETRIES_MAX = 0, 2
AGE_MIN_S, AGE_MAX_S = 60, 21_600


class EventInvokeConfig(msgspec.Struct, kw_only=True):
    """One function version's (or alias's) async settings; ``None`` means Lambda's default."""

    function_name: str
    qualifier: str
    last_modified: float
    maximum_retry_attempts: int | None = None
    maximum_event_age_s: int | None = None
    on_success: str | None = None
    on_failure: str | None = None

    @property
    def retries(self) -> int:
        return DEFAULT_RETRIES if self.maximum_retry_attempts is None else self.maximum_retry_attempts

    @property
    def max_age_s(self) -> int:
        return DEFAULT_MAX_AGE_S if self.maximum_event_age_s is None else self.maximum_event_age_s

    def apply(self, body: dict[str, Any], replace: bool) -> EventInvokeConfig:
        """A copy with the request's members: all of them (``replace``) or only those it names."""
        out = msgspec.structs.replace(self, last_modified=time.time())
        if replace or "MaximumRetryAttempts" in body:
            out.maximum_retry_attempts = body.get("MaximumRetryAttempts")
        if replace or "MaximumEventAgeInSeconds" in body:
            out.maximum_event_age_s = body.get("MaximumEventAgeInSeconds")
        destinations = body.get("DestinationConfig")
        if replace or destinations is not None:
            destinations = destinations or {}
            for key, attr in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
                if replace or key in destinations:
                    setattr(out, attr, (destinations.get(key) or {}).get("Destination") or None)
        return out

    def render(self, function_arn: str) -> dict[str, Any]:
        body: dict[str, Any] = {"LastModified": self.last_modified, "FunctionArn": function_arn}
        if self.maximum_retry_attempts is not None:
            body["MaximumRetryAttempts"] = self.maximum_retry_attempts
        if self.maximum_event_age_s is not None:
            body["MaximumEventAgeInSeconds"] = self.maximum_event_age_s
        body["DestinationConfig"] = {
            "OnSuccess": {"Destination": self.on_success} if self.on_success else {},
            "OnFailure": {"Destination": self.on_failure} if self.on_failure else {},
        }
        return body


class EventConfigStore(QualifiedConfigs[EventInvokeConfig]):
    """Event invoke configs in their own SQLite file, or the shared configuration database."""

    def __init__(self, source: Path | SqlDatabase) -> None:
        super().__init__(source, "event_invoke_configs", EventInvokeConfig, "Event invoke config store")


class EventInvokeConfigs:
    """The five event-invoke-config operations over a store, checking that the target exists."""

    def __init__(self, store: EventConfigStore, registry: FunctionRegistry, aliases: AliasRegistry) -> None:
        self.store = store
        self.registry = registry
        self.aliases = aliases

    async def _target(self, name: str, qualifier: str | None) -> str:
        """The qualifier a config is stored under; ResourceNotFound if the function/version/alias is absent."""
        if qualifier is not None and is_alias(qualifier):
            await self.aliases.get(name, qualifier, missing="Function not found")
            return qualifier
        await self.registry.get(name, qualifier)
        return qualifier or LATEST

    def _missing(self, name: str, qualifier: str) -> ResourceNotFound:
        return ResourceNotFound(f"The function {self.registry.arn(name, qualifier)} doesn't have an EventInvokeConfig")

    async def put(self, name: str, qualifier: str | None, body: dict[str, Any], replace: bool) -> EventInvokeConfig:
        target = await self._target(name, qualifier)
        current = await asyncio.to_thread(self.store.get, name, target)
        if current is None:
            if not replace:
                raise self._missing(name, target)
            current = EventInvokeConfig(function_name=name, qualifier=target, last_modified=0.0)
        updated = current.apply(body, replace)
        for destination in (updated.on_success, updated.on_failure):
            if destination and _names_function(destination, self.registry.arn(name)):
                raise InvalidParameterValue("You can't specify the function as a destination for itself.")
        await asyncio.to_thread(self.store.put, updated)
        return updated

    async def get(self, name: str, qualifier: str | None) -> EventInvokeConfig:
        target = await self._target(name, qualifier)
        found = await asyncio.to_thread(self.store.get, name, target)
        if found is None:
            raise self._missing(name, target)
        return found

    async def delete(self, name: str, qualifier: str | None) -> None:
        target = await self._target(name, qualifier)
        if not await asyncio.to_thread(self.store.delete, name, target):
            raise self._missing(name, target)

    async def list(self, name: str) -> list[EventInvokeConfig]:
        await self.registry.get(name, None)
        return await asyncio.to_thread(self.store.list, name)

    async def forget(self, name: str, qualifier: str | None) -> None:
        """A function (or one version) was deleted: its configs go too."""
        await asyncio.to_thread(self.store.delete, name, qualifier)


def _names_function(destination: str, function_arn: str) -> bool:
    return destination == function_arn or destination.startswith(function_arn + ":")
