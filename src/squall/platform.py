"""The composition root: builds stores, executor and services from settings, and is the one
place that picks a tier. It is also the facade the front ends (Lambda API, CLI) call.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squall import config as limits
from squall import ids
from squall.aliases import AliasRegistry, is_alias
from squall.api.keyring import KeyRing
from squall.config import Settings
from squall.errors import (
    InvalidParameterValue,
    InvalidRequestContent,
    RequestTooLarge,
    ResourceConflict,
    ServiceError,
    StoreUnavailable,
)
from squall.executors.base import Executor
from squall.executors.keepalive import HistogramConfig, KeepAlivePolicy
from squall.executors.local import LocalExecutor
from squall.gateway.url_store import FunctionUrlStore
from squall.invoke.async_queue import AsyncDispatcher
from squall.invoke.cluster_concurrency import ClusterConcurrency
from squall.invoke.concurrency import MIN_UNRESERVED, ConcurrencyLimiter
from squall.invoke.destinations import Destinations
from squall.invoke.event_config import EventConfigStore, EventInvokeConfigs
from squall.invoke.provisioned import ProvisionedConcurrency
from squall.invoke.provisioned_store import ProvisionedStore
from squall.invoke.streaming import ResponseStream
from squall.invoke.sync import Invoker
from squall.layers import LayerRegistry, LayerStore
from squall.logs import format as logfmt
from squall.metering.metrics import Metrics, stream_iterator_ages
from squall.metering.usage import UsageRecorder
from squall.models import LATEST, Alias, FunctionConfig
from squall.platform_api import FunctionChanges, InvokeOutcome
from squall.policies import Policies, PolicyStore
from squall.registry import FunctionRegistry
from squall.services.buckets.service import BucketService
from squall.services.queues.service import QueueService
from squall.services.queues.store import QueueStore
from squall.services.streams.service import StreamService
from squall.services.streams.store import StreamStore
from squall.services.tables.service import TableService
from squall.services.tables.store import TableStore
from squall.services.tables.streams import TableStreams
from squall.services.topics.deliverer import Deliverer
from squall.services.topics.service import TopicService
from squall.services.topics.store import TopicStore
from squall.sources.mappings import EventSourceMapping, MappingStore
from squall.sources.objects import ObjectNotifications
from squall.sources.owner import new_owner
from squall.sources.queues import QueueMappings
from squall.sources.schedules import Schedules, build_schedules
from squall.sources.shard_sources import KinesisSource, TableStreamSource
from squall.sources.streams import StreamMappings
from squall.stores.base import LeaseStore, MetadataStore
from squall.stores.code import CodeStore
from squall.stores.leases import SqliteLeaseStore
from squall.stores.sql import SqlDatabase
from squall.stores.sqlite import SqliteMetadataStore

log = logging.getLogger(__name__)

REAP_INTERVAL_S = 5.0
REAP_PASSES_PER_BIN = 12


class Platform:
    """Everything behind the APIs: functions, invocation, async queue, concurrency, metering."""

    def __init__(
        self, settings: Settings, store: MetadataStore, code: CodeStore, executor: Executor, keyring: KeyRing
    ) -> None:
        self.settings = settings
        self.keyring = keyring
        self.store = store
        self.code = code
        self.executor = executor
        self.registry = FunctionRegistry(store, code, settings.account_id, settings.region, executor.retire)
        self.limiter = ConcurrencyLimiter(settings.concurrency_limit)
        self.recorder = UsageRecorder(store)
        self.aliases = AliasRegistry(store, self.registry)
        self.invoker = Invoker(self.registry, executor, self.limiter, [self.recorder], aliases=self.aliases)
        #: Where async outcomes, failed stream batches and dead letters go (queues join in ``build``).
        self.destinations = Destinations(self._invoke_event)
        self.dispatcher = AsyncDispatcher(
            store, self.invoker, settings.async_retry_scale, destinations=self.destinations
        )
        self.metrics = Metrics()
        self.metrics.attach(self.invoker, self.dispatcher, self.destinations)
        #: Async retry settings and destinations per version or alias (built by ``build``).
        self.event_configs: EventInvokeConfigs | None = None
        #: Provisioned concurrency configs and their environments (built by ``build``).
        self.provisioned: ProvisionedConcurrency | None = None
        #: The data services of this tier (built by ``build``).
        self.streams: StreamService | None = None
        self.tables: TableService | None = None
        self.queues: QueueService | None = None
        self.topics: TopicService | None = None
        self.topic_deliverer: Deliverer | None = None
        self.buckets: BucketService | None = None
        self.object_notifications: ObjectNotifications | None = None
        self.mappings: MappingStore | None = None
        self.leases: LeaseStore | None = None
        self.cluster_concurrency: ClusterConcurrency | None = None
        self.stream_mappings: StreamMappings | None = None
        self.queue_mappings: QueueMappings | None = None
        self.schedules: Schedules | None = None
        #: Layer versions and functions' resource policies (built by ``build``).
        self.layers: LayerRegistry | None = None
        self.policies: Policies | None = None
        #: Function URL configs (built by ``build``; served on the gateway port).
        self.function_urls: FunctionUrlStore | None = None
        #: The configuration database every server shares (scale-out tier; None: files in the data dir).
        self.config: SqlDatabase | None = None
        self.ready = False
        self.draining = False
        self._background: list[asyncio.Task[None]] = []

    @classmethod
    def build(cls, settings: Settings, access_key_id: str, secret_access_key: str) -> Platform:
        """The embedded tier: SQLite metadata, files for code, sandboxes on this machine."""
        data = settings.data_dir.resolve()
        data.mkdir(parents=True, exist_ok=True)
        # Traversable but not listable, so sandboxes can reach nothing in it by name.
        os.chmod(data, 0o711)
        store = metadata_store(settings, data)
        # One server owns an embedded store: events a previous process had claimed are abandoned.
        store.release_claims()
        code = code_store(settings, data)
        keyring = KeyRing(access_key_id, secret_access_key)

        def api_env(function_name: str) -> dict[str, str]:
            key, secret = keyring.for_function(function_name)
            return {
                "AWS_ENDPOINT_URL": settings.sandbox_endpoint_url,
                "AWS_ACCESS_KEY_ID": key,
                "AWS_ACCESS_KEY": key,
                "AWS_SECRET_ACCESS_KEY": secret,
            }

        executor = _executor(settings, code, data, api_env)
        platform = cls(settings, store, code, executor, keyring)
        platform.streams = StreamService(stream_store(settings, data), settings.account_id, settings.region)
        platform.tables = TableService(table_store(settings, data), settings.account_id, settings.region)
        platform.queues = QueueService(queue_store(settings, data), settings.account_id, settings.region)
        platform.buckets = bucket_service(settings, data)
        platform.object_notifications = ObjectNotifications(platform.buckets, platform)
        platform.topics = TopicService(
            topic_store(settings, data), settings.account_id, settings.region, settings.endpoint_url
        )
        if settings.tier != "ray":
            # One server owns an embedded store: deliveries a previous process had claimed are abandoned.
            platform.topics.release_claims()
        platform.destinations.topics = platform.topics
        platform.topic_deliverer = Deliverer(
            platform.topics,
            lambda name, qualifier, payload: platform.invoke(name, qualifier, payload, "Event"),
            platform.queues,
        )
        platform.mappings = MappingStore(mapping_database(settings, data))
        # One connection to the lease file per process, shared by everything that holds leases.
        platform.leases = lease_store(settings, data)
        platform.destinations.queues = platform.queues
        platform.queue_mappings = QueueMappings(
            platform.mappings, platform.queues, platform.invoke_for_mapping, platform.function_timeout, platform.leases
        )
        platform.config = config_database(settings)
        config = platform.config_source
        platform.layers = LayerRegistry(LayerStore(config("layers.db")), code, settings.account_id, settings.region)
        platform.policies = Policies(PolicyStore(config("policies.db")))
        platform.function_urls = FunctionUrlStore(config("function_urls.db"))
        event_store = EventConfigStore(config("event_invoke.db"))
        platform.event_configs = EventInvokeConfigs(event_store, platform.registry, platform.aliases)
        platform.dispatcher.event_configs = event_store
        platform.provisioned = ProvisionedConcurrency(
            ProvisionedStore(config("provisioned.db")),
            platform.registry,
            platform.aliases,
            executor,
            platform.limiter,
            platform.leases,
        )
        platform.stream_mappings = StreamMappings(
            platform.mappings,
            [KinesisSource(platform.streams), TableStreamSource(TableStreams(platform.tables))],
            platform.invoke_for_mapping,
            f"arn:aws:iam::{settings.account_id}:role/squall-event-source",
            platform.leases,
            platform.deliver_to_destination,
        )
        platform.metrics.iterator_ages = stream_iterator_ages(platform.mappings, platform.stream_mappings)
        platform.schedules = build_schedules(
            config("schedules.db"),
            settings.account_id,
            settings.region,
            lambda name, qualifier, payload: platform.invoke(name, qualifier, payload, "Event"),
            platform.leases,
        )
        return platform

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for function, reserved in (await asyncio.to_thread(self.store.reserved_concurrency)).items():
            self.limiter.set_reserved(function, reserved)
        self.store.watch(lambda name: _call_soon(loop, self._changed_elsewhere, name))
        await self.executor.start()
        if self.provisioned is not None:
            await self.provisioned.start()
        if self.stream_mappings is not None:
            await self.stream_mappings.start()
        if self.queue_mappings is not None:
            await self.queue_mappings.start()
        if self.topic_deliverer is not None:
            await self.topic_deliverer.start()
        if self.object_notifications is not None:
            await self.object_notifications.start()
        if self.schedules is not None:
            await self.schedules.start()
        if self.settings.tier == "ray":
            # Several servers may share this deployment: its limits hold for all of them together.
            self.cluster_concurrency = _cluster_concurrency(self.store, self.limiter)
            if self.cluster_concurrency is not None:
                await self.cluster_concurrency.start()
        self._background += [
            asyncio.ensure_future(self.dispatcher.run()),
            asyncio.ensure_future(self._reap_loop()),
        ]
        self.ready = True

    async def stop(self) -> None:
        """Graceful: stop taking work, let in-flight invocations finish, then kill sandboxes."""
        self.ready = False
        self.draining = True
        if self.schedules is not None:
            await self.schedules.stop()
        grace = self.settings.shutdown_grace_s
        await self.dispatcher.stop(grace)
        if self.stream_mappings is not None:
            await self.stream_mappings.stop()
        if self.queue_mappings is not None:
            await self.queue_mappings.stop()
        if self.topic_deliverer is not None:
            await self.topic_deliverer.stop()
        if self.object_notifications is not None:
            await self.object_notifications.stop()
        if self.provisioned is not None:
            await self.provisioned.stop()
        await self.executor.shutdown(grace)
        if self.cluster_concurrency is not None:
            await self.cluster_concurrency.stop()
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.recorder.close()
        self.store.close()
        self.code.close()
        if self.streams is not None:
            self.streams.close()
        if self.tables is not None:
            self.tables.close()
        if self.queues is not None:
            self.queues.close()
        if self.topics is not None:
            self.topics.close()
        if self.buckets is not None:
            self.buckets.close()
        if self.mappings is not None:
            self.mappings.close()
        if self.leases is not None:
            self.leases.close()
        if self.layers is not None:
            self.layers.store.close()
        if self.policies is not None:
            self.policies.store.close()
        if self.event_configs is not None:
            self.event_configs.store.close()
        if self.function_urls is not None:
            self.function_urls.close()
        if self.config is not None:
            self.config.close()

    def config_source(self, file: str) -> Path | SqlDatabase:
        """Where a configuration store keeps its tables: the shared configuration database, or
        ``file`` in the data dir."""
        return self.config if self.config is not None else self.settings.data_dir.resolve() / file

    def _changed_elsewhere(self, name: str | None) -> None:
        """A function (None: any) changed in the store, maybe through another server: forget what
        is cached of it, reload the reserved concurrency, and accept the function's key (its
        sandboxes, started through any server, may call the APIs through this one)."""
        self.registry.forget(name)
        self.aliases.forget_function(name)
        if name is not None:
            self.keyring.for_function(name)
        self._background.append(asyncio.ensure_future(self._load_reserved(name)))
        if name is None:
            self._background.append(asyncio.ensure_future(self._accept_every_function_key()))
        self._background = [task for task in self._background if not task.done()]

    async def _accept_every_function_key(self) -> None:
        marker: str | None = None
        try:
            while True:
                functions, marker = await asyncio.to_thread(self.store.list_functions, marker, 1000)
                for function in functions:
                    self.keyring.for_function(function.name)
                if marker is None:
                    return
        except StoreUnavailable:
            if not self.draining:
                log.warning("listing the functions' keys failed", exc_info=True)

    async def _load_reserved(self, name: str | None) -> None:
        try:
            stored = await asyncio.to_thread(self.store.reserved_concurrency)
        except StoreUnavailable:
            if not self.draining:
                log.warning("reloading reserved concurrency failed", exc_info=True)
            return
        for function in {*stored, *self.limiter.reserved} if name is None else {name}:
            self.limiter.set_reserved(function, stored.get(function))

    async def deliver_to_destination(self, destination: str, payload: bytes) -> None:
        """Send a record (JSON) to a function or a queue; ServiceError when it could not be delivered."""
        if not await self.destinations.send(destination, json.loads(payload)):
            raise ServiceError(f"The record could not be delivered to {destination}.")

    async def _invoke_event(self, name: str, qualifier: str | None, payload: bytes) -> None:
        """An async invoke on Squall's own behalf (a destination function)."""
        await self.invoke(name, qualifier, payload, "Event", trigger="destination")

    async def invoke_for_mapping(
        self, mapping: EventSourceMapping, payload: bytes, shape: dict[str, Any] | None
    ) -> tuple[str | None, bytes, str]:
        """Invoke a mapping's function synchronously with one batch, waiting for a concurrency slot
        (``shape``: how the sandbox builds the event from ``payload``; None when it is the event)."""
        name, _, qualifier = mapping.function_arn.split(":function:", 1)[1].partition(":")
        config = await self.invoker.resolve(name, qualifier or None)
        trigger = mapping.event_source_arn.split(":", 3)[2]  # kinesis, sqs or dynamodb
        _, result = await self.invoker.invoke(
            config, payload, qualifier=qualifier or None, trigger=trigger, wait=True, shape=shape
        )
        return result.function_error, result.payload, config.version

    async def function_timeout(self, function_arn: str) -> int:
        """The timeout (s) of the version a function ARN names (an alias: its main version)."""
        name, _, qualifier = function_arn.split(":function:", 1)[1].partition(":")
        return (await self.get_function(name, qualifier or None)).timeout

    async def _reap_loop(self) -> None:
        # Passes several times a bin, so a pre-warm lands well inside its window.
        interval = min(REAP_INTERVAL_S, self.settings.keep_alive_bin_s / REAP_PASSES_PER_BIN)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await self.executor.reap_idle(self.settings.keep_alive_s)

    # --- functions -------------------------------------------------------------------------------
    def function_arn(self, name: str, qualifier: str | None = None) -> str:
        return self.registry.arn(name, qualifier)

    async def create_function(self, config: FunctionConfig, zip_bytes: bytes, publish: bool) -> FunctionConfig:
        return await self.registry.create(config, zip_bytes, publish)

    async def get_function(self, name: str, qualifier: str | None = None) -> FunctionConfig:
        """One version; an alias as ``qualifier`` describes the version it points to."""
        if is_alias(qualifier):
            assert qualifier is not None
            return await self.registry.get(name, await self.aliases.primary(name, qualifier))
        return await self.registry.get(name, qualifier)

    async def list_functions(self, marker: str | None, max_items: int) -> tuple[list[FunctionConfig], str | None]:
        return await self.registry.list(marker, max_items)

    async def update_function_code(
        self,
        name: str,
        zip_bytes: bytes,
        publish: bool = False,
        revision_id: str | None = None,
        dry_run: bool = False,
    ) -> FunctionConfig:
        return await self.registry.update_code(name, zip_bytes, publish, revision_id, dry_run)

    async def update_function_configuration(
        self, name: str, changes: FunctionChanges, revision_id: str | None = None
    ) -> FunctionConfig:
        return await self.registry.update_configuration(name, changes, revision_id)

    async def delete_function(self, name: str, qualifier: str | None = None) -> None:
        """The whole function (with its aliases and reservation), or with ``qualifier`` one version."""
        if qualifier is not None and is_alias(qualifier):
            raise InvalidParameterValue("Deletion of aliases is not currently supported.")
        if qualifier is not None and qualifier != LATEST:
            await self.registry.get(name, qualifier)
            names = await self.aliases.referencing(name, qualifier)
            if names:
                raise ResourceConflict(
                    f"Unable to delete version because the following aliases reference it: [{', '.join(names)}]"
                )
        await self.registry.delete(name, qualifier)
        if self.policies is not None:
            await asyncio.to_thread(self.policies.store.forget, name, qualifier)
        if self.event_configs is not None:
            await self.event_configs.forget(name, qualifier)
        if self.provisioned is not None:
            await self.provisioned.forget(name, qualifier)
        if qualifier is None:
            self.aliases.forget_function(name)
            if self.function_urls is not None:
                self.function_urls.forget_function(name)
            self.limiter.set_reserved(name, None)

    # --- versions and aliases --------------------------------------------------------------------
    async def publish_version(
        self,
        name: str,
        code_sha256: str | None = None,
        description: str | None = None,
        revision_id: str | None = None,
    ) -> FunctionConfig:
        return await self.registry.publish(name, code_sha256, description, revision_id, wait=False)

    async def list_versions(self, name: str) -> list[FunctionConfig]:
        return await self.registry.versions(name)

    async def create_alias(
        self, name: str, alias: str, version: str, description: str = "", weights: dict[str, float] | None = None
    ) -> Alias:
        return await self.aliases.create(name, alias, version, description, weights or {})

    async def get_alias(self, name: str, alias: str) -> Alias:
        return await self.aliases.get(name, alias)

    async def update_alias(
        self,
        name: str,
        alias: str,
        version: str | None = None,
        description: str | None = None,
        weights: dict[str, float] | None = None,
        revision_id: str | None = None,
    ) -> Alias:
        return await self.aliases.update(name, alias, version, description, weights, revision_id)

    async def delete_alias(self, name: str, alias: str) -> None:
        await self.aliases.delete(name, alias)

    async def list_aliases(self, name: str, version: str | None = None) -> list[Alias]:
        return await self.aliases.list(name, version)

    # --- reserved concurrency --------------------------------------------------------------------
    @property
    def min_unreserved(self) -> int:
        """What must stay unreserved: 100, or the whole limit on an account smaller than that."""
        return min(MIN_UNRESERVED, self.limiter.limit)

    async def put_function_concurrency(self, name: str, reserved: int) -> int:
        await self.registry.get(name)
        others = sum(n for function, n in self.limiter.reserved.items() if function != name)
        if self.limiter.limit - others - reserved < self.min_unreserved:
            raise InvalidParameterValue(
                "Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{self.min_unreserved}]."
            )
        await asyncio.to_thread(self.store.set_reserved_concurrency, name, reserved)
        self.limiter.set_reserved(name, reserved)
        return reserved

    async def get_function_concurrency(self, name: str) -> int | None:
        await self.registry.get(name)
        return self.limiter.reserved.get(name)

    async def delete_function_concurrency(self, name: str) -> None:
        await self.registry.get(name)
        await asyncio.to_thread(self.store.set_reserved_concurrency, name, None)
        self.limiter.set_reserved(name, None)

    # --- invocation ------------------------------------------------------------------------------
    async def invoke(
        self,
        name: str,
        qualifier: str | None,
        payload: bytes,
        invocation_type: str = "RequestResponse",
        log_type: str = "None",
        client_context: str | None = None,
        trigger: str = "api",
        stream: ResponseStream | None = None,
        request_id: str | None = None,
    ) -> InvokeOutcome:
        """Lambda's Invoke: RequestResponse (200), Event (202) or DryRun (204). With ``stream``
        (InvokeWithResponseStream, streaming function URLs), a streamed response goes there chunk
        by chunk, and the outcome's payload is empty unless the function answered whole.
        ``request_id`` is the API request's own id, which Lambda gives the invocation too."""
        limit = limits.ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else limits.SYNC_PAYLOAD_LIMIT
        if len(payload) > limit:
            if invocation_type == "Event":
                raise RequestTooLarge(
                    f"{len(payload)} byte payload is too large for the Event invocation type (limit {limit} bytes)"
                )
            raise RequestTooLarge(f"Request must be smaller than {limit} bytes for the InvokeFunction operation")
        payload = payload or b"{}"
        _check_json(payload)
        context_json = _decode_client_context(client_context) if invocation_type == "RequestResponse" else None
        config = await self.invoker.resolve(name, qualifier)
        request_id = request_id or ids.request_id()
        if invocation_type == "DryRun":
            return InvokeOutcome(status_code=204, payload=b"", request_id=request_id)
        if invocation_type == "Event":
            await self.dispatcher.enqueue(name, qualifier or LATEST, payload, request_id)
            return InvokeOutcome(status_code=202, payload=b"", request_id=request_id)
        if stream is not None:
            stream.executed_version = config.version
            stream.request_id = request_id
        request, result = await self.invoker.invoke(
            config,
            payload,
            qualifier=qualifier,
            client_context=context_json,
            trigger=trigger,
            request_id=request_id,
            stream=stream,
        )
        return InvokeOutcome(
            status_code=200,
            payload=result.payload,
            request_id=request.request_id,
            executed_version=config.version,
            function_error=result.function_error,
            log_result=logfmt.tail_base64(result.log) if log_type == "Tail" else None,
        )

    async def account_usage(self) -> dict[str, Any]:
        """AccountUsage of GetAccountSettings: stored code and function count."""
        count = await asyncio.to_thread(self.store.function_count)
        total = await asyncio.to_thread(self.code.total_size)
        return {"TotalCodeSize": total, "FunctionCount": count}


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[str | None], None], name: str | None) -> None:
    """Run ``callback(name)`` on ``loop`` from another thread; nothing once the loop is closed."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, name)


def _check_json(payload: bytes) -> None:
    import json

    try:
        json.loads(payload)
    except ValueError as exc:
        raise InvalidRequestContent(
            f"Could not parse request body into json: Could not parse payload into json: {exc}"
        ) from None


def _decode_client_context(raw: str | None) -> str | None:
    if not raw:
        return None
    import json

    if len(raw) > limits.CLIENT_CONTEXT_LIMIT:
        raise InvalidRequestContent(f"Client context must be smaller than {limits.CLIENT_CONTEXT_LIMIT} bytes.")
    try:
        text = base64.b64decode(raw, validate=True).decode()
        if not isinstance(json.loads(text), dict):
            raise ValueError("not an object")
    except ValueError:
        raise InvalidRequestContent("Client context must be a valid Base64-encoded JSON object.") from None
    return text


# --- the tier: the one place it is chosen ------------------------------------------------------------
def metadata_store(settings: Settings, data: Path) -> MetadataStore:
    """SQLite in the data directory (embedded), or PostgreSQL shared by the cluster (ray)."""
    if settings.tier == "ray":
        from squall.stores.postgres import PostgresMetadataStore

        return PostgresMetadataStore(_postgres_dsn(settings), settings.postgres_schema)
    return SqliteMetadataStore(data / "squall.db")


def code_store(settings: Settings, data: Path) -> CodeStore:
    """Packages on this machine (embedded), or in the cluster's PostgreSQL with the data directory
    as a local cache (ray), so that every server reads what any of them stored."""
    if settings.tier == "ray":
        from squall.stores.postgres_code import PostgresPackages

        return CodeStore(data / "code", PostgresPackages.open(_postgres_dsn(settings), settings.postgres_schema))
    return CodeStore(data / "code")


def _executor(settings: Settings, code: CodeStore, data: Path, api_env: Callable[[str], dict[str, str]]) -> Executor:
    """Sandboxes on this machine (embedded), or on the node agents of a Ray cluster (ray)."""
    if settings.tier == "ray":
        try:
            from squall.executors.ray import RayExecutor
        except ImportError as exc:
            raise ValueError(f"the ray tier needs Ray: pip install 'squall[ray]' ({exc})") from exc

        return RayExecutor(
            code,
            settings.region,
            api_env,
            settings.ray_address,
            settings.isolation,
            cluster=settings.postgres_schema,
            orphan_s=settings.ray_agent_orphan_s,
            keep_alive=keep_alive_policy(settings),
            memory_floor_mb=settings.memory_floor_mb,
        )
    return LocalExecutor(
        code,
        data / "sandboxes",
        settings.region,
        api_env,
        isolation=settings.isolation,
        keep_alive=keep_alive_policy(settings),
        memory_floor_mb=settings.memory_floor_mb,
        cpu_quota=_cpu_quota(settings),
    )


def _cpu_quota(settings: Settings) -> bool:
    if settings.cpu_limit not in ("none", "quota"):
        raise ValueError(f"cpu_limit must be none or quota, not {settings.cpu_limit!r}")
    return settings.cpu_limit == "quota"


def keep_alive_policy(settings: Settings) -> KeepAlivePolicy:
    """The keep-alive policy the settings choose."""
    if settings.keep_alive_policy not in ("adaptive", "fixed"):
        raise ValueError(f"keep_alive_policy must be adaptive or fixed, not {settings.keep_alive_policy!r}")
    return KeepAlivePolicy(
        settings.keep_alive_s,
        adaptive=settings.keep_alive_policy == "adaptive",
        config=HistogramConfig(bin_s=settings.keep_alive_bin_s),
    )


def lease_store(settings: Settings, data: Path) -> LeaseStore:
    """Leases (stream shards, schedules): a file (embedded) or the cluster's PostgreSQL (ray)."""
    if settings.tier == "ray":
        from squall.stores.postgres import PostgresLeaseStore

        return PostgresLeaseStore(_postgres_dsn(settings), settings.postgres_schema)
    return SqliteLeaseStore(data / "leases.db")


