"""Concurrency limits shared by the servers of one deployment, through a real PostgreSQL schema."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from squall.invoke.cluster_concurrency import STALE_AFTER_S, ClusterConcurrency
from squall.invoke.concurrency import ConcurrencyLimiter
from tests.contract.postgres import dsn, scratch_schema
from tests.contract.test_metadata_store import unavailable


@pytest.fixture
def database() -> Iterator[object]:
    from squall.stores.postgres import PostgresDatabase

    with scratch_schema(unavailable) as schema:
        db = PostgresDatabase(dsn(), schema)
        try:
            yield db
        finally:
            db.close()


def servers(
    database: object, limit: int
) -> tuple[ConcurrencyLimiter, ClusterConcurrency, ConcurrencyLimiter, ClusterConcurrency]:
    a, b = ConcurrencyLimiter(limit), ConcurrencyLimiter(limit)
    return a, ClusterConcurrency(database, "host/1/0", a), b, ClusterConcurrency(database, "host/2/0", b)


def test_the_account_limit_holds_for_the_servers_together(database: object) -> None:
    a, a_cluster, b, b_cluster = servers(database, 5)
    held = [a.try_take() for _ in range(3)]
    assert all(held)
    b.set_elsewhere(b_cluster.exchange())  # B learns what A published... after A publishes
    assert b.elsewhere == {}
    a.set_elsewhere(a_cluster.exchange())
    b.set_elsewhere(b_cluster.exchange())
    assert b.elsewhere == {None: 3}
    assert b.try_take() is not None and b.try_take() is not None
    assert b.try_take() is None  # 3 on A + 2 on B = the limit of 5
    for slot in held:
        assert slot is not None
        a.release_slot(slot)
    a.set_elsewhere(a_cluster.exchange())
    b.set_elsewhere(b_cluster.exchange())
    assert b.elsewhere == {} and b.try_take() is not None
    a.set_elsewhere(a_cluster.exchange())
    assert a.elsewhere == {None: 2}  # what B last published (its third slot is news until its next exchange)


def test_reserved_concurrency_holds_for_the_servers_together(database: object) -> None:
    a, a_cluster, b, b_cluster = servers(database, 1000)
    for limiter in (a, b):
        limiter.set_reserved("serial", 1)
    slot = a.try_take("serial")
    assert slot is not None
    a_cluster.exchange()
    b.set_elsewhere(b_cluster.exchange())
    assert b.elsewhere == {"serial": 1}
    assert b.try_take("serial") is None  # reserved concurrency 1 across the deployment
    assert b.try_take("other") is not None  # the unreserved pool is not touched
    a.release_slot(slot)
    a_cluster.exchange()
    b.set_elsewhere(b_cluster.exchange())
    assert b.try_take("serial") is not None


def test_a_server_that_stopped_publishing_stops_counting(database: object) -> None:
    a, a_cluster, _, b_cluster = servers(database, 5)
    assert all(a.try_take() for _ in range(4))
    a_cluster.exchange(now=1000.0)
    assert b_cluster.exchange(now=1000.0 + STALE_AFTER_S / 2) == {None: 4}
    assert b_cluster.exchange(now=1000.0 + STALE_AFTER_S * 2) == {}  # A died: its rows went stale
    a_cluster.exchange()
    a_cluster.withdraw()  # a server that stops says so at once
    assert b_cluster.exchange() == {}


def test_a_waiting_caller_gets_a_slot_when_another_server_frees_one(database: object) -> None:
    a, a_cluster, b, b_cluster = servers(database, 2)
    held = [a.try_take(), a.try_take()]
    a_cluster.exchange()
    b.set_elsewhere(b_cluster.exchange())

    async def scenario() -> None:
        waiter = asyncio.ensure_future(b.take())
        await asyncio.sleep(0.05)
        assert not waiter.done()  # the pollers' back-pressure: it waits, nothing is dropped
        for slot in held:
            assert slot is not None
            a.release_slot(slot)
        a_cluster.exchange()
        b.set_elsewhere(b_cluster.exchange())
        await asyncio.wait_for(waiter, 5)

    asyncio.run(scenario())
