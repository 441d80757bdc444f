"""The runtimes Squall runs, by name: one module per kind of runtime, registered here."""

from __future__ import annotations

from squall.errors import InvalidParameterValue
from squall.runtime.runtimes import node, provided, python
from squall.runtime.runtimes.base import Runtime

_REGISTRY: dict[str, Runtime] = {
    runtime.name: runtime for runtime in (*python.RUNTIMES, *node.RUNTIMES, *provided.RUNTIMES)
}


def names() -> tuple[str, ...]:
    """Every runtime identifier Squall accepts, in registration order."""
    return tuple(_REGISTRY)


def get(name: str) -> Runtime:
    """The runtime called ``name``; InvalidParameterValue when Squall does not run it."""
    runtime = _REGISTRY.get(name)
    if runtime is None:
        raise InvalidParameterValue(f"The runtime parameter of {name} is not supported by this Squall server yet.")
    return runtime


__all__ = ["Runtime", "get", "names"]
