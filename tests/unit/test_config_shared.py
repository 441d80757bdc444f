"""The configuration stores on one database from two servers, as the scale-out tier runs them (one
PostgreSQL schema ``<schema>_config``; also one SQLite file, where the SQL is the same): what one
writes the other reads, concurrent edits keep each other's changes, the in-memory mirrors of the
gateway follow the other server's changes, a schedule's tick fires once per deployment, and each
provisioned concurrency config is placed by one server."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from squall.errors import ResourceConflict
from squall.gateway.store import GatewayStore
from squall.gateway.url_store import FunctionUrl, FunctionUrlStore
from squall.invoke.event_config import EventConfigStore, EventInvokeConfig
from squall.invoke.provisioned_placement import ProvisionedPlacement, lease_name
from squall.invoke.provisioned_store import ProvisionedConfig, ProvisionedStore
from squall.layers import LayerStore, LayerVersion
from squall.policies import Policies, PolicyStore
from squall.services.events.service import RuleService
from squall.services.events.store import ScheduleDb
from squall.services.iam.store import RoleStore, StoredRole
from squall.services.scheduler.service import ScheduleService
from squall.sources.schedules import LEASE, ScheduleFiring, ScheduleRunner, lease_for
from squall.stores.base import LeaseStore
from squall.stores.leases import SqliteLeaseStore
from squall.stores.sql import SqlDatabase
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable
from tests.threads import run_together
from tests.unit.test_schedule_firing import FUNCTION, SteppedClock, at

ACCOUNT, REGION = "000000000000", "us-east-1"


@dataclass
class Servers:
    """Opens configuration databases on one backend's storage, one per simulated server."""

    backend: str
    source: Callable[[], Path | SqlDatabase]
    leases: Callable[[], LeaseStore]
    opened: list[Any] = field(default_factory=list)

    def where(self, file: str) -> Path | SqlDatabase:
        """A new server's database: a file of the shared data dir, or a new connection to the schema."""
        source = self.source()
        if isinstance(source, Path):
            return source / file
        self.opened.append(source)  # the platform closes a shared database, not its stores
        return source

    def open(self, kind: Callable[[Path | SqlDatabase], Any], file: str) -> Any:
        """A store of ``kind`` on a new server's database."""
        store = kind(self.where(file))
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for item in reversed(self.opened):
            item.close()


@contextmanager
def _sqlite(tmp_path: Path) -> Iterator[Servers]:
    yield Servers("sqlite", lambda: tmp_path, lambda: SqliteLeaseStore(tmp_path / "leases.db"))


@contextmanager
def _postgres(tmp_path: Path) -> Iterator[Servers]:
    from squall.stores.config_postgres import postgres_config_database
    from squall.stores.postgres import PostgresLeaseStore

    with scratch_schema(unavailable) as schema:
        yield Servers(
            "postgres",
            lambda: postgres_config_database(postgres_dsn(), f"{schema}_config"),
            lambda: PostgresLeaseStore(postgres_dsn(), schema),
        )


@pytest.fixture(params=["sqlite", "postgres"])
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Servers]:
    with {"sqlite": _sqlite, "postgres": _postgres}[request.param](tmp_path) as opened:
        try:
            yield opened
        finally:
            opened.close_all()


def test_layer_versions_published_through_both_servers_are_numbered_once(servers: Servers) -> None:
    a, b = servers.open(LayerStore, "layers.db"), servers.open(LayerStore, "layers.db")
    numbers: list[int] = []

    def publish(store: LayerStore) -> Callable[[], None]:
        return lambda: numbers.extend(store.publish(LayerVersion(name="lib", version=0)).version for _ in range(15))

    run_together([publish(a), publish(b)])
    assert sorted(numbers) == list(range(1, 31))
    assert [v.version for v in b.versions("lib")] == list(range(30, 0, -1))
    a.delete("lib", 30)
    assert b.publish(LayerVersion(name="lib", version=0)).version == 31  # never reused


def test_permissions_added_through_both_servers_at_once_are_all_kept(servers: Servers) -> None:
    a, b = Policies(servers.open(PolicyStore, "policies.db")), Policies(servers.open(PolicyStore, "policies.db"))

    def add(policies: Policies, tag: str) -> Callable[[], None]:
        def work() -> None:
            for i in range(10):
                new = {"Sid": f"{tag}{i}", "Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction"}
                policies.add("f", "", new, None)

        return work

    run_together([add(a, "a"), add(b, "b")])
    statements, revision = b.store.get("f", "") or ([], "")
    assert sorted(s["Sid"] for s in statements) == sorted([f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)])
    with pytest.raises(ResourceConflict):
        a.add("f", "", {"Sid": "b3", "Effect": "Allow"}, None)
    a.remove("f", "", "a0", revision)
    assert len((b.store.get("f", "") or ([], ""))[0]) == 19


