"""ImportApi's reading of an OpenAPI 3 definition into an HTTP API's routes, integrations and authorizers.

Squall reads what API Gateway reads for HTTP APIs: ``info`` (name, description, version), ``paths``
with one operation per method (``x-amazon-apigateway-any-method`` for ``ANY``; with
``isDefaultRoute``, the ``$default`` route), each operation's ``x-amazon-apigateway-integration``
(Lambda proxy) and ``security``, ``components.securitySchemes`` with
``x-amazon-apigateway-authorizer`` (``jwt`` and Lambda ``request``), reusable
``components.x-amazon-apigateway-integrations``, a top-level ``security`` default,
``x-amazon-apigateway-cors``, tags carrying ``x-amazon-apigateway-tag-value``, and the servers'
``x-amazon-apigateway-endpoint-configuration`` (their URLs' base paths are ignored, as ImportApi's
default ``basepath=ignore`` does). Descriptive OpenAPI (summaries, parameters, schemas, responses)
changes nothing on an HTTP API and is passed over. Anything else API Gateway would act on and
Squall does not is a BadRequest naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

from squall.gateway.store import Document
from squall.services.apigateway.documents import authorizer_document, check_route_key, integration_document
from squall.services.apigateway.errors import BadRequest, Conflict

_METHODS = {"get", "put", "post", "delete", "options", "head", "patch"}
_ANY = "x-amazon-apigateway-any-method"
_INTEGRATION = "x-amazon-apigateway-integration"
_AUTHORIZER = "x-amazon-apigateway-authorizer"
_INTEGRATIONS_REF = "#/components/x-amazon-apigateway-integrations/"
#: The members Squall reads (or, for descriptive OpenAPI, passes over) at each level of the document.
_TOP = frozenset({"openapi", "info", "paths", "components", "tags", "security", "servers", "externalDocs",
                  "x-amazon-apigateway-cors", "x-amazon-apigateway-importexport-version"})  # fmt: skip
_SERVER = frozenset({"url", "description", "variables", "x-amazon-apigateway-endpoint-configuration"})
_COMPONENTS = frozenset({"securitySchemes", "x-amazon-apigateway-integrations", "schemas", "responses", "parameters",
                         "examples", "requestBodies", "headers", "links", "callbacks"})  # fmt: skip
_PATH_ITEM = frozenset({*_METHODS, _ANY, "parameters", "summary", "description"})
_OPERATION = frozenset({_INTEGRATION, "security", "parameters", "responses", "summary", "description", "operationId",
                        "tags", "requestBody", "deprecated", "externalDocs", "isDefaultRoute"})  # fmt: skip
_INTEGRATION_KEYS = frozenset({"type", "uri", "httpMethod", "payloadFormatVersion", "connectionType",
                               "timeoutInMillis", "description"})  # fmt: skip
_AUTHORIZER_KEYS = frozenset({"type", "identitySource", "jwtConfiguration", "authorizerUri", "authorizerCredentials",
                              "authorizerPayloadFormatVersion", "enableSimpleResponses",
                              "authorizerResultTtlInSeconds"})  # fmt: skip
_CORS_KEYS = frozenset({"allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge", "allowCredentials"})
#: SAM's way of saying "no authorizer" on a route of an API that has a default one.
NO_AUTHORIZER = "NONE"


@dataclass
class ImportedRoute:
    """One operation: its route key, its integration (index into ``integrations``) and its authorizer."""

    route_key: str
    integration: int | None
    scheme: str | None
    scopes: list[str]


@dataclass
class Definition:
    """What an OpenAPI definition makes, as API Gateway v2 request bodies (camelCase members)."""

    api: Document
    authorizers: dict[str, Document] = field(default_factory=dict)
    integrations: list[Document] = field(default_factory=list)
    routes: list[ImportedRoute] = field(default_factory=list)


def _unsupported(what: str, where: str) -> BadRequest:
    # unverified: AWS answers with warnings or its own errors; Squall names what it does not honour.
    return BadRequest(f"Squall does not support {what} (at {where}) in an imported OpenAPI definition")


def _only(value: Any, allowed: frozenset[str] | None, where: str) -> dict[str, Any]:
    """``value`` as an object whose keys are all ``allowed`` (any key when None)."""
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid OpenAPI definition: {where} must be an object")  # unverified
    for key in value:
        if allowed is not None and key not in allowed:
            raise _unsupported(key, where)
    return value


def read_definition(text: str) -> Definition:
    """The HTTP API an OpenAPI 3 document (JSON or YAML) describes; BadRequest when Squall cannot honour it."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadRequest(f"Invalid OpenAPI definition: {exc}") from None  # unverified
    if not isinstance(document, dict):
        raise BadRequest("Invalid OpenAPI definition: the body must be a JSON or YAML object")  # unverified
    if "swagger" in document:
        raise _unsupported("Swagger 2.0 (use OpenAPI 3)", "swagger")
    if not str(document.get("openapi", "")).startswith("3."):
        raise BadRequest("Invalid OpenAPI definition: openapi 3.x is required")  # unverified
    _only(document, _TOP, "the document")
    info = document.get("info") or {}
    if not info.get("title"):
        raise BadRequest("Invalid OpenAPI definition: info.title is required")  # unverified
    definition = Definition(api=_api(document, info))
    components = _only(document.get("components") or {}, _COMPONENTS, "components")
    schemes = _only(components.get("securitySchemes") or {}, None, "components.securitySchemes")
    for name, scheme in schemes.items():
        # A scheme without an authorizer (documentation, or IAM's awsSigv4) matters only if a route uses it.
        if isinstance(scheme, dict) and _AUTHORIZER in scheme:
            definition.authorizers[name] = _authorizer(name, scheme[_AUTHORIZER])
    reusable = components.get("x-amazon-apigateway-integrations") or {}
    default_security = document.get("security")
    known: dict[str, int] = {}
    for path, item in _only(document.get("paths") or {}, None, "paths").items():
        for method, operation in _only(item, _PATH_ITEM, f"paths.{path}").items():
            if method not in _METHODS and method != _ANY:
                continue
            where = f"paths.{path}.{method}"
            _only(operation, _OPERATION, where)
            default = method == _ANY and (operation.get("isDefaultRoute") is True or path in ("$default", "/$default"))
            route_key = "$default" if default else f"{'ANY' if method == _ANY else method.upper()} {path}"
            index = None
            if _INTEGRATION in operation:
                body = _integration(_resolve(operation[_INTEGRATION], reusable, where), f"{where}.{_INTEGRATION}")
                key = json.dumps(body, sort_keys=True)
                if key not in known:
                    known[key] = len(definition.integrations)
                    definition.integrations.append(body)
                index = known[key]
            security = operation.get("security", default_security)
            scheme, scopes = _security(security, definition.authorizers, set(schemes), where)
            definition.routes.append(ImportedRoute(route_key, index, scheme, scopes))
    return definition