def stream_store(settings: Settings, data: Path) -> Path | StreamStore:
    """Streams: a file (embedded) or the cluster's PostgreSQL (ray), in the schema ``<schema>_streams``."""
    if (shared := shared_schema(settings, "streams")) is not None:
        from squall.services.streams.postgres import PostgresStreamStore

        return PostgresStreamStore(*shared)
    return data / "streams.db"


def queue_store(settings: Settings, data: Path) -> Path | QueueStore:
    """Queues: a file (embedded) or the cluster's PostgreSQL (ray), in the schema ``<schema>_queues``,
    so that every server sends to, receives from and delivers every queue."""
    if (shared := shared_schema(settings, "queues")) is not None:
        from squall.services.queues.postgres import PostgresQueueStore

        return PostgresQueueStore(*shared)
    return data / "queues.db"


def bucket_service(settings: Settings, data: Path) -> BucketService:
    """Buckets (S3 API): a SQLite file and body files (embedded) or the cluster's PostgreSQL (ray), in
    the schema ``<schema>_buckets``, bodies included, so that every server serves every object."""
    if (shared := shared_schema(settings, "buckets")) is not None:
        from squall.services.buckets.postgres import ChunkBodies, postgres_bucket_database

        database = postgres_bucket_database(*shared)
        return BucketService(database, ChunkBodies(database), settings.region)
    return BucketService(data / "buckets.db", data / "objects", settings.region)