def test_configs_and_roles_written_through_one_server_are_read_through_the_other(servers: Servers) -> None:
    events_a, events_b = (servers.open(EventConfigStore, "event_invoke.db") for _ in range(2))
    events_a.put(EventInvokeConfig(function_name="f", qualifier="live", last_modified=1.0, maximum_retry_attempts=0))
    assert events_b.get("f", "live") == events_a.get("f", "live") is not None
    assert events_b.delete("f") and events_a.list("f") == []

    provisioned_a, provisioned_b = (servers.open(ProvisionedStore, "provisioned.db") for _ in range(2))
    provisioned_a.put(ProvisionedConfig(function_name="f", qualifier="1", requested=2, last_modified="x"))
    assert [c.requested for c in provisioned_b.list()] == [2]

    roles_a, roles_b = (servers.open(RoleStore, "iam.db") for _ in range(2))

    def role(name: str) -> StoredRole:
        return StoredRole(name=name, role_id="AROA" + name.upper(), path="/", created="t", assume_role_policy="{}")

    assert roles_a.insert(role("Deployer"))
    assert not roles_b.insert(role("DEPLOYER"))  # unique regardless of case, across servers
    assert roles_b.insert(role("auditor"))
    assert [r.name for r in roles_a.list()] == ["auditor", "Deployer"]
    updated = roles_b.update("deployer", lambda r: setattr(r, "description", "d"))
    assert updated is not None and roles_a.get("DePlOyEr") == updated[0]
    assert roles_a.delete("DEPLOYER", lambda r: None) and roles_b.get("Deployer") is None


def _eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> float:
    """Seconds until ``check()`` held; fails after ``timeout_s``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout_s, "the other server's change never arrived"
        time.sleep(0.001)
    return time.monotonic() - start


def _url(url_id: str) -> FunctionUrl:
    return FunctionUrl(url_id, "f", None, "arn:f", "NONE", "BUFFERED", "2026-01-01T00:00:00Z", "m")


def test_function_url_and_route_mirrors_follow_the_other_server(servers: Servers) -> None:
    if servers.backend == "sqlite":
        pytest.skip("one server owns an embedded store: there is no other server's change to follow")
    urls_a, urls_b = (servers.open(FunctionUrlStore, "function_urls.db") for _ in range(2))
    gateway_a, gateway_b = (servers.open(GatewayStore, "gateway.db") for _ in range(2))
    time.sleep(0.5)  # both listening (a change made before would reach the mirror by the resync)

    urls_a.put(_url("u" * 32))
    created = _eventually(lambda: urls_b.by_id("u" * 32) == _url("u" * 32))
    urls_b.delete("u" * 32)
    deleted = _eventually(lambda: urls_a.by_id("u" * 32) is None)

    gateway_a.put("api", "", "api1", {"apiId": "api1"})
    gateway_a.put("route", "api1", "r1", {"routeKey": "GET /x", "target": "integrations/i1"})
    routed = _eventually(lambda: "r1" in gateway_b.view("route", "api1"))
    gateway_b.put("route", "api1", "r1", {"routeKey": "GET /y"})
    _eventually(lambda: gateway_a.view("route", "api1")["r1"] == {"routeKey": "GET /y"})
    assert gateway_b.delete("api", "", "api1")
    _eventually(lambda: gateway_a.api_ids() == [] and gateway_a.view("route", "api1") == {})
    print(f"\nmirror caught up (ms): url {created * 1e3:.1f}, deletion {deleted * 1e3:.1f}, route {routed * 1e3:.1f}")


def test_two_servers_creating_one_functions_url_at_once_create_one(servers: Servers) -> None:
    urls = [servers.open(FunctionUrlStore, "function_urls.db") for _ in range(2)]
    created: list[bool] = []
    run_together(
        [lambda store=store, n=n: created.append(store.create(_url(str(n) * 32))) for n, store in enumerate(urls)]
    )
    assert sorted(created) == [False, True]  # the API answers the loser ResourceConflictException


def test_two_schedulers_on_one_store_fire_each_tick_once(servers: Servers) -> None:
    """Two servers, each with a scheduler, on one schedule store and one lease store: one lease for the
    deployment, one invocation per tick however the lease moves."""
    invoked: list[str] = []
    now = at("2026-01-05T10:00:30")
    clock = SteppedClock(now)

    async def invoke(name: str, qualifier: str | None, payload: bytes) -> None:
        invoked.append(payload.decode())

    runners: list[ScheduleRunner] = []
    host = socket.gethostname()
    for owner in (f"{host}/{os.getpid()}/0", f"{host}/{os.getppid()}/0"):
        source = servers.where("schedules.db")
        db = ScheduleDb(source)
        servers.opened.append(db)
        rules = RuleService(db, ACCOUNT, REGION, lambda: now)
        firing = ScheduleFiring(db, rules, ScheduleService(db, ACCOUNT, REGION, lambda: now), invoke)
        runner = ScheduleRunner(firing, servers.leases(), clock, poll_s=15, lease=lease_for(source))
        runner.owner = owner
        runners.append(runner)
    # One lease per deployment (PostgreSQL), or per data dir shared by both (SQLite).
    assert runners[0].lease == runners[1].lease == (LEASE if servers.backend == "postgres" else runners[0].lease)
    rules.put_rule("every-minute", "rate(1 minute)", None, None, None, None, [])
    rules.put_targets("every-minute", [{"Id": "t", "Arn": FUNCTION, "Input": '"tick"'}])

    async def scenario() -> None:
        for runner in runners:
            await runner.start()
        await clock.run_until(at("2026-01-05T10:03:40"), runners=2)
        assert sum(runner.holding for runner in runners) == 1
        holder = next(runner for runner in runners if runner.holding)
        await holder.stop()  # the other takes over
        await clock.run_until(at("2026-01-05T10:06:40"), runners=1)
        for runner in runners:
            await runner.stop()

    asyncio.run(scenario())
    for runner in runners:
        runner.leases.close()
    assert len(invoked) == 6  # 10:01:30 to 10:06:30, once each


def test_claims_racing_from_two_servers_claim_a_tick_once(servers: Servers) -> None:
    """Even two claims at once (a lease changing hands mid-pass) queue a tick's invocation once."""
    now = at("2026-01-05T10:00:30")
    dbs = [servers.open(ScheduleDb, "schedules.db") for _ in range(2)]
    firings = [
        ScheduleFiring(
            db,
            RuleService(db, ACCOUNT, REGION, lambda: now),
            ScheduleService(db, ACCOUNT, REGION, lambda: now),
            _no_invoke,
        )
        for db in dbs
    ]
    for i in range(20):
        firings[0].rules.put_rule(f"r{i}", "rate(1 minute)", None, None, None, None, [])
        firings[0].rules.put_targets(f"r{i}", [{"Id": "t", "Arn": FUNCTION}])
    queued: list[int] = []
    for minute in range(1, 4):
        tick = now + minute * 60 + 1
        run_together([lambda f=f, t=tick: queued.append(f.claim_due(t)) for f in firings])
    assert sum(queued) == 60
    assert len(dbs[1].read("SELECT seq FROM outbox")) == 60


