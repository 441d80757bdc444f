"""Squall's own endpoints under ``/_squall/`` on the API port (besides health).

The download of a function's deployment package, the URL GetFunction returns in ``Code.Location``
(signed with an expiry, like S3's presigned URLs), ``/_squall/metrics``: every function's
metrics in Prometheus' text format, unsigned like the health check, and ``/_squall/gateway``: the
port of the HTTP gateway, for clients that build its URLs (a deployment's bucket ``WebsiteURL``).
"""

from __future__ import annotations

import asyncio
import hmac
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from squall.api.lambda_api import LambdaApi
from squall.metering.metrics import CONTENT_TYPE
from squall.platform import Platform


class AdminApi:
    """The ``squall`` service of the API port."""

    def __init__(self, platform: Platform, lambda_api: LambdaApi) -> None:
        self.platform = platform
        self.lambda_api = lambda_api
        self.router = Router(
            routes=[
                Route("/_squall/code/{hex}", self.code, methods=["GET"]),
                Route("/_squall/metrics", self.metrics, methods=["GET"]),
                Route("/_squall/gateway", self.gateway, methods=["GET"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router(scope, receive, send)

    async def code(self, request: Request) -> Response:
        code_hex = request.path_params["hex"]
        try:
            expires = int(request.query_params.get("Expires", "0"))
        except ValueError:
            expires = 0
        signature = request.query_params.get("Signature", "")
        if expires < time.time() or not hmac.compare_digest(signature, self.lambda_api.sign(code_hex, expires)):
            return JSONResponse({"message": "Request has expired or its signature is invalid"}, 403)
        if not await asyncio.to_thread(self.platform.code.has, code_hex):
            return JSONResponse({"message": "No such package"}, 404)
        data = await asyncio.to_thread(self.platform.code.get, code_hex)
        return Response(data, media_type="application/zip")

    async def metrics(self, request: Request) -> Response:
        """Prometheus' scrape target: the platform's own registry, read on the event loop (it is
        quick, and the in-flight counts it reads are the loop's)."""
        return Response(self.platform.metrics.exposition(), media_type=CONTENT_TYPE)

    async def gateway(self, request: Request) -> Response:
        """Where this server's HTTP gateway listens (its port; the host is the API port's)."""
        return JSONResponse({"port": self.platform.settings.gateway_port})
