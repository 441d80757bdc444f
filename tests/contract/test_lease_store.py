"""The LeaseStore contract: one suite for every backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from squall.sources.owner import new_owner, owner_alive
from squall.stores.base import LeaseStore
from squall.stores.leases import SqliteLeaseStore
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable

Opener = Callable[[], LeaseStore]


@contextmanager
def _sqlite(tmp_path: Path) -> Iterator[Opener]:
    yield lambda: SqliteLeaseStore(tmp_path / "leases.db")


@contextmanager
def _postgres(tmp_path: Path) -> Iterator[Opener]:
    from squall.stores.postgres import PostgresLeaseStore

    with scratch_schema(unavailable) as schema:
        yield lambda: PostgresLeaseStore(postgres_dsn(), schema=schema)


#: Each backend opens new stores on one scratch storage.
BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Opener]]] = {"sqlite": _sqlite, "postgres": _postgres}


@pytest.fixture(params=sorted(BACKENDS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    opened: list[LeaseStore] = []
    with BACKENDS[request.param](tmp_path) as make:

        def opener() -> LeaseStore:
            store = make()
            opened.append(store)
            return store

        yield opener
        for store in opened:
            store.close()


def test_a_held_lease_keeps_others_out_until_released(open_store: Opener) -> None:
    store = open_store()
    assert store.acquire("a", "shard-1", 30)
    assert store.acquire("a", "shard-1", 30)  # ours already
    assert not store.acquire("b", "shard-1", 30)
    assert store.acquire("b", "shard-2", 30)
    assert store.holders() == {"shard-1": "a", "shard-2": "b"}
    store.release("a", "shard-1")
    assert store.acquire("b", "shard-1", 30)
    store.release("b")
    assert store.holders() == {}


def test_leases_expire_unless_extended(open_store: Opener) -> None:
    store = open_store()
    assert store.acquire("a", "x", 0.3) and store.acquire("a", "y", 0.3)
    assert store.extend("a", 30) == {"x", "y"}
    assert not store.acquire("b", "x", 30)
    assert store.acquire("a", "z", 0.05)
    time.sleep(0.1)
    assert store.acquire("b", "z", 30)  # expired: free for anyone
    assert store.extend("a", 30) == {"x", "y"}  # z is not a's any more


def test_two_stores_on_the_same_storage_see_each_others_leases(open_store: Opener) -> None:
    one, two = open_store(), open_store()
    assert one.acquire("a", "s", 30)
    assert not two.acquire("b", "s", 30)
    assert two.holders() == {"s": "a"}


def test_abandoned_leases_are_reaped(open_store: Opener) -> None:
    store = open_store()
    store.acquire("dead", "s1", 30)
    store.acquire("live", "s2", 30)
    assert store.reap_abandoned(lambda owner: owner != "dead") == 1
    assert store.holders() == {"s2": "live"}


def test_owner_ids_tell_live_from_dead_processes() -> None:
    me = new_owner()
    assert owner_alive(me)
    host, pid, _ = me.split("/")
    assert not owner_alive(f"{host}/{pid}/1")  # same pid, started at another time: a reused pid
    assert not owner_alive(f"{socket.gethostname()}/{2**22 + 7}/5")  # no such process
    assert owner_alive("another-host/1/1")  # cannot tell: only expiry frees it