async def _no_invoke(name: str, qualifier: str | None, payload: bytes) -> None:
    return None


def test_each_provisioned_config_is_placed_by_one_server_and_taken_over(servers: Servers) -> None:
    host = socket.gethostname()
    a, b = ProvisionedPlacement(servers.leases()), ProvisionedPlacement(servers.leases())
    a.owner, b.owner = f"{host}/{os.getpid()}/0", f"{host}/{os.getppid()}/0"
    configs = [("f", str(v)) for v in range(1, 5)] + [("g", "live")]
    first = a.claim(configs[:3])  # a starts first with three configs
    assert first == set(configs[:3])
    second = b.claim(configs)
    assert second == set(configs[3:])  # b takes only what nobody holds
    assert a.claim(configs) == set(configs[:3])  # renewed, nothing new free
    assert a.claim(configs[1:]) == set(configs[1:3])  # a config gone: its lease given up...
    assert b.claim(configs) == set(configs[3:]) | {configs[0]}  # ...and free for the next claimer
    a.release()  # a stops: b places everything on its next pass
    assert b.claim(configs) == set(configs)
    # b dies (its owner is a dead process of this host): a takes its configs at once.
    dead = f"{host}/{2**22 + 7}/1"
    for name in b.held:
        assert b.leases is not None
        b.leases.release(b.owner, name)
        b.leases.acquire(dead, name, 60)
    assert a.claim(configs) == set(configs)
    assert lease_name(("f", "1")) in (a.leases.holders() if a.leases else {})
    for placement in (a, b):
        assert placement.leases is not None
        placement.leases.close()


def test_a_mirror_reads_again_what_it_missed_while_its_listener_was_down(servers: Servers) -> None:
    if servers.backend == "sqlite":
        pytest.skip("one server owns an embedded store: there is no other server's change to follow")
    import psycopg

    urls_a, urls_b = (servers.open(FunctionUrlStore, "function_urls.db") for _ in range(2))
    time.sleep(0.5)  # both listening
    with psycopg.connect(postgres_dsn(), autocommit=True) as admin:  # only this test's listeners
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = %s", (f"LISTEN {urls_b.db.schema}",)
        ).fetchall()
    assert len(ended) == 2
    urls_a.put(_url("m" * 32))  # notified while nobody listens: lost
    _eventually(lambda: urls_b.by_id("m" * 32) is not None)  # read again once b listens again