def _api(document: dict[str, Any], info: dict[str, Any]) -> Document:
    api: Document = {"name": str(info["title"])}
    if info.get("description") is not None:
        api["description"] = str(info["description"])
    if info.get("version") is not None:
        api["version"] = str(info["version"])
    if "x-amazon-apigateway-cors" in document:
        api["corsConfiguration"] = dict(
            _only(document["x-amazon-apigateway-cors"], _CORS_KEYS, "x-amazon-apigateway-cors")
        )
    tags = {}
    for tag in document.get("tags") or []:
        if isinstance(tag, dict) and "x-amazon-apigateway-tag-value" in tag:
            tags[str(tag["name"])] = str(tag["x-amazon-apigateway-tag-value"])
    api["tags"] = tags
    for index, server in enumerate(document.get("servers") or []):
        # The server's URL is a base path, which ImportApi's default (basepath=ignore) ignores.
        configuration = _only(server, _SERVER, f"servers[{index}]").get("x-amazon-apigateway-endpoint-configuration")
        where = f"servers[{index}].x-amazon-apigateway-endpoint-configuration"
        for key, value in _only(configuration or {}, frozenset({"disableExecuteApiEndpoint"}), where).items():
            api[key] = bool(value)
    return api


def _resolve(value: Any, reusable: dict[str, Any], where: str) -> Any:
    if isinstance(value, dict) and set(value) == {"$ref"}:
        ref = str(value["$ref"])
        if not ref.startswith(_INTEGRATIONS_REF) or ref.removeprefix(_INTEGRATIONS_REF) not in reusable:
            raise BadRequest(f"Invalid OpenAPI definition: {where}: unresolvable $ref {ref}")  # unverified
        return reusable[ref.removeprefix(_INTEGRATIONS_REF)]
    return value


def _integration(value: Any, where: str) -> Document:
    _only(value, _INTEGRATION_KEYS, where)
    kind = str(value.get("type", "")).upper()
    if kind != "AWS_PROXY":
        raise _unsupported(f"integration type {value.get('type')} (Squall integrates Lambda: aws_proxy)", where)
    if str(value.get("connectionType", "INTERNET")).upper() != "INTERNET":
        raise _unsupported(f"connectionType {value['connectionType']}", where)
    if "payloadFormatVersion" not in value:
        # unverified: AWS requires payloadFormatVersion for HTTP APIs' Lambda proxy integrations
        raise BadRequest(f"Invalid OpenAPI definition: {where}: payloadFormatVersion is required")
    body: Document = {
        "integrationType": "AWS_PROXY",
        "integrationUri": value.get("uri"),
        "integrationMethod": str(value.get("httpMethod", "POST")).upper(),
        "payloadFormatVersion": str(value["payloadFormatVersion"]),
    }
    if "timeoutInMillis" in value:
        body["timeoutInMillis"] = int(value["timeoutInMillis"])
    if "description" in value:
        body["description"] = str(value["description"])
    return body


