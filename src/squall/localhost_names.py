"""Outgoing HTTP to localhost names (``<anything>.localhost``) goes to the loopback address.

RFC 6761 reserves ``.localhost`` for the loopback interface, and curl and browsers resolve every
name under it to 127.0.0.1 themselves; the system resolver often does not (glibc knows only
``localhost``). Squall's own URLs use such names (function URLs are
``http://<url-id>.lambda-url.<region>.localhost:<port>/``), so a client of Squall's that calls out,
such as an SNS HTTP subscription, must reach them as curl would.
"""

from __future__ import annotations

import httpx

LOOPBACK = "127.0.0.1"


class LoopbackTransport(httpx.AsyncBaseTransport):
    """Connects to the loopback address for any request while keeping its ``Host`` header (and TLS name)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        request.url = request.url.copy_with(host=LOOPBACK)
        request.extensions = {**request.extensions, "sni_hostname": host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def localhost_mounts() -> dict[str, httpx.AsyncBaseTransport]:
    """``mounts=`` for an ``httpx.AsyncClient``: names under ``.localhost`` go to the loopback address."""
    return {"all://*.localhost": LoopbackTransport()}
