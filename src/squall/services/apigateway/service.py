"""HTTP APIs and their routes, integrations, stages and authorizers: validation, ids and defaults.

Resources are API Gateway v2 wire documents (camelCase members, as botocore's ``apigatewayv2``
model names them), stored in the :class:`~squall.gateway.store.GatewayStore` the gateway serves.
"""

from __future__ import annotations

import secrets
import string
import time
from typing import Any

from squall.gateway.routes import parse_route_key
from squall.gateway.store import Document, GatewayStore
from squall.services.apigateway.errors import BadRequest, Conflict, NotFound
from squall.services.apigateway.openapi import Definition, read_definition

_ALPHABET = string.ascii_lowercase + string.digits
API_ID_LENGTH = 10
#: Routes, integrations and authorizers get 7-character ids on AWS.
CHILD_ID_LENGTH = 7
MIN_TIMEOUT_MS = 50
MAX_TIMEOUT_MS = 30_000
MAX_AUTHORIZER_TTL_S = 3600
_AUTHORIZATION_TYPES = ("NONE", "JWT", "CUSTOM")
_PAYLOAD_VERSIONS = ("1.0", "2.0")
_KIND_NAMES = {"route": "Route", "integration": "Integration", "stage": "Stage", "authorizer": "Authorizer"}


