"""Function URLs in the Lambda API (``/2021-10-31/functions/{name}/url``): their configs.

A function has at most one URL unqualified and one per alias (``Qualifier`` names an alias; AWS's
pattern refuses version numbers and ``$LATEST``). ``InvokeMode`` ``RESPONSE_STREAM`` is accepted
and served buffered: Squall sends the whole answer at once. The gateway port serves the URLs
(``squall.gateway.function_urls``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import secrets
import string
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.api import lambda_wire as wire
from squall.errors import ResourceConflict, ResourceNotFound
from squall.gateway.url_store import FunctionUrl, FunctionUrlStore

PATH = "/2021-10-31/functions/{name}"
_QUALIFIER = re.compile(r"(?!^\d+$)^[0-9a-zA-Z_-]+$")
_QUALIFIER_TEXT = "((?!^\\d+$)^[0-9a-zA-Z-_]+$)"
_URL_ID_ALPHABET = string.ascii_lowercase + string.digits
_CORS_LISTS = {"AllowHeaders": 100, "AllowMethods": 6, "AllowOrigins": 100, "ExposeHeaders": 100}


def url_id() -> str:
    """A new URL id: 32 lowercase letters and digits, like AWS's."""
    return "".join(secrets.choice(_URL_ID_ALPHABET) for _ in range(32))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FunctionUrlsApi:
    """Create/Get/Update/Delete/ListFunctionUrlConfig(s); ``url_base`` formats a URL id as FunctionUrl."""

    def __init__(self, store: FunctionUrlStore, platform: Any, url_base: str) -> None:
        self.store = store
        self.platform = platform
        self.url_base = url_base

    def routes(self, guard: Any) -> list[Route]:
        return [
            Route(PATH + "/url", guard(self.create), methods=["POST"]),
            Route(PATH + "/url", guard(self.get), methods=["GET"]),
            Route(PATH + "/url", guard(self.update), methods=["PUT"]),
            Route(PATH + "/url", guard(self.delete), methods=["DELETE"]),
            Route(PATH + "/urls", guard(self.list), methods=["GET"]),
        ]

    def render(self, url: FunctionUrl, modified: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "FunctionUrl": self.url_base.format(url_id=url.url_id),
            "FunctionArn": url.function_arn,
            "AuthType": url.auth_type,
            "CreationTime": url.created,
            "InvokeMode": url.invoke_mode,
        }
        if url.cors is not None:
            body["Cors"] = url.cors
        if modified:
            body["LastModifiedTime"] = url.modified
        return body

    @staticmethod
    def _json(body: dict[str, Any], status: int = 200) -> Response:
        return Response(json.dumps(body).encode(), status, media_type="application/json")

    @staticmethod
    def _validate(data: dict[str, Any], creating: bool) -> None:
        v = wire.Violations()
        if creating and data.get("AuthType") is None:
            v.add(None, "authType", "Member must not be null")
        v.enum(data.get("AuthType"), "authType", ["NONE", "AWS_IAM"])
        v.enum(data.get("InvokeMode"), "invokeMode", ["BUFFERED", "RESPONSE_STREAM"])
        cors = data.get("Cors") or {}
        for member, most in _CORS_LISTS.items():
            values = cors.get(member)
            if isinstance(values, list) and len(values) > most:
                v.add(
                    values,
                    f"cors.{member[0].lower()}{member[1:]}",
                    f"Member must have length less than or equal to {most}",
                )
        v.at_least(cors.get("MaxAge"), "cors.maxAge", 0)
        v.at_most(cors.get("MaxAge"), "cors.maxAge", 86400)
        v.raise_if_any()

    async def _target(self, request: Request) -> tuple[str, str | None]:
        """(function, alias) a request names; ResourceNotFound if either does not exist."""
        name, qualifier = wire.split_function_name(request.path_params["name"], request.query_params.get("Qualifier"))
        v = wire.Violations()
        v.pattern(qualifier, "qualifier", _QUALIFIER, _QUALIFIER_TEXT)
        v.raise_if_any()
        await self.platform.get_function(name, qualifier)
        return name, qualifier

    def _existing(self, name: str, qualifier: str | None) -> FunctionUrl:
        url = self.store.get(name, qualifier)
        if url is None:
            # unverified: Lambda's generic not-found wording, as for other sub-resources (one
            # emulator, Floci, answers "Function URL config not found" instead).
            raise ResourceNotFound("The resource you requested does not exist.")
        return url

    async def create(self, request: Request) -> Response:
        data = wire.parse_body(request.scope.get("squall.body") or b"")
        self._validate(data, creating=True)
        name, qualifier = await self._target(request)
        arn = str(self.platform.function_arn(name, qualifier))
        # AWS's wording, two spaces included (seen in terraform-provider-aws reports).
        exists = ResourceConflict(
            f"Failed to create function url config for [functionArn = {arn}]. "
            "Error message:  FunctionUrlConfig exists for this Lambda function"
        )
        if self.store.get(name, qualifier) is not None:
            raise exists
        now = _now()
        url = FunctionUrl(
            url_id=url_id(),
            function=name,
            qualifier=qualifier,
            function_arn=arn,
            auth_type=str(data["AuthType"]),
            invoke_mode=str(data.get("InvokeMode") or "BUFFERED"),
            created=now,
            modified=now,
            cors=data.get("Cors"),
        )
        if not await asyncio.to_thread(self.store.create, url):
            raise exists  # another server created one since this one's mirror was read
        return self._json(self.render(url, modified=False), 201)

    async def get(self, request: Request) -> Response:
        name, qualifier = await self._target(request)
        return self._json(self.render(self._existing(name, qualifier)))

    async def update(self, request: Request) -> Response:
        data = wire.parse_body(request.scope.get("squall.body") or b"")
        self._validate(data, creating=False)
        name, qualifier = await self._target(request)
        url = dataclasses.replace(self._existing(name, qualifier))  # the stored one changes only once saved
        if data.get("AuthType") is not None:
            url.auth_type = str(data["AuthType"])
        if data.get("InvokeMode") is not None:
            url.invoke_mode = str(data["InvokeMode"])
        if "Cors" in data:
            url.cors = data["Cors"]
        url.modified = _now()
        await asyncio.to_thread(self.store.put, url)
        return self._json(self.render(url))

    async def delete(self, request: Request) -> Response:
        name, qualifier = await self._target(request)
        url = self._existing(name, qualifier)
        await asyncio.to_thread(self.store.delete, url.url_id)
        return Response(status_code=204)

    async def list(self, request: Request) -> Response:
        name, _ = wire.split_function_name(request.path_params["name"])
        await self.platform.get_function(name)
        raw_limit = request.query_params.get("MaxItems")
        v = wire.Violations()
        limit = int(raw_limit) if raw_limit is not None and raw_limit.lstrip("-").isdigit() else 50
        v.at_least(limit, "maxItems", 1)
        v.at_most(limit, "maxItems", 50)
        v.raise_if_any()
        urls = self.store.of_function(name)
        marker = request.query_params.get("Marker")
        if marker:
            ids = [u.url_id for u in urls]
            urls = urls[ids.index(marker) :] if marker in ids else []
        body: dict[str, Any] = {"FunctionUrlConfigs": [self.render(u) for u in urls[:limit]]}
        if len(urls) > limit:
            body["NextMarker"] = urls[limit].url_id
        return self._json(body)


def routes(platform: Any, guard: Any) -> list[Route]:
    """The function URL routes, when the platform keeps function URLs (the embedded server does)."""
    store = getattr(platform, "function_urls", None)
    if store is None:
        return []
    base = f"http://{{url_id}}.lambda-url.{platform.settings.region}.localhost:{platform.settings.gateway_port}/"
    return FunctionUrlsApi(store, platform, base).routes(guard)
