"""Lambda's layer operations (``/2018-10-31/layers``) and the ``Layers`` member of functions.

Layer version permissions (Add/RemoveLayerVersionPermission, GetLayerVersionPolicy) are stored and
returned, not enforced: every layer is usable by every function of the server.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.api import lambda_wire as wire
from squall.errors import InvalidParameterValue, ResourceNotFound, ValidationError
from squall.layers import LayerRegistry, LayerVersion
from squall.models import LayerRef
from squall.registry import now_timestamp

PATH = "/2018-10-31/layers"
NOT_FOUND = "The resource you requested does not exist."
_REGION = r"[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}"
LAYER_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?" + _REGION + r":\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+"
)
LAYER_VERSION_ARN_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?" + _REGION + r":\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)"
    r"|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)
_LAYER_NAME_RE = re.compile(LAYER_NAME_PATTERN)
_LAYER_VERSION_ARN_RE = re.compile(LAYER_VERSION_ARN_PATTERN)
ARCHITECTURES = ["x86_64", "arm64"]
LIST_MAX = 50
STATEMENT_ID_PATTERN = r"([a-zA-Z0-9-_]+)"
LAYER_ACTION_PATTERN = r"lambda:GetLayerVersion"
LAYER_PRINCIPAL_PATTERN = r"\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root"
ORGANIZATION_ID_PATTERN = r"o-[a-z0-9]{10,32}"


def _json(body: Any, status: int = 200) -> Response:
    import json

    return Response(json.dumps(body).encode(), status, media_type="application/json")


def function_layers(layers: LayerRegistry | None, data: dict[str, Any]) -> list[LayerRef] | None:
    """The resolved ``Layers`` of a CreateFunction / UpdateFunctionConfiguration request (None: absent)."""
    arns = data.get("Layers")
    if arns is None:
        return None
    if not isinstance(arns, list) or any(
        not isinstance(a, str) or not 1 <= len(a) <= 2048 or not _LAYER_VERSION_ARN_RE.fullmatch(a) for a in arns
    ):
        shown = "[" + ", ".join(str(a) for a in (arns if isinstance(arns, list) else [arns])) + "]"
        raise ValidationError(
            f"1 validation error detected: Value '{shown}' at 'layers' failed to satisfy constraint: Member must "
            "satisfy constraint: [Member must have length less than or equal to 2048, Member must have length "
            f"greater than or equal to 1, Member must satisfy regular expression pattern: {LAYER_VERSION_ARN_PATTERN}, "
            "Member must not be null]"
        )
    if layers is None:
        raise InvalidParameterValue("Layers are not available on this Squall server.")
    return layers.resolve(arns)


class LayersApi:
    """PublishLayerVersion, GetLayerVersion(ByArn), ListLayers, ListLayerVersions, DeleteLayerVersion."""

    def __init__(self, layers: LayerRegistry, code_url: Callable[[str], str]) -> None:
        self.layers = layers
        self.code_url = code_url

    def routes(self, guard: Any) -> list[Route]:
        return [
            Route(PATH, guard(self.list_layers), methods=["GET"]),
            Route(PATH + "/", guard(self.list_layers), methods=["GET"]),
            Route(PATH + "/{layer}/versions", guard(self.publish), methods=["POST"]),
            Route(PATH + "/{layer}/versions", guard(self.list_versions), methods=["GET"]),
            Route(PATH + "/{layer}/versions/{number}", guard(self.get), methods=["GET"]),
            Route(PATH + "/{layer}/versions/{number}", guard(self.delete), methods=["DELETE"]),
            Route(PATH + "/{layer}/versions/{number}/policy", guard(self.add_permission), methods=["POST"]),
            Route(PATH + "/{layer}/versions/{number}/policy", guard(self.get_policy), methods=["GET"]),
            Route(PATH + "/{layer}/versions/{number}/policy/{sid}", guard(self.remove_permission), methods=["DELETE"]),
        ]

    # --- rendering -------------------------------------------------------------------------------
    def _summary(self, layer: LayerVersion) -> dict[str, Any]:
        """LayerVersionsListItem."""
        body: dict[str, Any] = {
            "LayerVersionArn": self.layers.version_arn(layer.name, layer.version),
            "Version": layer.version,
            "Description": layer.description,
            "CreatedDate": layer.created_date,
            "CompatibleRuntimes": layer.compatible_runtimes,
            "CompatibleArchitectures": layer.compatible_architectures,
        }
        if layer.license_info is not None:
            body["LicenseInfo"] = layer.license_info
        return body

    def _full(self, layer: LayerVersion) -> dict[str, Any]:
        """GetLayerVersionResponse / PublishLayerVersionResponse."""
        return {
            "Content": {
                "Location": self.code_url(layer.code_hex),
                "CodeSha256": layer.code_sha256,
                "CodeSize": layer.code_size,
            },
            "LayerArn": self.layers.layer_arn(layer.name),
            **self._summary(layer),
        }

    # --- endpoints -------------------------------------------------------------------------------
    async def publish(self, request: Request) -> Response:
        name = _layer_name(request.path_params["layer"])
        data = wire.parse_body(await _body(request))
        v = wire.Violations()
        if data.get("Content") is None:
            v.add(None, "content", "Member must not be null")
        v.length(data.get("Description"), "description", 256)
        v.length(data.get("LicenseInfo"), "licenseInfo", 512)
        _check_list(v, data.get("CompatibleRuntimes"), "compatibleRuntimes", 15, wire.RUNTIMES)
        _check_list(v, data.get("CompatibleArchitectures"), "compatibleArchitectures", 2, ARCHITECTURES)
        v.raise_if_any()
        content = data["Content"]
        if not isinstance(content, dict) or "ZipFile" not in content:
            raise InvalidParameterValue(
                "Please provide a source for layer code: Content.ZipFile (S3 sources come with Squall's buckets)."
            )
        zip_bytes = wire.decode_zip(content["ZipFile"], "Content.ZipFile")
        ref = await asyncio.to_thread(self.layers.code.put, zip_bytes, operation="PublishLayerVersion")
        layer = LayerVersion(
            name=name,
            version=0,
            description=data.get("Description") or "",
            created_date=now_timestamp(),
            compatible_runtimes=list(data.get("CompatibleRuntimes") or []),
            compatible_architectures=list(data.get("CompatibleArchitectures") or []),
            license_info=data.get("LicenseInfo"),
            code_sha256=ref.sha256_b64,
            code_hex=ref.hex,
            code_size=ref.size,
        )
        stored = await asyncio.to_thread(self.layers.store.publish, layer)
        return _json(self._full(stored), 201)

    async def get(self, request: Request) -> Response:
        name = _layer_name(request.path_params["layer"])
        layer = await self._find(name, _number(request.path_params["number"]))
        return _json(self._full(layer))

    async def delete(self, request: Request) -> Response:
        name = _layer_name(request.path_params["layer"])
        await asyncio.to_thread(self.layers.store.delete, name, _number(request.path_params["number"]))
        return Response(status_code=204)

    async def list_layers(self, request: Request) -> Response:
        query = request.query_params
        if query.get("find") == "LayerVersion":
            return await self._get_by_arn(query.get("Arn"))
        runtime, architecture, max_items = _filters(request)
        names = await asyncio.to_thread(self.layers.store.names)
        items: list[dict[str, Any]] = []
        for name in names:
            versions = await asyncio.to_thread(self.layers.store.versions, name)
            latest = next((lv for lv in versions if _matches(lv, runtime, architecture)), None)
            if latest is not None:
                items.append(
                    {
                        "LayerName": name,
                        "LayerArn": self.layers.layer_arn(name),
                        "LatestMatchingVersion": self._summary(latest),
                    }
                )
        page, marker = _page(items, [i["LayerName"] for i in items], query.get("Marker"), max_items)
        body: dict[str, Any] = {"Layers": page}
        if marker:
            body["NextMarker"] = marker
        return _json(body)

    async def list_versions(self, request: Request) -> Response:
        name = _layer_name(request.path_params["layer"])
        runtime, architecture, max_items = _filters(request)
        versions = await asyncio.to_thread(self.layers.store.versions, name)
        items = [self._summary(lv) for lv in versions if _matches(lv, runtime, architecture)]
        page, marker = _page(items, [str(i["Version"]) for i in items], request.query_params.get("Marker"), max_items)
        body: dict[str, Any] = {"LayerVersions": page}
        if marker:
            body["NextMarker"] = marker
        return _json(body)

    async def add_permission(self, request: Request) -> Response:
        name = _layer_name(request.path_params["layer"])
        number = _number(request.path_params["number"])
        data = wire.parse_body(await _body(request))
        v = wire.Violations()
        for member in ("StatementId", "Action", "Principal"):
            if data.get(member) is None:
                v.add(None, member[0].lower() + member[1:], "Member must not be null")
        _check_statement_id(v, data.get("StatementId"))
        v.length(data.get("Action"), "action", 22)
        v.pattern(data.get("Action"), "action", re.compile(LAYER_ACTION_PATTERN), LAYER_ACTION_PATTERN)
        v.length(data.get("Principal"), "principal", 10000)
        v.pattern(data.get("Principal"), "principal", re.compile(LAYER_PRINCIPAL_PATTERN), LAYER_PRINCIPAL_PATTERN)
        v.length(data.get("OrganizationId"), "organizationId", 34)
        v.pattern(
            data.get("OrganizationId"), "organizationId", re.compile(ORGANIZATION_ID_PATTERN), ORGANIZATION_ID_PATTERN
        )
        v.raise_if_any()
        revision_id = request.query_params.get("RevisionId")
        new, revision = await asyncio.to_thread(self.layers.add_permission, name, number, data, revision_id)
        return _json({"Statement": json.dumps(new, separators=(",", ":")), "RevisionId": revision}, 201)

    async def remove_permission(self, request: Request) -> Response:
        name = _layer_name(request.path_params["layer"])
        number = _number(request.path_params["number"])
        sid = unquote(request.path_params["sid"])
        v = wire.Violations()
        _check_statement_id(v, sid)
        v.raise_if_any()
        revision_id = request.query_params.get("RevisionId")
        await asyncio.to_thread(self.layers.remove_permission, name, number, sid, revision_id)
        return Response(status_code=204)

    async def get_policy(self, request: Request) -> Response:
        name = _layer_name(request.path_params["layer"])
        policy, revision = await asyncio.to_thread(self.layers.policy, name, _number(request.path_params["number"]))
        return _json({"Policy": policy, "RevisionId": revision})

    async def _get_by_arn(self, arn: str | None) -> Response:
        v = wire.Violations()
        if arn is None:
            v.add(None, "arn", "Member must not be null")
        v.length(arn, "arn", 2048, 1)
        v.pattern(arn, "arn", _LAYER_VERSION_ARN_RE, LAYER_VERSION_ARN_PATTERN)
        v.raise_if_any()
        assert arn is not None
        prefix, _, number = arn.rpartition(":")
        name = prefix.rpartition(":layer:")[2]
        if prefix != self.layers.layer_arn(name) or not number.isdigit():
            raise ResourceNotFound(NOT_FOUND)
        return _json(self._full(await self._find(name, int(number))))

    async def _find(self, name: str, number: int) -> LayerVersion:
        layer = await asyncio.to_thread(self.layers.store.get, name, number)
        if layer is None:
            raise ResourceNotFound(NOT_FOUND)
        return layer


async def _body(request: Request) -> bytes:
    body = request.scope.get("squall.body")
    return body if isinstance(body, bytes) else await request.body()


def _layer_name(raw: str) -> str:
    """A LayerName path member (a name or a layer ARN) -> the layer's name."""
    raw = unquote(raw)
    v = wire.Violations()
    v.length(raw, "layerName", 140, 1)
    v.pattern(raw, "layerName", _LAYER_NAME_RE, LAYER_NAME_PATTERN)
    v.raise_if_any()
    return raw.rpartition(":layer:")[2]


