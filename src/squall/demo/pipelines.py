"""The seed's pipelines as runnable apps: each folder of ``examples/`` with a ``template.yaml`` and a
``pipeline.py`` is deployed as its own stack, then driven end to end.

``pipeline.py`` names its ``TITLE`` and defines ``drive(demo: Demo) -> Outcome``: it feeds the app
through Squall's own APIs (boto3, the gateway over HTTP), waits for what the app must produce, and
says what went in and what came out. It may also define ``prepare(folder: Path, progress) -> None``,
run before the deployment, for what ``sam build`` would do (a layer's dependencies from PyPI, say).
``run_pipeline`` adds the deployment and the bill (invocations,
GB-seconds and dollars at Lambda's list prices, read from the usage records of the stack's
functions). ``squall demo`` and the examples' end-to-end tests both go through ``run_pipeline``.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from squall.metering.pricing import LAMBDA_PRICES, cost
from squall.models import UsageRecord

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
T = TypeVar("T")


class PipelineFailed(Exception):
    """A pipeline did not produce what it should have, in time."""


@dataclass
class Outcome:
    """What a pipeline was fed and what it produced; ``ok`` only if the output is the expected one."""

    went_in: list[str]
    came_out: list[str]
    ok: bool


@dataclass
class Server:
    """Where a running Squall server answers, and the data dir it writes to."""

    endpoint_url: str
    gateway_url: str
    data_dir: Path
    region: str
    account_id: str
    access_key: str
    secret_key: str

    def client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        make: Any = boto3.client
        return make(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(retries={"max_attempts": 2}, read_timeout=60),
        )


@dataclass
class Demo:
    """What ``drive`` gets: the server, the stack's outputs and resources, and helpers."""

    server: Server
    stack: str
    folder: Path
    outputs: dict[str, Any]
    resources: dict[str, str]
    progress: Callable[[str], None]
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """A boto3 client of this pipeline's own (clients are not shared between threads)."""
        if service not in self._clients:
            self._clients[service] = self.server.client(service)
        return self._clients[service]

    def wait_for(self, check: Callable[[], T | None], what: str, timeout_s: float = 60.0) -> T:
        """Poll ``check`` until it returns something truthy; PipelineFailed naming ``what`` if it never does."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise PipelineFailed(f"no {what} after {timeout_s:.0f} s")
            time.sleep(0.2)


@dataclass
class Bill:
    """The stack's functions' usage while the pipeline ran, priced as Lambda would."""

    invocations: int
    errors: int
    gb_seconds: Decimal
    dollars: Decimal

    @classmethod
    def of(cls, records: list[UsageRecord]) -> Bill:
        by_arch: dict[str, Decimal] = {}
        for record in records:
            by_arch[record.architecture] = by_arch.get(record.architecture, Decimal(0)) + Decimal(
                str(record.gb_seconds)
            )
        requests = {arch: sum(1 for r in records if r.architecture == arch) for arch in by_arch}
        priced = cost(requests, by_arch, apply_free_tier=False, prices=LAMBDA_PRICES) if records else None
        return cls(
            invocations=len(records),
            errors=sum(1 for r in records if r.outcome != "success"),
            gb_seconds=sum(by_arch.values(), Decimal(0)),
            dollars=priced.total if priced else Decimal(0),
        )


@dataclass
class PipelineReport:
    """One pipeline's run: the deployment, the outcome (or why it failed) and the bill."""

    name: str
    title: str
    deployed: int
    deploy_s: float
    run_s: float
    outcome: Outcome | None
    failure: str | None
    bill: Bill

    @property
    def ok(self) -> bool:
        return self.outcome is not None and self.outcome.ok and self.failure is None


def discover(root: Path = EXAMPLES) -> list[Path]:
    """Every example folder that is a pipeline (a template and a ``pipeline.py``), by name."""
    return sorted(p for p in root.iterdir() if (p / "template.yaml").is_file() and (p / "pipeline.py").is_file())


def load(folder: Path) -> ModuleType:
    """The folder's ``pipeline.py`` as a module of its own."""
    spec = importlib.util.spec_from_file_location(
        f"squall_pipeline_{folder.name.replace('-', '_')}", folder / "pipeline.py"
    )
    if spec is None or spec.loader is None:
        raise PipelineFailed(f"cannot load {folder / 'pipeline.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_pipeline(server: Server, folder: Path, progress: Callable[[str], None] = lambda _: None) -> PipelineReport:
    """Deploy ``folder``'s template as the stack named after the folder, drive it, and bill it."""
    from squall.stores.sqlite import SqliteMetadataStore
    from squall.templates.deploy import Deployer, StackStore

    module = load(folder)
    title = str(getattr(module, "TITLE", folder.name))
    began = time.time()
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = server.client(service)
        return clients[service]

    deployer = Deployer(client, StackStore(server.data_dir), server.region, server.account_id)
    deployed_at = began
    deployed = 0
    functions: set[str] = set()
    outcome: Outcome | None = None
    failure: str | None = None
    try:
        prepare = getattr(module, "prepare", None)
        if prepare is not None:
            prepare(folder, progress)
        progress("deploying")
        record = deployer.deploy(folder / "template.yaml", folder.name, {})
        deployed_at, deployed = time.time(), len(record.order)
        progress(f"deployed {deployed} resources in {deployed_at - began:.1f} s")
        resources = {logical: item.physical_id for logical, item in record.resources.items()}
        functions = {item.physical_id for item in record.resources.values() if item.type == "AWS::Lambda::Function"}
        outcome = module.drive(Demo(server, folder.name, folder, dict(record.outputs), resources, progress))
    except PipelineFailed as exc:
        failure = str(exc)
    except Exception as exc:  # one pipeline's crash (a refused deploy, a client error) fails it alone
        failure = f"{type(exc).__name__}: {exc}"
    finished = time.time()
    time.sleep(0.3)  # usage records are written in batches
    store = SqliteMetadataStore(server.data_dir / "squall.db")
    try:
        records = [r for r in store.usage(since=deployed_at) if r.function_name in functions]
    finally:
        store.close()
    return PipelineReport(
        name=folder.name,
        title=title,
        deployed=deployed,
        deploy_s=deployed_at - began,
        run_s=finished - deployed_at,
        outcome=outcome,
        failure=failure,
        bill=Bill.of(records),
    )
