"""Squall: a self-hosted serverless platform that speaks AWS Lambda's language.

The package stays import-light (sandboxes import its runtime bootstrap with nothing else
installed), so the public names below are loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"
__all__ = [
    "Executor",
    "LocalExecutor",
    "MetadataStore",
    "Platform",
    "Settings",
    "SqliteMetadataStore",
    "__version__",
]

_WHERE = {
    "Executor": "squall.executors.base",
    "LocalExecutor": "squall.executors.local",
    "MetadataStore": "squall.stores.base",
    "Platform": "squall.platform",
    "Settings": "squall.config",
    "SqliteMetadataStore": "squall.stores.sqlite",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'squall' has no attribute {name!r}")
