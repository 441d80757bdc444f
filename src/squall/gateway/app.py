"""The HTTP gateway on ``--gateway-port``: routes from HTTP requests to functions.

Routes are declared through the API Gateway API and templates (a later issue). Until a route
matches, the gateway answers as API Gateway does for an unknown route: 404 ``Not Found``.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send


class GatewayApp:
    """The gateway's ASGI app."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await JSONResponse({"message": "Not Found"}, 404)(scope, receive, send)
