"""Every resource type ``squall deploy`` can create, gathered from the modules that define them.

Each module of resource types exports a tuple of instances; this is the one place that joins them,
so a new family of types is one new module and one line here.
"""

from __future__ import annotations

from squall.templates.resources import CORE_TYPES, ResourceType
from squall.templates.resources_http import HTTP_TYPES
from squall.templates.resources_services import SERVICE_TYPES

#: Every type ``squall deploy`` can create, by CloudFormation type name.
TYPES: dict[str, ResourceType] = {kind.type_name: kind for kind in (*CORE_TYPES, *SERVICE_TYPES, *HTTP_TYPES)}
