"""Lambda's event-invoke-config operations (``/2019-09-25/functions/{name}/event-invoke-config``)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.api import lambda_wire as wire
from squall.api.validation import Violations
from squall.errors import InvalidRequestContent
from squall.invoke.event_config import (
    AGE_MAX_S,
    AGE_MIN_S,
    RETRIES_MAX,
    RETRIES_MIN,
    EventInvokeConfig,
    EventInvokeConfigs,
)
from squall.registry import FunctionRegistry

Endpoint = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Endpoint], Endpoint]
PATH = "/2019-09-25/functions/{name}/event-invoke-config"
LIST_MAX = 50
#: DestinationConfig.*.Destination as botocore's model constrains it.
DESTINATION_PATTERN = r"^$|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
_DESTINATION_RE = re.compile(DESTINATION_PATTERN)


def _json(body: Any, status: int = 200) -> Response:
    import json

    return Response(json.dumps(body).encode(), status, media_type="application/json")


class EventInvokeConfigApi:
    """Put (replace), Update (merge), Get, Delete and List."""

    def __init__(self, configs: EventInvokeConfigs, registry: FunctionRegistry) -> None:
        self.configs = configs
        self.registry = registry

    def routes(self, guard: Guard) -> list[Route]:
        return [
            Route(PATH, guard(self.put), methods=["PUT"]),
            Route(PATH, guard(self.update), methods=["POST"]),
            Route(PATH, guard(self.get), methods=["GET"]),
            Route(PATH, guard(self.delete), methods=["DELETE"]),
            Route(PATH + "/list", guard(self.list), methods=["GET"]),
        ]

    def _name(self, request: Request) -> tuple[str, str | None]:
        return wire.split_function_name(unquote(request.path_params["name"]), request.query_params.get("Qualifier"))

    def _render(self, config: EventInvokeConfig) -> dict[str, Any]:
        return config.render(self.registry.arn(config.function_name, config.qualifier))

    async def _write(self, request: Request, replace: bool) -> Response:
        name, qualifier = self._name(request)
        body = wire.parse_body(await request.body())
        _validate(body)
        config = await self.configs.put(name, qualifier, body, replace)
        return _json(self._render(config))

    async def put(self, request: Request) -> Response:
        return await self._write(request, replace=True)

    async def update(self, request: Request) -> Response:
        return await self._write(request, replace=False)

    async def get(self, request: Request) -> Response:
        return _json(self._render(await self.configs.get(*self._name(request))))

    async def delete(self, request: Request) -> Response:
        await self.configs.delete(*self._name(request))
        return Response(status_code=204)

    async def list(self, request: Request) -> Response:
        name, _ = wire.split_function_name(unquote(request.path_params["name"]))
        max_items = _int(request.query_params.get("MaxItems"))
        v = Violations()
        v.at_least(max_items, "maxItems", 1)
        v.at_most(max_items, "maxItems", LIST_MAX)
        v.raise_if_any()
        configs = await self.configs.list(name)
        marker = request.query_params.get("Marker")
        keys = [c.qualifier for c in configs]
        start = keys.index(marker) if marker in keys else 0
        end = start + (max_items or LIST_MAX)
        body: dict[str, Any] = {"FunctionEventInvokeConfigs": [self._render(c) for c in configs[start:end]]}
        if end < len(configs):
            body["NextMarker"] = keys[end]
        return _json(body)


def _int(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidRequestContent(f"Could not parse MaxItems: {raw}") from None


def _validate(body: dict[str, Any]) -> None:
    for member in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
        value = body.get(member)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidRequestContent(f"Could not parse request body into json: {member}")
    v = Violations()
    v.at_least(body.get("MaximumRetryAttempts"), "maximumRetryAttempts", RETRIES_MIN)
    v.at_most(body.get("MaximumRetryAttempts"), "maximumRetryAttempts", RETRIES_MAX)
    v.at_least(body.get("MaximumEventAgeInSeconds"), "maximumEventAgeInSeconds", AGE_MIN_S)
    v.at_most(body.get("MaximumEventAgeInSeconds"), "maximumEventAgeInSeconds", AGE_MAX_S)
    destinations = body.get("DestinationConfig") or {}
    if not isinstance(destinations, dict):
        raise InvalidRequestContent("Could not parse request body into json: DestinationConfig")
    for key, member in (
        ("OnSuccess", "destinationConfig.onSuccess.destination"),
        ("OnFailure", "destinationConfig.onFailure.destination"),
    ):
        target = (destinations.get(key) or {}).get("Destination")
        if target is not None:
            v.length(target, member, 350)
            v.pattern(target, member, _DESTINATION_RE, DESTINATION_PATTERN)
    v.raise_if_any()