def table_store(settings: Settings, data: Path) -> Path | TableStore:
    """Tables (DynamoDB API) and their change streams: a file (embedded) or the cluster's PostgreSQL
    (ray), in the schema ``<schema>_tables``, so that every server serves every table."""
    if (shared := shared_schema(settings, "tables")) is not None:
        from squall.services.tables.postgres import PostgresTableStore

        return PostgresTableStore(*shared)
    return data / "tables.db"


def mapping_database(settings: Settings, data: Path) -> Path | SqlDatabase:
    """Event source mappings and checkpoints: a file (embedded) or the cluster's PostgreSQL (ray), in
    the schema ``<schema>_mappings``, so that every server runs every mapping."""
    if (shared := shared_schema(settings, "mappings")) is not None:
        from squall.sources.mappings_postgres import postgres_mapping_database

        return postgres_mapping_database(*shared)
    return data / "mappings.db"


def config_database(settings: Settings) -> SqlDatabase | None:
    """The configuration stores' database: None in the embedded tier (each keeps a file in the data
    dir), the cluster's PostgreSQL in the ray tier, in the schema ``<schema>_config``, so that every
    server sees the layers, policies, URLs, HTTP APIs, roles, rules and schedules any of them wrote."""
    if (shared := shared_schema(settings, "config")) is not None:
        from squall.stores.config_postgres import postgres_config_database

        return postgres_config_database(*shared)
    return None


