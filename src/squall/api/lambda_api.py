"""The Lambda REST API (rest-json, ``2015-03-31`` and friends), as botocore's model expects it.

Each endpoint parses and validates the wire format (``lambda_wire``), calls the platform, and
renders Lambda's response shape. Errors are ``SquallError``s rendered in Lambda's error shape.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from squall import config as limits
from squall.aliases import is_alias
from squall.api import function_urls_api, stream_invoke_api
from squall.api import lambda_wire as wire
from squall.api.errors import render_error
from squall.api.esm_api import EventSourceMappingApi
from squall.api.event_config_api import EventInvokeConfigApi
from squall.api.layers_api import LayersApi, function_layers
from squall.api.list_filter import list_filter
from squall.api.provisioned_api import ProvisionedApi
from squall.api.tags_policies_api import TagsPoliciesApi, check_tags
from squall.code_limits import PackageSizes
from squall.errors import (
    AccessDenied,
    InvalidParameterValue,
    InvalidRequestContent,
    ResourceNotFound,
    SquallError,
    ValidationError,
)
from squall.models import LATEST, Alias, FunctionConfig
from squall.platform import Platform
from squall.platform_api import FunctionChanges

Endpoint = Callable[[Request], Awaitable[Response]]
CODE_URL_TTL_S = 600
_INVOKE_PATH = re.compile(rb"^/2015-03-31/functions/([^/]+)/invocations$")
_INVOKE_ASYNC_PATH = re.compile(r"^/2014-11-13/functions/[^/]+/invoke-async/?$")
_ACTIONS = [
    ("POST", re.compile(r"^/2015-03-31/functions/?$"), "CreateFunction"),
    ("GET", re.compile(r"^/2015-03-31/functions/?$"), "ListFunctions"),
    ("GET", re.compile(r"^/2015-03-31/functions/[^/]+/configuration$"), "GetFunctionConfiguration"),
    ("PUT", re.compile(r"^/2015-03-31/functions/[^/]+/configuration$"), "UpdateFunctionConfiguration"),
    ("PUT", re.compile(r"^/2015-03-31/functions/[^/]+/code$"), "UpdateFunctionCode"),
    ("GET", re.compile(r"^/2015-03-31/functions/[^/]+$"), "GetFunction"),
    ("DELETE", re.compile(r"^/2015-03-31/functions/[^/]+$"), "DeleteFunction"),
    ("GET", re.compile(r"^/2016-08-19/account-settings/?$"), "GetAccountSettings"),
    ("POST", re.compile(r"^/2015-03-31/functions/[^/]+/versions$"), "PublishVersion"),
    ("GET", re.compile(r"^/2015-03-31/functions/[^/]+/versions$"), "ListVersionsByFunction"),
    ("POST", re.compile(r"^/2015-03-31/functions/[^/]+/aliases$"), "CreateAlias"),
    ("GET", re.compile(r"^/2015-03-31/functions/[^/]+/aliases$"), "ListAliases"),
    ("GET", re.compile(r"^/2015-03-31/functions/[^/]+/aliases/[^/]+$"), "GetAlias"),
    ("PUT", re.compile(r"^/2015-03-31/functions/[^/]+/aliases/[^/]+$"), "UpdateAlias"),
    ("DELETE", re.compile(r"^/2015-03-31/functions/[^/]+/aliases/[^/]+$"), "DeleteAlias"),
    ("PUT", re.compile(r"^/2017-10-31/functions/[^/]+/concurrency$"), "PutFunctionConcurrency"),
    ("GET", re.compile(r"^/2019-09-30/functions/[^/]+/concurrency$"), "GetFunctionConcurrency"),
    ("DELETE", re.compile(r"^/2017-10-31/functions/[^/]+/concurrency$"), "DeleteFunctionConcurrency"),
]


def _action(method: str, path: str) -> str:
    """The IAM action name of a Lambda API request, for access-denied messages."""
    return next((action for verb, pattern, action in _ACTIONS if verb == method and pattern.match(path)), "*")


LIST_PAGE_MAX = 50


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body).encode(), status, headers=headers, media_type="application/json")


def _body(request: Request) -> bytes:
    body = request.scope.get("squall.body")
    return body if isinstance(body, bytes) else b""


def _error_response(exc: SquallError, request_id: str) -> Response:
    status, headers, body = render_error(exc, request_id)
    response = Response(body, status)
    response.raw_headers = headers
    return response


def _request_id(request: Request) -> str:
    rid = request.scope.get("squall.request_id")
    return rid if isinstance(rid, str) else ""


class LambdaApi:
    """The Lambda service's ASGI app over a ``Platform``."""

    def __init__(self, platform: Platform, code_url_base: str, signing_key: bytes) -> None:
        self.platform = platform
        self.code_url_base = code_url_base
        self.signing_key = signing_key
        self.sizes = PackageSizes(platform.code)
        self.stream_invoke = stream_invoke_api.StreamInvokeApi(platform)
        routes = [
            Route("/2015-03-31/functions", self._guard(self.create_function), methods=["POST"]),
            Route("/2015-03-31/functions/", self._guard(self.list_functions), methods=["GET"]),
            Route("/2015-03-31/functions", self._guard(self.list_functions), methods=["GET"]),
            Route("/2015-03-31/functions/{name}", self._guard(self.get_function), methods=["GET"]),
            Route("/2015-03-31/functions/{name}", self._guard(self.delete_function), methods=["DELETE"]),
            Route(
                "/2015-03-31/functions/{name}/configuration",
                self._guard(self.get_configuration),
                methods=["GET"],
            ),
            Route(
                "/2015-03-31/functions/{name}/configuration",
                self._guard(self.update_configuration),
                methods=["PUT"],
            ),
            Route("/2015-03-31/functions/{name}/code", self._guard(self.update_code), methods=["PUT"]),
            Route("/2014-11-13/functions/{name}/invoke-async/", self._guard(self.invoke_async), methods=["POST"]),
            Route("/2014-11-13/functions/{name}/invoke-async", self._guard(self.invoke_async), methods=["POST"]),
            Route("/2016-08-19/account-settings/", self._guard(self.account_settings), methods=["GET"]),
            Route("/2016-08-19/account-settings", self._guard(self.account_settings), methods=["GET"]),
            Route("/2015-03-31/functions/{name}/versions", self._guard(self.publish_version), methods=["POST"]),
            Route("/2015-03-31/functions/{name}/versions", self._guard(self.list_versions), methods=["GET"]),
            Route("/2015-03-31/functions/{name}/aliases", self._guard(self.create_alias), methods=["POST"]),
            Route("/2015-03-31/functions/{name}/aliases", self._guard(self.list_aliases), methods=["GET"]),
            Route("/2015-03-31/functions/{name}/aliases/{alias}", self._guard(self.get_alias), methods=["GET"]),
            Route("/2015-03-31/functions/{name}/aliases/{alias}", self._guard(self.update_alias), methods=["PUT"]),
            Route("/2015-03-31/functions/{name}/aliases/{alias}", self._guard(self.delete_alias), methods=["DELETE"]),
            Route("/2017-10-31/functions/{name}/concurrency", self._guard(self.put_concurrency), methods=["PUT"]),
            Route("/2019-09-30/functions/{name}/concurrency", self._guard(self.get_concurrency), methods=["GET"]),
            Route("/2017-10-31/functions/{name}/concurrency", self._guard(self.delete_concurrency), methods=["DELETE"]),
        ]
        if platform.mappings is not None and platform.streams is not None and platform.stream_mappings is not None:
            mappings = EventSourceMappingApi(platform.mappings, platform.streams, platform.stream_mappings, platform)
            routes += mappings.routes(self._guard)
        if platform.layers is not None:
            routes += LayersApi(platform.layers, self._code_url).routes(self._guard)
        if platform.policies is not None:
            routes += TagsPoliciesApi(platform, platform.policies).routes(self._guard)
        if platform.event_configs is not None:
            routes += EventInvokeConfigApi(platform.event_configs, platform.registry).routes(self._guard)
        if platform.provisioned is not None:
            routes += ProvisionedApi(platform.provisioned).routes(self._guard)
        routes += function_urls_api.routes(platform, self._guard)
        self.router = Router(routes=routes, default=self._unknown)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") == "POST":
            raw_path = scope.get("raw_path") or scope["path"].encode()
            match = _INVOKE_PATH.match(raw_path)
            if match:
                await self.invoke(scope, match.group(1).decode(), send)
                return
            match = stream_invoke_api.PATH.match(raw_path)
            if match:
                await self.stream_invoke(scope, match.group(1).decode(), send)
                return
        principal = self.platform.keyring.principal(scope.get("squall.access_key"))
        if principal is not None and principal.function is not None and not _INVOKE_ASYNC_PATH.match(scope["path"]):
            # A function's own credentials invoke functions; they never read or change them.
            action = _action(scope["method"], scope["path"])
            denied = AccessDenied(
                f"User: arn:aws:sts::{self.platform.settings.account_id}:assumed-role/squall-function/"
                f"{principal.function} is not authorized to perform: lambda:{action} because no "
                "identity-based policy allows the lambda:" + action + " action"
            )
            await _error_response(denied, str(scope.get("squall.request_id", "")))(scope, receive, send)
            return
        await self.router(scope, receive, send)

    @staticmethod
    def _guard(endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            try:
                return await endpoint(request)
            except SquallError as exc:
                return _error_response(exc, _request_id(request))

        return guarded

    async def _unknown(self, scope: Scope, receive: Receive, send: Send) -> None:
        exc = ResourceNotFound(f"Unknown operation: {scope.get('method')} {scope.get('path')}")
        exc.code = "UnknownOperationException"
        response: ASGIApp = _error_response(exc, str(scope.get("squall.request_id", "")))
        await response(scope, receive, send)

    # --- functions -------------------------------------------------------------------------------
    def _render(self, config: FunctionConfig, alias: str | None = None) -> dict[str, Any]:
        """FunctionConfiguration; read through an alias, its FunctionArn names the alias."""
        if alias is not None:
            return wire.function_configuration(config, self.platform.function_arn(config.name, alias))
        return wire.function_configuration(config, wire.qualified_arn(self.platform.function_arn(config.name), config))

    async def create_function(self, request: Request) -> Response:
        data = wire.parse_body(_body(request))
        v = wire.Violations()
        name = data.get("FunctionName")
        if name is None:
            v.add(None, "functionName", "Member must not be null")
        if data.get("Role") is None:
            v.add(None, "role", "Member must not be null")
        if data.get("Code") is None:
            v.add(None, "code", "Member must not be null")
        wire.validate_settings(data, v)
        if isinstance(data.get("Tags"), dict):
            check_tags(v, data["Tags"])
        v.raise_if_any()
        fn_name, qualifier = wire.split_function_name(str(name), member="functionName", max_len=140)
        if qualifier:
            raise InvalidParameterValue(
                "Unsupported qualifier in function name: a function is created without a version or alias."
            )
        package_type = data.get("PackageType", "Zip")
        if package_type != "Zip":
            raise InvalidParameterValue("Squall runs Zip packages; container images are not supported yet.")
        if not data.get("Runtime") or not data.get("Handler"):
            raise InvalidParameterValue(
                "Runtime and Handler are mandatory parameters for functions created with deployment packages."
            )
        await asyncio.to_thread(wire.check_runtime_supported, data.get("Runtime"))
        code = data["Code"]
        if not isinstance(code, dict) or "ZipFile" not in code:
            raise InvalidParameterValue(
                "Please provide a source for function code: Code.ZipFile (S3 sources come with Squall's buckets)."
            )
        zip_bytes = wire.decode_zip(code["ZipFile"], "Code.ZipFile")
        architectures = data.get("Architectures") or ["x86_64"]
        if architectures not in (["x86_64"], ["arm64"]):
            v.enum(architectures[0] if architectures else None, "architectures", ["x86_64", "arm64"])
            v.raise_if_any()
            raise InvalidParameterValue("Only one architecture may be specified.")
        fields = wire.settings_from(data)
        layer_refs = await asyncio.to_thread(function_layers, self.platform.layers, data)
        if layer_refs is not None:
            fields["layer_refs"] = layer_refs
        await asyncio.to_thread(self.sizes.check, zip_bytes, layer_refs or [])
        config = FunctionConfig(
            name=fn_name,
            code_sha256="",
            code_size=0,
            architectures=list(architectures),
            tags={str(k): str(val) for k, val in (data.get("Tags") or {}).items()},
            runtime=fields.pop("runtime"),
            role=fields.pop("role"),
            handler=fields.pop("handler"),
            **fields,
        )
        created = await self.platform.create_function(config, zip_bytes, bool(data.get("Publish")))
        return _json(self._render(created), 201)

    async def list_functions(self, request: Request) -> Response:
        query = request.query_params
        max_items = _int_param(query.get("MaxItems"), "maxItems", 1, 10000) or LIST_PAGE_MAX
        every_version = list_filter(query.get("MasterRegion"), query.get("FunctionVersion"))
        if every_version is None:  # Lambda@Edge replicas of another region: Squall has none
            return _json({"Functions": []})
        lister = self.platform.registry.list_all_versions if every_version else self.platform.list_functions
        functions, next_marker = await lister(query.get("Marker") or None, min(max_items, LIST_PAGE_MAX))
        body: dict[str, Any] = {
            "Functions": [
                wire.function_configuration(f, self.platform.function_arn(f.name, f.version))
                if every_version
                else self._render(f)
                for f in functions
            ]
        }
        if next_marker:
            body["NextMarker"] = next_marker
        return _json(body)

    async def _lookup(self, request: Request) -> tuple[FunctionConfig, str | None]:
        """The version a Get* request names, and the alias it was named through (if any)."""
        name, qualifier = wire.split_function_name(request.path_params["name"], request.query_params.get("Qualifier"))
        config = await self.platform.get_function(name, qualifier)
        return config, qualifier if is_alias(qualifier) else None

    async def get_function(self, request: Request) -> Response:
        config, alias = await self._lookup(request)
        body: dict[str, Any] = {
            "Configuration": self._render(config, alias),
            "Code": {"RepositoryType": "S3", "Location": self._code_url(config.code_hex)},
        }
        tags = config.tags if config.version == LATEST else (await self.platform.get_function(config.name)).tags
        if tags:
            body["Tags"] = tags
        reserved = await self.platform.get_function_concurrency(config.name)
        if reserved is not None:
            body["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
        return _json(body)

    async def get_configuration(self, request: Request) -> Response:
        config, alias = await self._lookup(request)
        return _json(self._render(config, alias))

    async def delete_function(self, request: Request) -> Response:
        name, qualifier = wire.split_function_name(request.path_params["name"], request.query_params.get("Qualifier"))
        await self.platform.delete_function(name, qualifier)
        return Response(status_code=204)

    async def update_code(self, request: Request) -> Response:
        name, _ = wire.split_function_name(request.path_params["name"])
        data = wire.parse_body(_body(request))
        if "ZipFile" not in data:
            raise InvalidParameterValue(
                "Please provide a source for function code: ZipFile (S3 sources come with Squall's buckets)."
            )
        zip_bytes = wire.decode_zip(data["ZipFile"])
        await asyncio.to_thread(self.sizes.check, zip_bytes, (await self.platform.get_function(name)).layer_refs)
        updated = await self.platform.update_function_code(
            name,  # with Publish=true: the new version
            zip_bytes,
            publish=bool(data.get("Publish")),
            revision_id=data.get("RevisionId"),
            dry_run=bool(data.get("DryRun")),
        )
        return _json(self._render(updated))

    async def update_configuration(self, request: Request) -> Response:
        name, _ = wire.split_function_name(request.path_params["name"])
        data = wire.parse_body(_body(request))
        v = wire.Violations()
        wire.validate_settings(data, v)
        v.raise_if_any()
        await asyncio.to_thread(wire.check_runtime_supported, data.get("Runtime"))
        fields = wire.settings_from(data)
        layer_refs = await asyncio.to_thread(function_layers, self.platform.layers, data)
        if layer_refs is not None:
            fields["layer_refs"] = layer_refs
            await asyncio.to_thread(self.sizes.check, (await self.platform.get_function(name)).code_hex, layer_refs)
        changes = FunctionChanges(**fields)
        updated = await self.platform.update_function_configuration(name, changes, data.get("RevisionId"))
        return _json(self._render(updated))

    # --- invocation ------------------------------------------------------------------------------
    async def invoke(self, scope: Scope, name_in_path: str, send: Send) -> None:
        """Invoke, the hot path: plain ASGI, without the router's Request and Response objects."""
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = str(scope.get("squall.request_id", ""))
        try:
            params = wire.invoke_parameters(name_in_path, query, headers, ["Event", "RequestResponse", "DryRun"])
            body = scope.get("squall.body")
            outcome = await self.platform.invoke(
                params.name,
                params.qualifier,
                body if isinstance(body, bytes) else b"",
                params.invocation_type,
                params.log_type,
                headers.get("x-amz-client-context"),
                request_id=request_id or None,
            )
        except SquallError as exc:
            status, error_headers, error_body = render_error(exc, request_id)
            await send({"type": "http.response.start", "status": status, "headers": error_headers})
            await send({"type": "http.response.body", "body": error_body})
            return
        out = [
            (b"x-amzn-requestid", outcome.request_id.encode()),
            (b"content-length", str(len(outcome.payload)).encode()),
        ]
        if outcome.status_code == 200:
            out.append((b"content-type", b"application/json"))
        if outcome.executed_version:
            out.append((b"x-amz-executed-version", outcome.executed_version.encode()))
        if outcome.function_error:
            out.append((b"x-amz-function-error", outcome.function_error.encode()))
        if outcome.log_result is not None:
            out.append((b"x-amz-log-result", outcome.log_result.encode()))
        await send({"type": "http.response.start", "status": outcome.status_code, "headers": out})
        await send({"type": "http.response.body", "body": outcome.payload})

    async def invoke_async(self, request: Request) -> Response:
        name, qualifier = wire.split_function_name(request.path_params["name"])
        outcome = await self.platform.invoke(name, qualifier, _body(request), "Event")
        return _json({"Status": 202}, 202, headers={"x-amzn-RequestId": outcome.request_id})

    # --- versions --------------------------------------------------------------------------------
    async def publish_version(self, request: Request) -> Response:
        name = _unqualified(request)
        data = wire.parse_body(_body(request))
        v = wire.Violations()
        v.length(data.get("Description"), "description", 256)
        v.raise_if_any()
        version = await self.platform.publish_version(
            name, data.get("CodeSha256"), data.get("Description"), data.get("RevisionId")
        )
        return _json(self._render(version), 201)

    async def list_versions(self, request: Request) -> Response:
        name = _unqualified(request)
        versions = await self.platform.list_versions(name)
        page, next_marker = _page(
            versions, [c.version for c in versions], request.query_params.get("Marker"), _max_items(request)
        )
        # Unlike GetFunction, the listing qualifies $LATEST's ARN too ("...:function:name:$LATEST").
        body: dict[str, Any] = {
            "Versions": [wire.function_configuration(c, self.platform.function_arn(c.name, c.version)) for c in page]
        }
        if next_marker:
            body["NextMarker"] = next_marker
        return _json(body)

    # --- aliases ---------------------------------------------------------------------------------
    def _render_alias(self, alias: Alias) -> dict[str, Any]:
        return wire.alias_configuration(alias, self.platform.function_arn(alias.function_name, alias.name))

    async def create_alias(self, request: Request) -> Response:
        name = _unqualified(request)
        data = wire.parse_body(_body(request))
        v = wire.Violations()
        if data.get("Name") is None:
            v.add(None, "name", "Member must not be null")
        if data.get("FunctionVersion") is None:
            v.add(None, "functionVersion", "Member must not be null")
        wire.validate_alias(data, v)
        v.raise_if_any()
        alias = await self.platform.create_alias(
            name, data["Name"], data["FunctionVersion"], data.get("Description") or "", wire.routing_weights(data)
        )
        return _json(self._render_alias(alias), 201)

    async def get_alias(self, request: Request) -> Response:
        name, alias = self._alias_path(request)
        return _json(self._render_alias(await self.platform.get_alias(name, alias)))

    async def update_alias(self, request: Request) -> Response:
        name, alias_name = self._alias_path(request)
        data = wire.parse_body(_body(request))
        v = wire.Violations()
        wire.validate_alias(data, v)
        v.raise_if_any()
        alias = await self.platform.update_alias(
            name,
            alias_name,
            data.get("FunctionVersion"),
            data.get("Description"),
            wire.routing_weights(data) if "RoutingConfig" in data else None,
            data.get("RevisionId"),
        )
        return _json(self._render_alias(alias))

    async def delete_alias(self, request: Request) -> Response:
        name, alias = self._alias_path(request)
        await self.platform.delete_alias(name, alias)
        return Response(status_code=204)

    async def list_aliases(self, request: Request) -> Response:
        name = _unqualified(request)
        version = request.query_params.get("FunctionVersion") or None
        v = wire.Violations()
        wire.validate_alias({"FunctionVersion": version}, v)
        v.raise_if_any()
        aliases = await self.platform.list_aliases(name, version)
        page, next_marker = _page(
            aliases, [a.name for a in aliases], request.query_params.get("Marker"), _max_items(request)
        )
        body: dict[str, Any] = {"Aliases": [self._render_alias(a) for a in page]}
        if next_marker:
            body["NextMarker"] = next_marker
        return _json(body)

    @staticmethod
    def _alias_path(request: Request) -> tuple[str, str]:
        name = _unqualified(request)
        alias = unquote(request.path_params["alias"])
        v = wire.Violations()
        wire.validate_alias({"Name": alias}, v)
        v.raise_if_any()
        return name, alias

    # --- reserved concurrency --------------------------------------------------------------------
    async def put_concurrency(self, request: Request) -> Response:
        name = _unqualified(request)
        data = wire.parse_body(_body(request))
        reserved = data.get("ReservedConcurrentExecutions")
        v = wire.Violations()
        if reserved is None:
            v.add(None, "reservedConcurrentExecutions", "Member must not be null")
        v.raise_if_any()
        if not isinstance(reserved, int):
            raise InvalidRequestContent("Could not parse request body into json: ReservedConcurrentExecutions")
        v.at_least(reserved, "reservedConcurrentExecutions", 0)
        v.raise_if_any()
        value = await self.platform.put_function_concurrency(name, reserved)
        return _json({"ReservedConcurrentExecutions": value})

    async def get_concurrency(self, request: Request) -> Response:
        reserved = await self.platform.get_function_concurrency(_unqualified(request))
        return _json({} if reserved is None else {"ReservedConcurrentExecutions": reserved})

    async def delete_concurrency(self, request: Request) -> Response:
        await self.platform.delete_function_concurrency(_unqualified(request))
        return Response(status_code=204)

    async def account_settings(self, request: Request) -> Response:
        usage = await self.platform.account_usage()
        limit = self.platform.settings.concurrency_limit
        return _json(
            {
                "AccountLimit": {
                    "TotalCodeSize": limits.TOTAL_CODE_SIZE,
                    "CodeSizeUnzipped": limits.CODE_SIZE_UNZIPPED,
                    "CodeSizeZipped": limits.CODE_SIZE_ZIPPED,
                    "ConcurrentExecutions": limit,
                    "UnreservedConcurrentExecutions": self.platform.limiter.unreserved_limit,
                },
                "AccountUsage": usage,
            }
        )

    # --- code download ---------------------------------------------------------------------------
    def _code_url(self, code_hex: str) -> str:
        expires = int(time.time()) + CODE_URL_TTL_S
        signature = self.sign(code_hex, expires)
        return f"{self.code_url_base}/_squall/code/{code_hex}?Expires={expires}&Signature={signature}"

    def sign(self, code_hex: str, expires: int) -> str:
        return hmac.new(self.signing_key, f"{code_hex}:{expires}".encode(), hashlib.sha256).hexdigest()


def _unqualified(request: Request) -> str:
    """The function a version, alias or concurrency request is about."""
    name, _ = wire.split_function_name(unquote(request.path_params["name"]))
    return name


def _max_items(request: Request) -> int | None:
    return _int_param(request.query_params.get("MaxItems"), "maxItems", 1, 10000)


def _page(items: list[Any], keys: list[str], marker: str | None, max_items: int | None) -> tuple[list[Any], str | None]:
    """One page from ``marker`` (the key of its first item); returns (page, next marker)."""
    start = keys.index(marker) if marker and marker in keys else 0
    if max_items is None:
        return items[start:], None
    end = start + max_items
    return items[start:end], keys[end] if end < len(keys) else None


def _int_param(raw: str | None, member: str, low: int, high: int) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(
            f"1 validation error detected: Value '{raw}' at '{member}' failed to satisfy "
            "constraint: Member must be a number"
        ) from None
    v = wire.Violations()
    v.at_least(value, member, low)
    v.at_most(value, member, high)
    v.raise_if_any()
    return value


__all__ = ["LATEST", "LambdaApi"]
