"""The function cache never keeps a configuration read before another server changed it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from squall.models import FunctionConfig
from squall.registry import FunctionRegistry
from squall.stores.code import CodeStore
from squall.stores.sqlite import SqliteMetadataStore


class ChangedWhileRead(SqliteMetadataStore):
    """A store where another server's change lands while this server's read is on its way back."""

    registry: FunctionRegistry | None = None

    def get_function(self, name: str, version: str) -> FunctionConfig | None:
        stale = super().get_function(name, version)
        if self.registry is not None and stale is not None:
            changed = msgspec.structs.replace(stale, last_update_status="Successful")
            self.put_function(changed)
            self.registry.forget(name)  # what the change notification does
            self.registry = None
        return stale


def test_a_read_overtaken_by_a_change_is_not_cached(tmp_path: Path) -> None:
    store = ChangedWhileRead(tmp_path / "squall.db")

    async def changed(_: str) -> None:
        return None

    registry = FunctionRegistry(store, CodeStore(tmp_path / "code"), "000000000000", "us-east-1", changed)
    config = FunctionConfig(
        name="f", runtime="python3.11", role="arn:aws:iam::000000000000:role/r", handler="app.handler",
        code_sha256="", code_size=0, last_update_status="InProgress",
    )  # fmt: skip
    store.put_function(config)
    store.registry = registry

    async def scenario() -> None:
        first = await registry.get("f")
        assert first.last_update_status == "InProgress"  # the read that was overtaken
        assert (await registry.get("f")).last_update_status == "Successful"  # not served from the cache

    asyncio.run(scenario())
    store.close()
