"""Provisioned concurrency configs: how many pre-initialised environments a version or alias asks for.

They are kept by function name and qualifier (a version number or an alias name) in their own
SQLite file (like event invoke configs) or the scale-out tier's shared configuration database, so
they survive a restart; the environments themselves are re-created from them when the server starts.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from squall.stores.config import QualifiedConfigs
from squall.stores.sql import SqlDatabase


def timestamp(now: float | None = None) -> str:
    """The LastModified format of these configs: ``2019-12-31T20:28:49+0000`` (no fraction)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(time.time() if now is None else now))


class ProvisionedConfig(msgspec.Struct, kw_only=True):
    """One version's (or alias's) requested provisioned concurrency."""

    function_name: str
    qualifier: str
    requested: int
    last_modified: str


class ProvisionedStore(QualifiedConfigs[ProvisionedConfig]):
    """Provisioned concurrency configs in their own SQLite file, or the shared configuration database."""

    def __init__(self, source: Path | SqlDatabase) -> None:
        super().__init__(source, "provisioned_configs", ProvisionedConfig, "Provisioned concurrency store")
