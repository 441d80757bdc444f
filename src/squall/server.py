"""``squall server``: the embedded platform behind the AWS API port and the gateway port.

Signals are Squall's, not uvicorn's: SIGTERM or SIGINT stop the listeners, let in-flight
invocations finish up to the shutdown deadline, then kill every sandbox. No process is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Generator
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from squall.api.admin import AdminApi
from squall.api.app import build_api_app
from squall.api.credentials import load_or_create_credentials, usage_hint
from squall.api.lambda_api import LambdaApi
from squall.api.sigv4 import SigV4Verifier
from squall.config import Settings
from squall.gateway.wiring import build_gateway
from squall.http_protocol import CoalescingHttpToolsProtocol
from squall.platform import Platform
from squall.services.buckets.api import S3Api
from squall.services.cloudwatch.api import CloudWatchApi
from squall.services.cloudwatch.service import CloudWatchService
from squall.services.events.api import EventsApi
from squall.services.iam.api import IamApi
from squall.services.iam.service import IamService
from squall.services.iam.store import RoleStore
from squall.services.logs.api import LogsApi
from squall.services.logs.service import LogsService
from squall.services.queues.api import SqsApi
from squall.services.scheduler.api import SERVICE_NAME as SCHEDULER
from squall.services.scheduler.api import SchedulerApi
from squall.services.streams.api import KinesisApi
from squall.services.sts.api import StsApi
from squall.services.tables.api import DynamoDbApi
from squall.services.topics.api import SnsApi

log = logging.getLogger("squall")


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves signal handling to Squall."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _listener(app: ASGIApp, host: str, port: int, grace_s: float) -> _Listener:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="none",
        http=CoalescingHttpToolsProtocol,
        lifespan="off",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=int(grace_s) + 1,
        timeout_keep_alive=60,
    )
    return _Listener(config)


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set), then shut down gracefully."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    credentials = load_or_create_credentials(settings.data_dir, settings.access_key_id, settings.secret_access_key)
    if credentials.created:
        print(
            usage_hint(Path(settings.data_dir) / "credentials", settings.endpoint_url, settings.region),
            flush=True,
        )
    platform = Platform.build(settings, credentials.access_key_id, credentials.secret_access_key)
    roles = RoleStore(platform.config_source("iam.db"))  # opened before any sandbox starts
    gateway = build_gateway(platform, settings)
    await platform.start()
    lambda_api = LambdaApi(platform, settings.endpoint_url, credentials.secret_access_key.encode())
    verifier = None
    if settings.no_auth:
        log.warning("--no-auth: AWS API requests are NOT authenticated; use this for throwaway local work only")
    else:
        verifier = SigV4Verifier(platform.keyring, settings.region)
    services: dict[str, ASGIApp] = {"lambda": lambda_api, "squall": AdminApi(platform, lambda_api)}
    if platform.streams is not None:
        services["kinesis"] = KinesisApi(platform.streams)
    if platform.queues is not None:
        services["sqs"] = SqsApi(platform.queues)
    if platform.topics is not None:
        services["sns"] = SnsApi(platform.topics)
    if platform.buckets is not None:
        services["s3"] = S3Api(
            platform.buckets, None if settings.no_auth else platform.keyring, targets=platform.object_notifications
        )
    services["iam"] = IamApi(IamService(roles, settings.account_id), platform.keyring)
    services["sts"] = StsApi(platform.keyring, settings.account_id)
    if platform.tables is not None:
        services["dynamodb"] = DynamoDbApi(platform.tables)
    services["logs"] = LogsApi(LogsService(platform.store, settings.account_id, settings.region), platform.keyring)
    services["apigateway"] = gateway.api
    if platform.schedules is not None:
        services["events"] = EventsApi(platform.schedules.rules)
        services[SCHEDULER] = SchedulerApi(platform.schedules.schedules)
    services["monitoring"] = CloudWatchApi(CloudWatchService(platform.store, platform.metrics, platform.recorder.flush))
    api = build_api_app(
        services,
        verifier,
        ready=lambda: platform.ready,
        not_ready_status=lambda: "draining" if platform.draining else "starting",
    )
    listeners = [
        _listener(api, settings.host, settings.port, settings.shutdown_grace_s),
        _listener(gateway.app, settings.host, settings.gateway_port, settings.shutdown_grace_s),
    ]
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.ensure_future(listener.serve()) for listener in listeners]
    while not all(listener.started for listener in listeners):
        if any(task.done() for task in tasks):
            break
        await asyncio.sleep(0.01)
    if all(listener.started for listener in listeners):
        print(
            f"Squall is serving the AWS APIs on {settings.endpoint_url} and the gateway on "
            f"http://{settings.host}:{settings.gateway_port} (data in {settings.data_dir})",
            flush=True,
        )
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        log.info("shutting down: finishing in-flight invocations (up to %.0f s)", settings.shutdown_grace_s)
    for listener in listeners:
        listener.should_exit = True
    await asyncio.gather(platform.stop(), *tasks, return_exceptions=True)
    roles.close()
    gateway.close()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    failed = [t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()]
    if failed or not all(listener.started for listener in listeners):
        raise SystemExit(f"squall server could not start: {failed[0] if failed else 'a port is in use'}")
    print("Squall stopped.", flush=True)


def run(settings: Settings) -> None:
    """Entry point of ``squall server``: uvloop when available."""
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import uvloop

        uvloop.run(serve(settings))
    except ImportError:
        asyncio.run(serve(settings))
