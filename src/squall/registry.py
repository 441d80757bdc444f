"""The function registry: create, read, update and delete functions with Lambda's semantics.

It owns function state (Pending -> Active, LastUpdateStatus), revision ids and timestamps, and
keeps a cache of configurations so the invoke path never reads the store.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import msgspec

from squall.errors import InvalidParameterValue, PreconditionFailed, ResourceConflict, ResourceNotFound
from squall.models import LATEST, FunctionConfig
from squall.platform_api import FunctionChanges
from squall.stores.base import MetadataStore
from squall.stores.code import CodeStore

log = logging.getLogger(__name__)


#: What PublishVersion compares to decide whether ``$LATEST`` changed since the last version.
_UNVERSIONED = frozenset(
    {
        "version",
        "description",
        "last_modified",
        "revision_id",
        "state",
        "state_reason",
        "state_reason_code",
        "last_update_status",
        "last_update_status_reason",
        "last_update_status_reason_code",
        "tags",
        "last_version",
        "source_signature",
    }
)


def _signature(config: FunctionConfig) -> str:
    """A digest of ``$LATEST``'s code and configuration (its description included)."""
    import hashlib

    fields = {k: v for k, v in msgspec.structs.asdict(config).items() if k not in _UNVERSIONED}
    fields["description"] = config.description
    return hashlib.sha256(msgspec.json.encode(fields, order="sorted")).hexdigest()


#: Functions whose versions one store read lists while paging through every version.
_NAMES_BATCH = 50


def _version_key(version: str) -> int:
    """Sort key of a version: ``$LATEST`` first, then published versions by number."""
    return int(version) if version.isdigit() else 0


