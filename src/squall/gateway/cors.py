"""An HTTP API's CorsConfiguration: preflight answers and the CORS headers of other responses.

When an API has a CORS configuration, API Gateway answers preflight ``OPTIONS`` requests itself and
replaces any ``Access-Control-*`` headers the function returns with its own.
"""

from __future__ import annotations

from typing import Any

from squall.gateway.events import HttpResponse
from squall.gateway.request import GatewayRequest


def is_preflight(request: GatewayRequest) -> bool:
    return (
        request.method == "OPTIONS"
        and request.header("origin") is not None
        and request.header("access-control-request-method") is not None
    )


def _allowed_origin(config: dict[str, Any], origin: str | None) -> str | None:
    if origin is None:
        return None
    origins = [str(item) for item in config.get("allowOrigins") or []]
    if origin in origins:
        return origin
    if "*" in origins:
        return origin if config.get("allowCredentials") else "*"
    return None


def preflight(config: dict[str, Any], request: GatewayRequest) -> HttpResponse:
    """The 204 answer to a preflight request."""
    response = HttpResponse(204)
    origin = _allowed_origin(config, request.header("origin"))
    if origin is None:
        return response
    wanted_method = (request.header("access-control-request-method") or "").upper()
    methods = [str(item).upper() for item in config.get("allowMethods") or []]
    if "*" not in methods and wanted_method not in methods:
        return response
    response.headers.append(("access-control-allow-origin", origin))
    if methods:
        response.headers.append(("access-control-allow-methods", ",".join(methods)))
    headers = [str(item).lower() for item in config.get("allowHeaders") or []]
    if headers:
        response.headers.append(("access-control-allow-headers", ",".join(headers)))
    if config.get("maxAge") is not None:
        response.headers.append(("access-control-max-age", str(config["maxAge"])))
    if config.get("allowCredentials"):
        response.headers.append(("access-control-allow-credentials", "true"))
    return response


def decorate(config: dict[str, Any], request: GatewayRequest, response: HttpResponse) -> None:
    """Replace the function's CORS headers with the configuration's, for an allowed origin."""
    response.headers = [(k, v) for k, v in response.headers if not k.lower().startswith("access-control-")]
    origin = _allowed_origin(config, request.header("origin"))
    if origin is None:
        return
    response.headers.append(("access-control-allow-origin", origin))
    exposed = [str(item) for item in config.get("exposeHeaders") or []]
    if exposed:
        response.headers.append(("access-control-expose-headers", ",".join(exposed)))
    if config.get("allowCredentials"):
        response.headers.append(("access-control-allow-credentials", "true"))