def _authorizer(name: str, authorizer: Any) -> Document:
    where = f"components.securitySchemes.{name}.{_AUTHORIZER}"
    config = _only(authorizer, _AUTHORIZER_KEYS, where)
    kind = str(config.get("type", "")).lower()
    sources = config.get("identitySource")
    if isinstance(sources, str):
        sources = [part.strip() for part in sources.split(",") if part.strip()]
    body: Document = {"name": name}
    if sources is not None:
        body["identitySource"] = list(sources)
    if kind == "jwt":
        body["authorizerType"] = "JWT"
        body["jwtConfiguration"] = config.get("jwtConfiguration") or {}
        return body
    if kind != "request":
        raise _unsupported(f"authorizer type {config.get('type')} (Squall supports jwt and request)", where)
    body["authorizerType"] = "REQUEST"
    renames = {
        "authorizerUri": "authorizerUri",
        "authorizerCredentials": "authorizerCredentialsArn",
        "authorizerPayloadFormatVersion": "authorizerPayloadFormatVersion",
        "enableSimpleResponses": "enableSimpleResponses",
        "authorizerResultTtlInSeconds": "authorizerResultTtlInSeconds",
    }
    body.update({member: config[key] for key, member in renames.items() if key in config})
    if "authorizerPayloadFormatVersion" in body:
        body["authorizerPayloadFormatVersion"] = str(body["authorizerPayloadFormatVersion"])
    return body


def _security(
    security: Any, authorizers: dict[str, Document], schemes: set[str], where: str
) -> tuple[str | None, list[str]]:
    """The scheme a route's ``security`` names (None for none) and its scopes."""
    requirements = [req for req in security or [] if req]
    if not requirements:
        return None, []
    if len(requirements) > 1 or not isinstance(requirements[0], dict) or len(requirements[0]) != 1:
        raise _unsupported("more than one security requirement on a route (HTTP APIs take one authorizer)", where)
    ((name, scopes),) = requirements[0].items()
    if name == NO_AUTHORIZER and name not in schemes:
        return None, []
    if name in schemes and name not in authorizers:
        raise _unsupported(f"the security scheme {name} (only schemes with {_AUTHORIZER} are served)", where)
    if name not in authorizers:
        raise BadRequest(
            f"Invalid OpenAPI definition: {where}: security names {name}, which is not in components.securitySchemes"
        )  # unverified
    if scopes and authorizers[name]["authorizerType"] != "JWT":
        raise _unsupported("scopes on a Lambda authorizer", where)
    return name, [str(scope) for scope in scopes or []]


def stored_documents(definition: Definition, fresh: Callable[[str], str]) -> list[tuple[str, str, Document]]:
    """Every authorizer, integration and route of a definition as (kind, id, stored document), checked,
    with ids from ``fresh``: nothing is stored until the whole definition has passed."""
    children: list[tuple[str, str, Document]] = []
    authorizers: dict[str, Document] = {}
    for name, body in definition.authorizers.items():
        authorizers[name] = authorizer_document(body, fresh("authorizer"))
        children.append(("authorizer", authorizers[name]["authorizerId"], authorizers[name]))
    integration_ids: list[str] = []
    for body in definition.integrations:
        integration = integration_document(body, fresh("integration"), False)
        integration_ids.append(integration["integrationId"])
        children.append(("integration", integration["integrationId"], integration))
    keys: set[str] = set()
    for imported in definition.routes:
        check_route_key(imported.route_key)
        if imported.route_key in keys:
            raise Conflict(f"Unable to create Route, the route key already exists: {imported.route_key}")
        keys.add(imported.route_key)
        route: Document = {
            "apiKeyRequired": False,
            "authorizationType": "NONE",
            "routeKey": imported.route_key,
            "routeId": fresh("route"),
        }
        if imported.integration is not None:
            route["target"] = f"integrations/{integration_ids[imported.integration]}"
        if imported.scheme is not None:
            authorizer = authorizers[imported.scheme]
            route["authorizationType"] = "JWT" if authorizer["authorizerType"] == "JWT" else "CUSTOM"
            route["authorizerId"] = authorizer["authorizerId"]
            if imported.scopes:
                route["authorizationScopes"] = imported.scopes
        children.append(("route", route["routeId"], route))
    return children
