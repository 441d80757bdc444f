"""Lambda's provisioned concurrency operations (``/2019-09-30/functions/{name}/provisioned-concurrency``).

Put answers 202 (the environments start afterwards), Delete 204; a GET with ``List=ALL`` is
ListProvisionedConcurrencyConfigs, without it GetProvisionedConcurrencyConfig.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.api import lambda_wire as wire
from squall.api.validation import Violations
from squall.errors import InvalidRequestContent, ValidationError
from squall.invoke.provisioned import ProvisionedConcurrency

Endpoint = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Endpoint], Endpoint]
PATH = "/2019-09-30/functions/{name}/provisioned-concurrency"
LIST_MAX = 50


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body).encode(), status, media_type="application/json")


class ProvisionedApi:
    """PutProvisionedConcurrencyConfig, Get..., Delete... and ListProvisionedConcurrencyConfigs."""

    def __init__(self, provisioned: ProvisionedConcurrency) -> None:
        self.provisioned = provisioned

    def routes(self, guard: Guard) -> list[Route]:
        return [
            Route(PATH, guard(self.put), methods=["PUT"]),
            Route(PATH, guard(self.get_or_list), methods=["GET"]),
            Route(PATH, guard(self.delete), methods=["DELETE"]),
        ]

    @staticmethod
    def _target(request: Request) -> tuple[str, str]:
        """(function name, qualifier); the qualifier may come from the query or the function ARN."""
        name, qualifier = wire.split_function_name(
            unquote(request.path_params["name"]), request.query_params.get("Qualifier")
        )
        if qualifier is None:
            v = Violations()
            v.add(None, "qualifier", "Member must not be null")
            v.raise_if_any()
        assert qualifier is not None
        return name, qualifier

    async def put(self, request: Request) -> Response:
        name, qualifier = self._target(request)
        body = wire.parse_body(await request.body())
        requested = body.get("ProvisionedConcurrentExecutions")
        v = Violations()
        if requested is None:
            v.add(None, "provisionedConcurrentExecutions", "Member must not be null")
        v.raise_if_any()
        if not isinstance(requested, int) or isinstance(requested, bool):
            raise InvalidRequestContent("Could not parse request body into json: ProvisionedConcurrentExecutions")
        v.at_least(requested, "provisionedConcurrentExecutions", 1)
        v.raise_if_any()
        config = await self.provisioned.put(name, qualifier, requested)
        return _json(self.provisioned.render(config), 202)

    async def get_or_list(self, request: Request) -> Response:
        if request.query_params.get("List") == "ALL":
            return await self.list(request)
        config = await self.provisioned.get(*self._target(request))
        return _json(self.provisioned.render(config))

    async def delete(self, request: Request) -> Response:
        await self.provisioned.delete(*self._target(request))
        return Response(status_code=204)

    async def list(self, request: Request) -> Response:
        name, _ = wire.split_function_name(unquote(request.path_params["name"]))
        max_items = _max_items(request.query_params.get("MaxItems"))
        configs = await self.provisioned.list(name)
        marker = request.query_params.get("Marker")
        keys = [c.qualifier for c in configs]
        start = keys.index(marker) if marker in keys else 0
        end = start + (max_items or LIST_MAX)
        items = []
        for config in configs[start:end]:
            item = {"FunctionArn": self.provisioned.registry.arn(name, config.qualifier)}
            item.update(self.provisioned.render(config))
            items.append(item)
        body: dict[str, Any] = {"ProvisionedConcurrencyConfigs": items}
        if end < len(configs):
            body["NextMarker"] = keys[end]
        return _json(body)


def _max_items(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(
            f"1 validation error detected: Value '{raw}' at 'maxItems' failed to satisfy "
            "constraint: Member must be a number"
        ) from None
    v = Violations()
    v.at_least(value, "maxItems", 1)
    v.at_most(value, "maxItems", LIST_MAX)
    v.raise_if_any()
    return value
