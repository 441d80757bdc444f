"""Builds the gateway's parts for ``squall server``: the store, the gateway app and the management API."""

from __future__ import annotations

from dataclasses import dataclass

from squall.api.sigv4 import SigV4Verifier
from squall.config import Settings
from squall.gateway.app import GatewayApp
from squall.gateway.function_urls import FunctionUrlGateway
from squall.gateway.integration import FunctionInvoker
from squall.gateway.store import GatewayStore
from squall.gateway.websites import WebsiteServer
from squall.platform import Platform
from squall.services.apigateway.api import ApiGatewayV2Api
from squall.services.apigateway.service import ApiGatewayService
from squall.services.sts.api import role_id

STORE_FILE = "gateway.db"


@dataclass
class Gateway:
    """The gateway port's app and the ``apigateway`` service of the API port, sharing one store."""

    store: GatewayStore
    app: GatewayApp
    api: ApiGatewayV2Api

    def close(self) -> None:
        self.store.close()


def build_gateway(platform: Platform, settings: Settings) -> Gateway:
    """Open ``gateway.db`` in the data dir (or the shared configuration database) and build both
    apps over it."""
    store = GatewayStore(platform.config_source(STORE_FILE))
    endpoint = f"http://{{api_id}}.execute-api.localhost:{settings.gateway_port}"
    service = ApiGatewayService(store, settings.account_id, endpoint)
    invoker = FunctionInvoker(platform)
    urls = None
    if platform.function_urls is not None:
        urls = FunctionUrlGateway(
            platform.function_urls,
            invoker,
            SigV4Verifier(platform.keyring, settings.region),
            settings.account_id,
            settings.region,
            lambda key: _caller(platform, settings.account_id, key),
            invoker.stream,
        )
    sites = WebsiteServer(platform.buckets) if platform.buckets is not None else None
    app = GatewayApp(store, invoker, settings.account_id, settings.region, urls, sites)
    return Gateway(store, app, ApiGatewayV2Api(service))


def _caller(platform: Platform, account_id: str, access_key_id: str) -> tuple[str, str]:
    """(ARN, user id) of a key's owner, as STS's GetCallerIdentity reports them."""
    principal = platform.keyring.principal(access_key_id)
    if principal is None or principal.function is None:
        return f"arn:aws:iam::{account_id}:root", account_id
    return (
        f"arn:aws:sts::{account_id}:assumed-role/squall-function/{principal.function}",
        f"{role_id(account_id)}:{principal.function}",
    )
