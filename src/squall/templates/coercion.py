"""Property values converted to the types the service's API takes, as CloudFormation does.

CloudFormation hands every parameter to a template as a string (``Ref`` to a ``Number`` parameter
is ``"512"``) and converts property values to the resource's types, so ``MemorySize: !Ref Memory``
creates a function with 512 MB. Squall does it where it calls the APIs: a botocore hook that,
before boto3 validates a request, turns strings into the integers, floats and booleans the
operation's input shape asks for, and numbers and booleans into the strings it asks for (an
environment variable given as ``0.5`` or ``true``). Strings that do not convert are left for boto3
to refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.model import OperationModel, Shape

_INTEGERS = frozenset({"integer", "long"})
_FLOATS = frozenset({"float", "double"})


def typed(value: Any, shape: Shape) -> Any:
    """``value`` converted wherever ``shape`` (and its members) want a number, a boolean or a string."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members  # type: ignore[attr-defined]
        return {key: typed(item, members[key]) if key in members else item for key, item in value.items()}
    if kind == "list" and isinstance(value, list):
        return [typed(item, shape.member) for item in value]  # type: ignore[attr-defined]
    if kind == "map" and isinstance(value, dict):
        return {key: typed(item, shape.value) for key, item in value.items()}  # type: ignore[attr-defined]
    if kind == "string" and isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if not isinstance(value, str):
        return value
    try:
        if kind in _INTEGERS:
            return int(value)
        if kind in _FLOATS:
            return float(value)
    except ValueError:
        return value
    if kind == "boolean" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _typed_params(params: dict[str, Any], model: OperationModel, **_: Any) -> dict[str, Any] | None:
    return None if model.input_shape is None else typed(params, model.input_shape)


def typed_clients(factory: Callable[[str], Any]) -> Callable[[str], Any]:
    """A client factory whose clients convert their parameters with ``typed`` before sending them."""

    def client(service: str) -> Any:
        made = factory(service)
        made.meta.events.register("provide-client-params", _typed_params, unique_id="squall-typed-params")
        return made

    return client