def new_id(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _drop_none(document: Document) -> Document:
    return {key: value for key, value in document.items() if value is not None}


class ApiGatewayService:
    """The management operations; ``endpoint`` renders an API's ``ApiEndpoint`` from its id."""

    def __init__(self, store: GatewayStore, account_id: str, endpoint_template: str) -> None:
        self.store = store
        self.account_id = account_id
        self.endpoint_template = endpoint_template

    # --- APIs -------------------------------------------------------------------------------------
    def create_api(self, body: Document) -> Document:
        if not body.get("name"):
            raise BadRequest("Name is required")  # unverified: botocore checks this client-side
        if body.get("protocolType") != "HTTP":
            # unverified: Squall serves HTTP APIs only (WebSocket APIs are not implemented)
            raise BadRequest(f"Unsupported protocol type: {body.get('protocolType')}")
        api_id = new_id(API_ID_LENGTH)
        while self.store.get("api", "", api_id) is not None:
            api_id = new_id(API_ID_LENGTH)
        api = _drop_none(
            {
                "apiEndpoint": self.endpoint_template.format(api_id=api_id),
                "apiId": api_id,
                "apiKeySelectionExpression": body.get("apiKeySelectionExpression", "$request.header.x-api-key"),
                "corsConfiguration": _cors(body.get("corsConfiguration")),
                "createdDate": _now(),
                "description": body.get("description"),
                "disableExecuteApiEndpoint": bool(body.get("disableExecuteApiEndpoint", False)),
                "ipAddressType": body.get("ipAddressType", "ipv4"),
                "name": body["name"],
                "protocolType": "HTTP",
                "routeSelectionExpression": body.get("routeSelectionExpression", "$request.method $request.path"),
                "tags": body.get("tags", {}),
                "version": body.get("version"),
            }
        )
        target = body.get("target")
        if target is None and body.get("routeKey") is not None:
            raise BadRequest("RouteKey is only valid with Target")  # unverified: AWS quick-create rule
        if target is not None:
            route_key = body.get("routeKey", "$default")
            _check_route_key(route_key)
            self.store.put("api", "", api_id, api)
            self._quick_create(api_id, target, route_key)
        else:
            self.store.put("api", "", api_id, api)
        return api

    def _quick_create(self, api_id: str, target: str, route_key: str) -> None:
        """CreateApi's quick create: a Lambda proxy integration, a route to it and an auto-deployed
        ``$default`` stage, all marked ``apiGatewayManaged``."""
        integration = self.create_integration(
            api_id,
            {"integrationType": "AWS_PROXY", "integrationUri": target, "payloadFormatVersion": "2.0"},
            managed=True,
        )
        self.create_route(
            api_id, {"routeKey": route_key, "target": f"integrations/{integration['integrationId']}"}, managed=True
        )
        self.create_stage(api_id, {"stageName": "$default", "autoDeploy": True}, managed=True)

    def get_api(self, api_id: str) -> Document:
        api = self.store.get("api", "", api_id)
        if api is None:
            raise NotFound(f"Invalid API identifier specified {self.account_id}:{api_id}")
        return api

    def get_apis(self) -> list[Document]:
        return [api for item in self.store.api_ids() if (api := self.store.get("api", "", item)) is not None]

    def update_api(self, api_id: str, body: Document) -> Document:
        api = self.get_api(api_id)
        for member in (
            "apiKeySelectionExpression",
            "description",
            "disableExecuteApiEndpoint",
            "ipAddressType",
            "name",
            "routeSelectionExpression",
            "version",
        ):
            if member in body:
                api[member] = body[member]
        if "corsConfiguration" in body:
            api["corsConfiguration"] = _cors(body["corsConfiguration"])
        if body.get("target") is not None:
            route_key = body.get("routeKey", "$default")
            _check_route_key(route_key)
            self._quick_create(api_id, body["target"], route_key)
        self.store.put("api", "", api_id, api)
        return api

    def import_api(self, text: str) -> Document:
        """ImportApi: a new HTTP API made from an OpenAPI definition."""
        definition = read_definition(text)
        api = self.create_api({**definition.api, "protocolType": "HTTP"})
        try:
            self._put_definition(api["apiId"], definition)
        except Exception:
            self.store.delete("api", "", api["apiId"])
            raise
        return api

    def reimport_api(self, api_id: str, text: str) -> Document:
        """ReimportApi: the API's routes, integrations and authorizers replaced by the definition's; its
        stages are kept."""
        api = self.get_api(api_id)
        definition = read_definition(text)
        children = self._definition_children(api_id, definition)
        for kind in ("route", "integration", "authorizer"):
            for item_id in list(self.store.view(kind, api_id)):
                self.store.delete(kind, api_id, item_id)
        for member in ("corsConfiguration", "description", "version"):
            api.pop(member, None)
        api["disableExecuteApiEndpoint"] = False
        api.update(
            {key: _cors(value) if key == "corsConfiguration" else value for key, value in definition.api.items()}
        )
        self.store.put("api", "", api_id, api)
        for kind, item_id, document in children:
            self.store.put(kind, api_id, item_id, document)
        return api

    def _put_definition(self, api_id: str, definition: Definition) -> None:
        for kind, item_id, document in self._definition_children(api_id, definition):
            self.store.put(kind, api_id, item_id, document)

    def _definition_children(self, api_id: str, definition: Definition) -> list[tuple[str, str, Document]]:
        """Every authorizer, integration and route of a definition, checked, with new ids: nothing is
        stored until the whole definition has passed."""
        used: set[str] = set()

        def fresh(kind: str) -> str:
            item_id = self._child_id(kind, api_id)
            while item_id in used:
                item_id = self._child_id(kind, api_id)
            used.add(item_id)
            return item_id

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
            _check_route_key(imported.route_key)
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

    def delete_api(self, api_id: str) -> None:
        if not self.store.delete("api", "", api_id):
            raise NotFound(f"Invalid API identifier specified {self.account_id}:{api_id}")

    # --- children (routes, integrations, stages, authorizers) -------------------------------------
    def get_child(self, kind: str, api_id: str, item_id: str) -> Document:
        self.get_api(api_id)
        item = self.store.get(kind, api_id, item_id)
        if item is None:
            # unverified: the wording follows GetApi's "Invalid API identifier specified"
            raise NotFound(f"Invalid {_KIND_NAMES[kind]} identifier specified {self.account_id}:{item_id}")
        return item

    def list_children(self, kind: str, api_id: str) -> list[Document]:
        self.get_api(api_id)
        return self.store.items(kind, api_id)

    def delete_child(self, kind: str, api_id: str, item_id: str) -> None:
        self.get_child(kind, api_id, item_id)
        if kind == "integration":
            target = f"integrations/{item_id}"
            if any(route.get("target") == target for route in self.store.items("route", api_id)):
                # unverified: AWS refuses to delete an integration a route still targets
                raise Conflict(f"Cannot delete Integration {item_id}: it is in use by a route")
        if kind == "authorizer" and any(
            route.get("authorizerId") == item_id for route in self.store.items("route", api_id)
        ):
            # unverified: AWS refuses to delete an authorizer a route still uses
            raise Conflict(f"Cannot delete Authorizer {item_id}: it is in use by a route")
        self.store.delete(kind, api_id, item_id)

    def _child_id(self, kind: str, api_id: str) -> str:
        item_id = new_id(CHILD_ID_LENGTH)
        while self.store.get(kind, api_id, item_id) is not None:
            item_id = new_id(CHILD_ID_LENGTH)
        return item_id

    # --- routes ------------------------------------------------------------------------------------
    def create_route(self, api_id: str, body: Document, *, managed: bool = False) -> Document:
        self.get_api(api_id)
        route_key = body.get("routeKey")
        if not route_key:
            raise BadRequest("RouteKey is required")  # unverified: botocore checks this client-side
        _check_route_key(route_key)
        self._check_unique_route(api_id, route_key, None)
        route: Document = {"apiKeyRequired": False, "authorizationType": "NONE", "routeKey": route_key}
        if managed:
            route["apiGatewayManaged"] = True
        route["routeId"] = self._child_id("route", api_id)
        self._apply_route(api_id, route, body)
        self.store.put("route", api_id, route["routeId"], route)
        return route

    def update_route(self, api_id: str, route_id: str, body: Document) -> Document:
        route = self.get_child("route", api_id, route_id)
        if "routeKey" in body:
            _check_route_key(body["routeKey"])
            self._check_unique_route(api_id, body["routeKey"], route_id)
            route["routeKey"] = body["routeKey"]
        self._apply_route(api_id, route, body)
        self.store.put("route", api_id, route_id, route)
        return route

    def _check_unique_route(self, api_id: str, route_key: str, route_id: str | None) -> None:
        for other in self.store.items("route", api_id):
            if other["routeKey"] == route_key and other["routeId"] != route_id:
                # unverified: AWS's wording for a duplicate route key
                raise Conflict(f"Unable to create Route, the route key already exists: {route_key}")

    def _apply_route(self, api_id: str, route: Document, body: Document) -> None:
        for member in ("apiKeyRequired", "authorizationScopes", "operationName", "requestParameters"):
            if member in body:
                route[member] = body[member]
        if "target" in body:
            target = body["target"]
            prefix, _, integration_id = str(target).partition("/")
            if prefix != "integrations" or self.store.get("integration", api_id, integration_id) is None:
                # unverified: AWS's wording for a target that names no integration of the API
                raise BadRequest(f"Invalid target: {target}. The integration does not exist for API {api_id}")
            route["target"] = target
        if "authorizationType" in body:
            if body["authorizationType"] not in _AUTHORIZATION_TYPES:
                # AWS_IAM needs SigV4 callers on the gateway port, which Squall does not verify there.
                raise BadRequest(
                    f"Unsupported authorization type {body['authorizationType']}; Squall supports NONE, JWT and CUSTOM"
                )
            route["authorizationType"] = body["authorizationType"]
        if "authorizerId" in body:
            route["authorizerId"] = body["authorizerId"]
        if route["authorizationType"] == "NONE":
            route.pop("authorizerId", None)
            return
        authorizer_id = route.get("authorizerId")
        authorizer = self.store.get("authorizer", api_id, authorizer_id) if authorizer_id else None
        if authorizer is None:
            # unverified: AWS's wording for a missing or unknown AuthorizerId
            raise BadRequest(f"Invalid authorizer ID specified: {authorizer_id}")
        wanted = "JWT" if route["authorizationType"] == "JWT" else "REQUEST"
        if authorizer["authorizerType"] != wanted:
            # unverified: AWS's wording when the route's type and the authorizer's type differ
            raise BadRequest(
                f"AuthorizationType {route['authorizationType']} does not match authorizer type "
                f"{authorizer['authorizerType']}"
            )

    # --- integrations ------------------------------------------------------------------------------
    def create_integration(self, api_id: str, body: Document, *, managed: bool = False) -> Document:
        self.get_api(api_id)
        integration = integration_document(body, self._child_id("integration", api_id), managed)
        self.store.put("integration", api_id, integration["integrationId"], integration)
        return integration

    def update_integration(self, api_id: str, integration_id: str, body: Document) -> Document:
        current = self.get_child("integration", api_id, integration_id)
        merged = {**current, **{key: value for key, value in body.items() if value is not None}}
        integration = integration_document(merged, integration_id, bool(current.get("apiGatewayManaged")))
        self.store.put("integration", api_id, integration_id, integration)
        return integration

    # --- stages ------------------------------------------------------------------------------------
    def create_stage(self, api_id: str, body: Document, *, managed: bool = False) -> Document:
        self.get_api(api_id)
        name = body.get("stageName")
        if not name:
            raise BadRequest("StageName is required")  # unverified: botocore checks this client-side
        if self.store.get("stage", api_id, name) is not None:
            raise Conflict(f"Stage already exists: {name}")  # unverified: AWS's wording
        now = _now()
        stage = _drop_none(
            {
                "apiGatewayManaged": True if managed else None,
                "autoDeploy": bool(body.get("autoDeploy", False)),
                "createdDate": now,
                "defaultRouteSettings": body.get("defaultRouteSettings", {"detailedMetricsEnabled": False}),
                "description": body.get("description"),
                "lastUpdatedDate": now,
                "routeSettings": body.get("routeSettings", {}),
                "stageName": name,
                "stageVariables": body.get("stageVariables", {}),
                "tags": body.get("tags", {}),
            }
        )
        self.store.put("stage", api_id, name, stage)
        return stage

    def update_stage(self, api_id: str, name: str, body: Document) -> Document:
        stage = self.get_child("stage", api_id, name)
        for member in ("autoDeploy", "defaultRouteSettings", "description", "routeSettings", "stageVariables"):
            if member in body:
                stage[member] = bool(body[member]) if member == "autoDeploy" else body[member]
        stage["lastUpdatedDate"] = _now()
        self.store.put("stage", api_id, name, stage)
        return stage

    # --- authorizers -------------------------------------------------------------------------------
    def create_authorizer(self, api_id: str, body: Document) -> Document:
        self.get_api(api_id)
        authorizer = authorizer_document(body, self._child_id("authorizer", api_id))
        self.store.put("authorizer", api_id, authorizer["authorizerId"], authorizer)
        return authorizer

    def update_authorizer(self, api_id: str, authorizer_id: str, body: Document) -> Document:
        current = self.get_child("authorizer", api_id, authorizer_id)
        merged = {**current, **{key: value for key, value in body.items() if value is not None}}
        authorizer = authorizer_document(merged, authorizer_id)
        self.store.put("authorizer", api_id, authorizer_id, authorizer)
        return authorizer


def integration_document(body: Document, integration_id: str, managed: bool) -> Document:
    """A checked AWS_PROXY integration, as stored and returned."""
    if body.get("integrationType") != "AWS_PROXY":
        # unverified: Squall integrates Lambda functions only (AWS_PROXY)
        raise BadRequest(f"Unsupported integration type: {body.get('integrationType')}; Squall supports AWS_PROXY")
    if not body.get("integrationUri"):
        raise BadRequest("IntegrationUri is required for AWS_PROXY integrations")  # unverified
    version = body.get("payloadFormatVersion")
    if version not in _PAYLOAD_VERSIONS:
        # unverified: HTTP APIs require PayloadFormatVersion 1.0 or 2.0 for Lambda proxy integrations
        raise BadRequest(f"Invalid payload format version {version}; it must be 1.0 or 2.0")
    timeout = body.get("timeoutInMillis", MAX_TIMEOUT_MS)
    if not isinstance(timeout, int) or not MIN_TIMEOUT_MS <= timeout <= MAX_TIMEOUT_MS:
        # unverified: the documented range of HTTP APIs' integration timeout
        raise BadRequest(f"Timeout must be between {MIN_TIMEOUT_MS} ms and {MAX_TIMEOUT_MS} ms")
    return _drop_none(
        {
            "apiGatewayManaged": True if managed else None,
            "connectionType": "INTERNET",
            "description": body.get("description"),
            "integrationId": integration_id,
            "integrationMethod": body.get("integrationMethod", "POST"),
            "integrationType": "AWS_PROXY",
            "integrationUri": body["integrationUri"],
            "payloadFormatVersion": version,
            "requestParameters": body.get("requestParameters"),
            "timeoutInMillis": timeout,
        }
    )


def authorizer_document(body: Document, authorizer_id: str) -> Document:
    """A checked JWT or Lambda REQUEST authorizer, as stored and returned."""
    kind = body.get("authorizerType")
    if not body.get("name"):
        raise BadRequest("Name is required")  # unverified: botocore checks this client-side
    authorizer: Document = {
        "authorizerId": authorizer_id,
        "authorizerType": kind,
        "identitySource": body.get("identitySource", []),
        "name": body["name"],
    }
    if kind == "JWT":
        config = body.get("jwtConfiguration") or {}
        if not config.get("issuer") or not config.get("audience"):
            # unverified: AWS's wording for a JWT authorizer without issuer or audience
            raise BadRequest("JwtConfiguration must specify an Issuer and at least one Audience")
        if not authorizer["identitySource"]:
            authorizer["identitySource"] = ["$request.header.Authorization"]
        authorizer["jwtConfiguration"] = {"audience": list(config["audience"]), "issuer": config["issuer"]}
    elif kind == "REQUEST":
        authorizer.update(_lambda_authorizer(body))
    else:
        raise BadRequest(f"Invalid authorizer type: {kind}")  # unverified: AWS's wording
    return authorizer


def _lambda_authorizer(body: Document) -> Document:
    if not body.get("authorizerUri"):
        raise BadRequest("AuthorizerUri is required for REQUEST authorizers")  # unverified
    version = body.get("authorizerPayloadFormatVersion")
    if version not in _PAYLOAD_VERSIONS:
        # unverified: HTTP APIs require AuthorizerPayloadFormatVersion for REQUEST authorizers
        raise BadRequest("AuthorizerPayloadFormatVersion must be 1.0 or 2.0 for REQUEST authorizers")
    simple = bool(body.get("enableSimpleResponses", False))
    if simple and version != "2.0":
        # unverified: simple responses exist only in payload format 2.0
        raise BadRequest("EnableSimpleResponses is only supported for AuthorizerPayloadFormatVersion 2.0")
    ttl = body.get("authorizerResultTtlInSeconds", 0)
    if not isinstance(ttl, int) or not 0 <= ttl <= MAX_AUTHORIZER_TTL_S:
        raise BadRequest(f"AuthorizerResultTtlInSeconds must be between 0 and {MAX_AUTHORIZER_TTL_S}")  # unverified
    if ttl > 0 and not body.get("identitySource"):
        # unverified: caching needs identity sources to key the cache on
        raise BadRequest("IdentitySource is required when authorizer caching is enabled")
    return _drop_none(
        {
            # Stored for the API's callers; Squall does not enforce IAM, so no role is assumed to invoke.
            "authorizerCredentialsArn": body.get("authorizerCredentialsArn"),
            "authorizerPayloadFormatVersion": version,
            "authorizerResultTtlInSeconds": ttl,
            "authorizerUri": body["authorizerUri"],
            "enableSimpleResponses": simple,
        }
    )


def _check_route_key(route_key: Any) -> None:
    try:
        parse_route_key(str(route_key))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None  # unverified: AWS's wording for a malformed route key


def _cors(config: Document | None) -> Document | None:
    if config is None:
        return None
    allowed = ("allowCredentials", "allowHeaders", "allowMethods", "allowOrigins", "exposeHeaders", "maxAge")
    return {key: config[key] for key in allowed if key in config}