def _check_statement_id(v: wire.Violations, sid: Any) -> None:
    v.length(sid, "statementId", 100, 1)
    v.pattern(sid, "statementId", re.compile(STATEMENT_ID_PATTERN), STATEMENT_ID_PATTERN)


def _number(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(
            f"1 validation error detected: Value '{raw}' at 'versionNumber' failed to satisfy "
            "constraint: Member must be a number"
        ) from None


def _check_list(v: wire.Violations, value: Any, member: str, max_len: int, allowed: list[str]) -> None:
    if value is None:
        return
    items = value if isinstance(value, list) else [value]
    shown = "[" + ", ".join(str(i) for i in items) + "]"
    if len(items) > max_len:
        v.add(shown, member, f"Member must have length less than or equal to {max_len}")
    elif any(i not in allowed for i in items):
        v.add(
            shown,
            member,
            f"Member must satisfy constraint: [Member must satisfy enum value set: [{', '.join(allowed)}]]",
        )


def _filters(request: Request) -> tuple[str | None, str | None, int]:
    query = request.query_params
    runtime = query.get("CompatibleRuntime") or None
    architecture = query.get("CompatibleArchitecture") or None
    v = wire.Violations()
    v.enum(runtime, "compatibleRuntime", wire.RUNTIMES)
    v.enum(architecture, "compatibleArchitecture", ARCHITECTURES)
    raw = query.get("MaxItems")
    max_items = LIST_MAX
    if raw:
        try:
            max_items = int(raw)
        except ValueError:
            raise ValidationError(
                f"1 validation error detected: Value '{raw}' at 'maxItems' failed to satisfy "
                "constraint: Member must be a number"
            ) from None
        v.at_least(max_items, "maxItems", 1)
        v.at_most(max_items, "maxItems", LIST_MAX)
    v.raise_if_any()
    return runtime, architecture, max_items


def _matches(layer: LayerVersion, runtime: str | None, architecture: str | None) -> bool:
    if runtime is not None and runtime not in layer.compatible_runtimes:
        return False
    return architecture is None or architecture in layer.compatible_architectures


def _page(items: list[Any], keys: list[str], marker: str | None, max_items: int) -> tuple[list[Any], str | None]:
    start = keys.index(marker) if marker and marker in keys else 0
    end = start + max_items
    return items[start:end], keys[end] if end < len(keys) else None