def topic_store(settings: Settings, data: Path) -> Path | TopicStore:
    """Topics, subscriptions and pending deliveries: a file (embedded) or the cluster's PostgreSQL
    (ray), in the schema ``<schema>_topics``, so that every server serves and delivers every topic."""
    if (shared := shared_schema(settings, "topics")) is not None:
        from squall.services.topics.postgres import PostgresTopicStore

        return PostgresTopicStore(*shared)
    return data / "topics.db"


def shared_schema(settings: Settings, service: str) -> tuple[str, str] | None:
    """Where a data service keeps its state in the ray tier: the deployment's PostgreSQL and the schema
    ``<schema>_<service>``; None in the embedded tier (files in the data dir)."""
    if settings.tier != "ray":
        return None
    return _postgres_dsn(settings), f"{settings.postgres_schema}_{service}"


def _cluster_concurrency(store: MetadataStore, limiter: ConcurrencyLimiter) -> ClusterConcurrency | None:
    from squall.stores.postgres import PostgresMetadataStore

    if not isinstance(store, PostgresMetadataStore):
        return None
    return ClusterConcurrency(store.db, new_owner(), limiter)


def _postgres_dsn(settings: Settings) -> str:
    if not settings.postgres_dsn:
        raise ValueError("the ray tier needs a PostgreSQL database: pass --postgres-dsn (or SQUALL_POSTGRES_DSN)")
    return settings.postgres_dsn