def now_timestamp() -> str:
    """Lambda's LastModified format: ``2020-04-10T19:06:32.563+0000``."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}+0000"


class FunctionRegistry:
    """Functions and their versions. ``on_change`` is told when a function's sandboxes go stale."""

    def __init__(
        self,
        store: MetadataStore,
        code: CodeStore,
        account_id: str,
        region: str,
        on_change: Callable[[str], Awaitable[None]],
    ) -> None:
        self.store = store
        self.code = code
        self.account_id = account_id
        self.region = region
        self.on_change = on_change
        self._cache: dict[tuple[str, str], FunctionConfig] = {}
        #: Bumped by ``forget``: a store read that started before it must not refill the cache.
        self._forgotten = 0
        self._settling: dict[str, asyncio.Task[None]] = {}
        self._publishing: dict[str, asyncio.Lock] = {}

    def arn(self, name: str, qualifier: str | None = None) -> str:
        base = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"
        return f"{base}:{qualifier}" if qualifier else base

    # --- reads -----------------------------------------------------------------------------------
    async def get(self, name: str, qualifier: str | None = None) -> FunctionConfig:
        """One version (``$LATEST`` by default); ResourceNotFound with Lambda's message."""
        version = qualifier or LATEST
        config = self._cache.get((name, version))
        if config is None:
            generation = self._forgotten
            config = await asyncio.to_thread(self.store.get_function, name, version)
            if config is None:
                raise ResourceNotFound(f"Function not found: {self.arn(name, qualifier)}")
            if generation == self._forgotten:  # else another server changed it meanwhile: read again next time
                self._cache[(name, version)] = config
        return config

    async def get_active(self, name: str, qualifier: str | None = None) -> FunctionConfig:
        """Like ``get``, but waits for a function that is still settling (Pending/InProgress)."""
        config = await self.get(name, qualifier)
        task = self._settling.get(name)
        if task is not None and (config.state == "Pending" or config.last_update_status == "InProgress"):
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
            config = await self.get(name, qualifier)
        return config

    async def list(self, marker: str | None, limit: int) -> tuple[list[FunctionConfig], str | None]:
        return await asyncio.to_thread(self.store.list_functions, marker, limit)

    async def list_all_versions(
        self, marker: str | None, limit: int
    ) -> tuple[builtins.list[FunctionConfig], str | None]:
        """ListFunctions with FunctionVersion=ALL: ``$LATEST`` and every published version of each
        function, by function name and then version; the marker is ``name:version`` of the next item."""
        return await asyncio.to_thread(self._all_versions_page, marker, limit)

    def _all_versions_page(self, marker: str | None, limit: int) -> tuple[builtins.list[FunctionConfig], str | None]:
        start_name, _, start_version = (marker or "").partition(":")
        start = (start_name, _version_key(start_version or LATEST))
        page: builtins.list[FunctionConfig] = []
        names_marker: str | None = start_name or None
        while True:
            functions, names_marker = self.store.list_functions(names_marker, _NAMES_BATCH)
            for function in functions:
                for config in self.store.list_versions(function.name):
                    if (config.name, _version_key(config.version)) < start:
                        continue
                    if len(page) == limit:
                        return page, f"{config.name}:{config.version}"
                    page.append(config)
            if names_marker is None:
                return page, None

    # --- writes ----------------------------------------------------------------------------------
    async def create(self, config: FunctionConfig, zip_bytes: bytes, publish: bool) -> FunctionConfig:
        ref = await asyncio.to_thread(self.code.put, zip_bytes)
        config = msgspec.structs.replace(
            config,
            code_sha256=ref.sha256_b64,
            code_size=ref.size,
            version=LATEST,
            last_modified=now_timestamp(),
            revision_id=str(uuid.uuid4()),
            state="Pending",
            state_reason="The function is being created.",
            state_reason_code="Creating",
            last_update_status="Successful",
        )
        await asyncio.to_thread(self.store.create_function, config)
        self._cache[(config.name, LATEST)] = config
        self._settle(config.name, ref.hex, creating=True)
        if publish:
            return await self.publish(config.name)
        return config

    async def update_code(
        self, name: str, zip_bytes: bytes, publish: bool, revision_id: str | None, dry_run: bool = False
    ) -> FunctionConfig:
        current = await self._updatable(name, revision_id)
        ref = await asyncio.to_thread(self.code.put, zip_bytes, operation="UpdateFunctionCode")
        updated = msgspec.structs.replace(current, code_sha256=ref.sha256_b64, code_size=ref.size)
        if dry_run:
            return updated
        updated = await self._save_update(updated)
        self._settle(name, ref.hex, creating=False)
        if publish:
            return await self.publish(name)
        return updated

    async def update_configuration(
        self, name: str, changes: FunctionChanges, revision_id: str | None
    ) -> FunctionConfig:
        current = await self._updatable(name, revision_id)
        updated = msgspec.structs.replace(current, **changes.as_dict())
        updated = await self._save_update(updated)
        self._settle(name, updated.code_hex, creating=False)
        return updated

    async def publish(
        self,
        name: str,
        code_sha256: str | None = None,
        description: str | None = None,
        revision_id: str | None = None,
        wait: bool = True,
    ) -> FunctionConfig:
        """Publish ``$LATEST`` as the next numbered version, or return the last one if nothing changed.

        ``wait``: let a create or update in progress finish first (Publish=true); otherwise such a
        function is refused with ResourceConflict, as PublishVersion is on Lambda.
        """
        lock = self._publishing.setdefault(name, asyncio.Lock())
        async with lock:
            latest = await (self.get_active(name) if wait else self._updatable(name, revision_id))
            if code_sha256 is not None and code_sha256 != latest.code_sha256:
                raise InvalidParameterValue(
                    f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST "
                    f"({latest.code_sha256}). Please try again with the CodeSHA256 in $LATEST."
                )
            # Numbers are never reused; files from before ``last_version`` existed count what they hold.
            existing = await asyncio.to_thread(self.store.list_versions, name)
            highest = max([latest.last_version, *(int(c.version) for c in existing if c.version != LATEST)])
            previous = next((c for c in existing if c.version == str(highest)), None)
            if previous is not None and previous.source_signature == _signature(latest):
                self._cache[(name, previous.version)] = previous
                return previous
            number = highest + 1
            version = msgspec.structs.replace(
                latest,
                version=str(number),
                description=latest.description if description is None else description,
                last_modified=now_timestamp(),
                revision_id=str(uuid.uuid4()),
                last_version=0,
                source_signature=_signature(latest),
            )
            await asyncio.to_thread(self.store.put_function, version)
            self._cache[(name, version.version)] = version
            current = await self.get(name)
            bumped = msgspec.structs.replace(current, last_version=number)
            await asyncio.to_thread(self.store.put_function, bumped)
            self._cache[(name, LATEST)] = bumped
            return version

    async def versions(self, name: str) -> builtins.list[FunctionConfig]:
        """``$LATEST`` and every published version, oldest first; ResourceNotFound if no function."""
        await self.get(name)
        return await asyncio.to_thread(self.store.list_versions, name)

    async def delete(self, name: str, qualifier: str | None) -> None:
        if qualifier == LATEST:
            raise InvalidParameterValue("$LATEST version cannot be deleted without deleting the function.")
        await self.get(name, qualifier)
        await asyncio.to_thread(self.store.delete_function, name, qualifier)
        for key in [k for k in self._cache if k[0] == name and (qualifier is None or k[1] == qualifier)]:
            del self._cache[key]
        await self.on_change(name)

    def forget(self, name: str | None) -> None:
        """Drop the cached configurations of ``name`` (None: of every function): another server
        changed them, the next read goes to the store."""
        self._forgotten += 1
        for key in [k for k in self._cache if name is None or k[0] == name]:
            del self._cache[key]

    async def set_tags(self, name: str, tags: dict[str, str]) -> None:
        """Replace a function's tags (kept on ``$LATEST``; its revision id does not change)."""
        current = await self.get(name)
        updated = msgspec.structs.replace(current, tags=dict(tags))
        await asyncio.to_thread(self.store.put_function, updated)
        self._cache[(name, LATEST)] = updated

    # --- helpers ---------------------------------------------------------------------------------
    async def _updatable(self, name: str, revision_id: str | None) -> FunctionConfig:
        current = await self.get(name)
        if current.state == "Pending":
            raise ResourceConflict(
                "The operation cannot be performed at this time. The function is "
                "currently in the following state: Pending"
            )
        if current.last_update_status == "InProgress":
            raise ResourceConflict(
                "The operation cannot be performed at this time. An update is in "
                f"progress for resource: {self.arn(name)}"
            )
        if revision_id is not None and revision_id != current.revision_id:
            raise PreconditionFailed(
                "The Revision Id provided does not match the latest Revision Id. "
                "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
            )
        return current

    async def _save_update(self, updated: FunctionConfig) -> FunctionConfig:
        updated = msgspec.structs.replace(
            updated,
            last_modified=now_timestamp(),
            revision_id=str(uuid.uuid4()),
            last_update_status="InProgress",
            last_update_status_reason="The function is being created.",
            last_update_status_reason_code="Creating",
        )
        await asyncio.to_thread(self.store.put_function, updated)
        self._cache[(updated.name, LATEST)] = updated
        return updated

    def _settle(self, name: str, code_hex: str, creating: bool) -> None:
        """Finish a create or update in the background: unpack the code, then go Active."""
        self._settling[name] = asyncio.ensure_future(self._finish(name, code_hex, creating))

    async def _finish(self, name: str, code_hex: str, creating: bool) -> None:
        try:
            await asyncio.to_thread(self.code.unpacked, code_hex)
            failure: str | None = None
        except Exception as exc:
            log.exception("preparing code of %s failed", name)
            failure = str(exc)
        current = await asyncio.to_thread(self.store.get_function, name, LATEST)
        if current is None:
            return
        if creating:
            settled = msgspec.structs.replace(
                current,
                state="Failed" if failure else "Active",
                state_reason=failure,
                state_reason_code="InternalError" if failure else None,
            )
        else:
            settled = msgspec.structs.replace(
                current,
                last_update_status="Failed" if failure else "Successful",
                last_update_status_reason=failure,
                last_update_status_reason_code="InternalError" if failure else None,
            )
        await asyncio.to_thread(self.store.put_function, settled)
        self._cache[(name, LATEST)] = settled
        await self.on_change(name)
