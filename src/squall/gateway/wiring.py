"""Builds the gateway's parts for ``squall server``: the store, the gateway app and the management API."""

from __future__ import annotations

from dataclasses import dataclass

from squall.config import Settings
from squall.gateway.app import GatewayApp
from squall.gateway.integration import FunctionInvoker
from squall.gateway.store import GatewayStore
from squall.platform import Platform
from squall.services.apigateway.api import ApiGatewayV2Api
from squall.services.apigateway.service import ApiGatewayService

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
    """Open ``gateway.db`` in the data dir and build both apps over it."""
    store = GatewayStore(settings.data_dir / STORE_FILE)
    endpoint = f"http://{{api_id}}.execute-api.localhost:{settings.gateway_port}"
    service = ApiGatewayService(store, settings.account_id, endpoint)
    app = GatewayApp(store, FunctionInvoker(platform), settings.account_id, settings.region)
    return Gateway(store, app, ApiGatewayV2Api(service))
