"""CloudFormation's intrinsic functions, resolved against what a deployment knows so far.

``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``, ``Fn::Select`` and ``Fn::Split``; ``Fn::If`` and
``Conditions`` are not supported yet (an error says so). Parameters and the pseudo parameters
(``AWS::Region``, ``AWS::AccountId``, ``AWS::StackName``, ``AWS::Partition``, ``AWS::URLSuffix``,
``AWS::NoValue``) resolve like resources.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from squall.templates.errors import TemplateError

#: A value with this marker is dropped from its parent (``Ref: AWS::NoValue``).
NO_VALUE = object()
_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


class Scope:
    """What names resolve to: parameters, pseudo parameters, and each deployed resource's Ref and attributes."""

    def __init__(self, parameters: Mapping[str, Any], pseudo: Mapping[str, str]) -> None:
        self.values: dict[str, Any] = {**pseudo, **parameters}
        self.attributes: dict[str, dict[str, Any]] = {}

    def ref(self, name: str, where: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name not in self.values:
            raise TemplateError(f"{where}: Ref to {name!r}, which is neither a parameter nor a resource")
        return self.values[name]

    def get_att(self, resource: str, attribute: str, where: str) -> Any:
        found = self.attributes.get(resource)
        if found is None:
            raise TemplateError(f"{where}: Fn::GetAtt of {resource!r}, which is not a resource of the template")
        if attribute not in found:
            raise TemplateError(
                f"{where}: Fn::GetAtt {resource}.{attribute}: Squall does not provide that attribute "
                f"(it has: {', '.join(sorted(found)) or 'none'})"
            )
        return found[attribute]


def references(value: Any) -> set[str]:
    """The names a value refers to with Ref, Fn::GetAtt or Fn::Sub (for ordering resources)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if set(value) == {"Ref"} and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        elif set(value) == {"Fn::GetAtt"}:
            target = value["Fn::GetAtt"]
            found.add(target.split(".", 1)[0] if isinstance(target, str) else str(target[0]))
        elif set(value) == {"Fn::Sub"}:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found |= {m.split(".", 1)[0] for m in _SUB.findall(text)}
            if isinstance(value["Fn::Sub"], list):
                found |= references(value["Fn::Sub"][1])
        else:
            for item in value.values():
                found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def resolve(value: Any, scope: Scope, where: str) -> Any:
    """``value`` with every intrinsic function replaced by what it evaluates to."""
    if isinstance(value, list):
        items = [resolve(item, scope, where) for item in value]
        return [item for item in items if item is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref":
            return scope.ref(str(argument), where)
        if key == "Fn::GetAtt":
            resource, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
            return scope.get_att(str(resource), str(resolve(attribute, scope, where)), where)
        if key == "Fn::Sub":
            return _sub(argument, scope, where)
        if key == "Fn::Join":
            separator, parts = argument
            return str(separator).join(str(p) for p in resolve(parts, scope, where))
        if key == "Fn::Select":
            index, items = resolve(argument, scope, where)
            return items[int(index)]
        if key == "Fn::Split":
            separator, text = resolve(argument, scope, where)
            return str(text).split(str(separator))
        if key.startswith("Fn::") or key == "Condition":
            raise TemplateError(f"{where}: Squall does not support {key} yet")
    resolved = {k: resolve(v, scope, where) for k, v in value.items()}
    return {k: v for k, v in resolved.items() if v is not NO_VALUE}


def _sub(argument: Any, scope: Scope, where: str) -> str:
    text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
    local = {k: resolve(v, scope, where) for k, v in variables.items()}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in local:
            return str(local[name])
        if "." in name:
            resource, attribute = name.split(".", 1)
            return str(scope.get_att(resource, attribute, where))
        return str(scope.ref(name, where))

    return _SUB.sub(replace, str(text)).replace("${!", "${")
