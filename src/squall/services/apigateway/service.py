"""HTTP APIs and their routes, integrations, stages and authorizers: validation, ids and defaults.

Resources are API Gateway v2 wire documents (camelCase members, as botocore's ``apigatewayv2``
model names them), stored in the :class:`~squall.gateway.store.GatewayStore` the gateway serves.
ImportApi and ReimportApi take an OpenAPI definition (read by :mod:`.openapi`); integrations and
authorizers are checked by :mod:`.documents` on every path that makes or changes them.
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Callable

from squall.gateway.store import Document, GatewayStore
from squall.services.apigateway.documents import (
    authorizer_document,
    check_route_key,
    drop_none,
    integration_document,
)
from squall.services.apigateway.errors import BadRequest, Conflict, NotFound
from squall.services.apigateway.openapi import read_definition, stored_documents

_ALPHABET = string.ascii_lowercase + string.digits
API_ID_LENGTH = 10
#: Routes, integrations and authorizers get 7-character ids on AWS.
CHILD_ID_LENGTH = 7
_AUTHORIZATION_TYPES = ("NONE", "JWT", "CUSTOM")
_KIND_NAMES = {"route": "Route", "integration": "Integration", "stage": "Stage", "authorizer": "Authorizer"}


def new_id(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


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
        api = drop_none(
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
            check_route_key(route_key)
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
            check_route_key(route_key)
            self._quick_create(api_id, body["target"], route_key)
        self.store.put("api", "", api_id, api)
        return api

    def import_api(self, text: str) -> Document:
        """ImportApi: a new HTTP API made from an OpenAPI definition."""
        definition = read_definition(text)
        children = stored_documents(definition, self._fresh_ids(None))
        api = self.create_api({**definition.api, "protocolType": "HTTP"})
        for kind, item_id, document in children:
            self.store.put(kind, api["apiId"], item_id, document)
        return api

    def reimport_api(self, api_id: str, text: str) -> Document:
        """ReimportApi: the API's routes, integrations and authorizers replaced by the definition's; its
        stages are kept."""
        api = self.get_api(api_id)
        definition = read_definition(text)
        children = stored_documents(definition, self._fresh_ids(api_id))
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

    def _fresh_ids(self, api_id: str | None) -> Callable[[str], str]:
        """New child ids, unique among the API's (if it exists yet) and among each other."""
        used: set[str] = set()

        def fresh(kind: str) -> str:
            item_id = new_id(CHILD_ID_LENGTH)
            while item_id in used or (api_id is not None and self.store.get(kind, api_id, item_id) is not None):
                item_id = new_id(CHILD_ID_LENGTH)
            used.add(item_id)
            return item_id

        return fresh

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
        check_route_key(route_key)
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
            check_route_key(body["routeKey"])
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
        stage = drop_none(
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


def _cors(config: Document | None) -> Document | None:
    if config is None:
        return None
    allowed = ("allowCredentials", "allowHeaders", "allowMethods", "allowOrigins", "exposeHeaders", "maxAge")
    return {key: config[key] for key in allowed if key in config}
