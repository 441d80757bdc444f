"""API Gateway v2's rest-json wire protocol (``/v2/apis/...``) as boto3's ``apigatewayv2`` client sends it.

botocore signs these requests with the service name ``apigateway``, which is how the API port's
front door routes them here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from starlette.types import Receive, Scope, Send

from squall.api.errors import send_error
from squall.errors import SquallError
from squall.gateway.store import Document
from squall.services.apigateway.errors import BadRequest, NotFound
from squall.services.apigateway.service import ApiGatewayService
from squall.services.apigateway.tags import ApiTags

#: The children an API owns, by the path segment that names them and their store kind.
_CHILDREN = {"routes": "route", "integrations": "integration", "stages": "stage", "authorizers": "authorizer"}
_TAGS_PATH = re.compile(r"^/v2/tags/(?P<arn>arn:.+)$")
_PATH = re.compile(r"^/v2/apis(?:/(?P<api>[^/]+)(?:/(?P<child>[a-z]+)(?:/(?P<item>[^/]+))?)?)?/?$")
DEFAULT_PAGE = 100

Reply = tuple[int, Document | None]


class ApiGatewayV2Api:
    """The ``apigateway`` service of the API port (HTTP APIs only)."""

    def __init__(self, service: ApiGatewayService) -> None:
        self.service = service
        self.tags = ApiTags(service.store, service.account_id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(scope.get("squall.request_id", ""))
        try:
            body = scope.get("squall.body", b"")
            document = json.loads(body) if body else {}
            if not isinstance(document, dict):
                raise BadRequest("Invalid request body")  # unverified
            multi = parse_qs(scope.get("query_string", b"").decode())
            tagged = _TAGS_PATH.match(scope["path"])
            if tagged is not None:
                status, reply = self.dispatch_tags(scope["method"], tagged["arn"], document, multi.get("tagKeys", []))
            else:
                query = {key: values[-1] for key, values in multi.items()}
                status, reply = self.dispatch(scope["method"], scope["path"], document, query)
        except json.JSONDecodeError:
            await send_error(send, BadRequest("Invalid request body"), request_id)  # unverified
            return
        except SquallError as exc:
            await send_error(send, exc, request_id)
            return
        payload = b"" if reply is None else json.dumps(reply).encode()
        headers = [(b"x-amzn-requestid", request_id.encode()), (b"content-length", str(len(payload)).encode())]
        if reply is not None:
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def dispatch(self, method: str, path: str, body: Document, query: dict[str, str]) -> Reply:
        """The status and document one request answers with."""
        match = _PATH.match(path)
        if match is None:
            raise NotFound(f"No API Gateway v2 resource at {path}")  # unverified
        api_id = unquote(match["api"]) if match["api"] else None
        child = match["child"]
        item = unquote(match["item"]) if match["item"] else None
        service = self.service
        if api_id is None:
            if method == "POST":
                return 201, service.create_api(body)
            if method == "PUT":
                return 201, service.import_api(_definition_text(body, query))
            if method == "GET":
                return 200, _page(service.get_apis(), query)
        elif child is None:
            handlers: dict[str, Callable[[], Reply]] = {
                "GET": lambda: (200, service.get_api(api_id)),
                "PATCH": lambda: (200, service.update_api(api_id, body)),
                "PUT": lambda: (201, service.reimport_api(api_id, _definition_text(body, query))),
            }
            if method in handlers:
                return handlers[method]()
            if method == "DELETE":
                service.delete_api(api_id)
                return 204, None
        elif child in _CHILDREN:
            kind = _CHILDREN[child]
            if item is None:
                if method == "GET":
                    return 200, _page(service.list_children(kind, api_id), query)
                if method == "POST":
                    creators: dict[str, Callable[[str, Document], Document]] = {
                        "route": service.create_route,
                        "integration": service.create_integration,
                        "stage": service.create_stage,
                        "authorizer": service.create_authorizer,
                    }
                    return 201, creators[kind](api_id, body)
            elif method == "GET":
                return 200, service.get_child(kind, api_id, item)
            elif method == "DELETE":
                service.delete_child(kind, api_id, item)
                return 204, None
            elif method == "PATCH":
                updaters: dict[str, Callable[[str, str, Document], Document]] = {
                    "route": service.update_route,
                    "integration": service.update_integration,
                    "stage": service.update_stage,
                    "authorizer": service.update_authorizer,
                }
                return 200, updaters[kind](api_id, item, body)
        raise NotFound(f"Squall does not implement {method} {path}")  # unverified

    def dispatch_tags(self, method: str, arn: str, body: Document, keys: list[str]) -> Reply:
        """TagResource, UntagResource and GetTags."""
        if method == "GET":
            return 200, {"tags": self.tags.get(arn)}
        if method == "POST":
            tags = body.get("tags")
            if not isinstance(tags, dict):
                raise BadRequest("Tags are required")  # unverified: botocore checks this client-side
            self.tags.tag(arn, {str(key): str(value) for key, value in tags.items()})
            return 201, {}
        if method == "DELETE":
            self.tags.untag(arn, keys)
            return 204, None
        raise NotFound(f"Squall does not implement {method} /v2/tags/{arn}")  # unverified


def _definition_text(body: Document, query: dict[str, str]) -> str:
    """ImportApi's and ReimportApi's ``Body``: the OpenAPI definition as a JSON or YAML string."""
    basepath = query.get("basepath", "ignore")
    if basepath != "ignore":
        if basepath not in ("prepend", "split"):
            raise BadRequest(f"Invalid basepath: {basepath}")  # unverified
        # unverified: Squall imports with basepath=ignore only (servers' base paths are not applied)
        raise BadRequest(f"Squall does not support basepath={basepath}; only ignore")
    text = body.get("body")
    if not isinstance(text, str) or not text:
        raise BadRequest("Body is required")  # unverified: botocore checks this client-side
    return text


def _page(items: list[Document], query: dict[str, str]) -> Document:
    try:
        start = int(query.get("nextToken", "0"))
        size = int(query.get("maxResults", str(DEFAULT_PAGE)))
    except ValueError:
        raise BadRequest("Invalid pagination token or MaxResults") from None  # unverified
    if start < 0 or size < 1:
        raise BadRequest("Invalid pagination token or MaxResults")  # unverified
    page: dict[str, Any] = {"items": items[start : start + size]}
    if start + size < len(items):
        page["nextToken"] = str(start + size)
    return page
