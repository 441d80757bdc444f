"""The MetadataStore contract: one suite, run against every backend.

Each backend is a factory in ``BACKENDS``: given a scratch directory, it yields a function that
opens a *new* store on the same underlying storage, so that tests can close a store and reopen it
to check durability. A backend whose service is missing calls ``unavailable()``, which skips the
tests on a workstation but fails them when ``CI`` is set, so that CI never passes by skipping.

PostgreSQL runs every test in a scratch schema of the server ``SQUALL_TEST_POSTGRES_DSN`` names (the
local one by default; see ``tests/contract/postgres.py``). The SQLite-only checks at the end of this
file stay SQLite-only.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import msgspec
import pytest

from squall.errors import ResourceConflict, StoreUnavailable
from squall.models import LATEST, Alias, AsyncEvent, FunctionConfig, LogEvent, UsageRecord
from squall.stores.base import MetadataStore
from squall.stores.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteMetadataStore
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema

Opener = Callable[[], MetadataStore]


def unavailable(reason: str) -> NoReturn:
    """A backend's service is not there: skip locally, fail in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"backend unavailable in CI: {reason}")
    pytest.skip(reason)


@contextmanager
def _sqlite(tmp_path: Path) -> Iterator[Opener]:
    path = tmp_path / "metadata.db"
    yield lambda: SqliteMetadataStore(path)


@contextmanager
def _postgres(tmp_path: Path) -> Iterator[Opener]:
    from squall.stores.postgres import PostgresMetadataStore

    with scratch_schema(unavailable) as schema:
        yield lambda: PostgresMetadataStore(postgres_dsn(), schema=schema)


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Opener]]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@dataclass
class Backend:
    """Opens stores on one backend's storage and closes them all at the end of the test."""

    name: str
    opener: Opener
    opened: list[MetadataStore] = field(default_factory=list)

    def open(self) -> MetadataStore:
        store = self.opener()
        self.opened.append(store)
        return store


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with BACKENDS[request.param](tmp_path) as opener:
        backend = Backend(request.param, opener)
        try:
            yield backend
        finally:
            for store in backend.opened:
                store.close()


@pytest.fixture
def store(backend: Backend) -> MetadataStore:
    return backend.open()


def fn(name: str, version: str = LATEST, **changes: object) -> FunctionConfig:
    values: dict[str, object] = {
        "name": name,
        "version": version,
        "runtime": "python3.12",
        "role": "arn:aws:iam::000000000000:role/lambda",
        "handler": "app.handler",
        "code_sha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        "code_size": 22,
    }
    values.update(changes)
    return FunctionConfig(**values)  # type: ignore[arg-type]


def event(n: int, *, not_before: float = 0.0, attempts: int = 0) -> AsyncEvent:
    return AsyncEvent(
        id=0,
        request_id=f"req-{n}",
        function_name="fn",
        qualifier=LATEST,
        payload=b'{"n": %d}' % n,
        enqueued_at=1000.0 + n,
        attempts=attempts,
        not_before=not_before,
    )


def usage_record(name: str, start: float, *, cold: bool = False, init_ms: float | None = None) -> UsageRecord:
    return UsageRecord(
        function_name=name,
        version=LATEST,
        request_id=f"{name}-{start}",
        start=start,
        duration_ms=12.5,
        billed_ms=13,
        memory_mb=128,
        gb_seconds=128 / 1024 * 13 / 1000,
        max_memory_mb=40,
        cold=cold,
        init_ms=init_ms,
        outcome="success",
        trigger="api",
        architecture="arm64",
    )


def line(ts: int, message: str) -> LogEvent:
    return LogEvent(timestamp=ts, message=message)


# --- functions ----------------------------------------------------------------------------------


def test_create_then_get_round_trips_every_field(store: MetadataStore) -> None:
    config = fn(
        "full",
        description="all fields",
        timeout=30,
        memory_size=512,
        environment={"A": "1", "B": "two"},
        architectures=["arm64"],
        dead_letter_target="arn:aws:sqs:us-east-1:000000000000:dlq",
        layers=["arn:aws:lambda:us-east-1:000000000000:layer:l:1"],
        logging_config={"LogFormat": "JSON"},
        tags={"team": "a"},
        state="Active",
        revision_id="r-1",
    )
    store.create_function(config)
    assert store.get_function("full", LATEST) == config
    assert store.function_count() == 1


def test_get_missing_function_or_version_is_none(store: MetadataStore) -> None:
    assert store.get_function("nope", LATEST) is None
    store.create_function(fn("f"))
    assert store.get_function("f", "1") is None


def test_create_existing_name_conflicts_and_keeps_the_original(store: MetadataStore) -> None:
    store.create_function(fn("f", description="first"))
    with pytest.raises(ResourceConflict) as caught:
        store.create_function(fn("f", description="second"))
    assert caught.value.message == "Function already exist: f"
    assert caught.value.code == "ResourceConflictException"
    original = store.get_function("f", LATEST)
    assert original is not None and original.description == "first"


def test_create_conflicts_when_only_a_published_version_exists(store: MetadataStore) -> None:
    store.put_function(fn("f", "1"))
    with pytest.raises(ResourceConflict):
        store.create_function(fn("f"))


def test_concurrent_creates_of_one_name_let_exactly_one_win(store: MetadataStore) -> None:
    threads = 8
    barrier = threading.Barrier(threads)
    outcomes: list[str] = []
    lock = threading.Lock()

    def create(i: int) -> None:
        barrier.wait()
        try:
            store.create_function(fn("race", description=str(i)))
            result = "won"
        except ResourceConflict:
            result = "conflict"
        with lock:
            outcomes.append(result)

    workers = [threading.Thread(target=create, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(outcomes) == ["conflict"] * (threads - 1) + ["won"]
    assert store.function_count() == 1


def test_put_function_stores_versions_and_replaces(store: MetadataStore) -> None:
    store.create_function(fn("f", description="v0"))
    store.put_function(fn("f", "1", description="v1"))
    store.put_function(fn("f", "2", description="v2"))
    store.put_function(fn("f", LATEST, description="latest again"))
    got = {v: store.get_function("f", v) for v in (LATEST, "1", "2")}
    assert {v: c.description for v, c in got.items() if c} == {
        LATEST: "latest again",
        "1": "v1",
        "2": "v2",
    }
    assert store.function_count() == 1


def test_list_functions_returns_only_latest_ordered_by_name(store: MetadataStore) -> None:
    for name in ("charlie", "alpha", "bravo"):
        store.create_function(fn(name))
        store.put_function(fn(name, "1"))
    page, marker = store.list_functions(None, 50)
    assert [(c.name, c.version) for c in page] == [("alpha", LATEST), ("bravo", LATEST), ("charlie", LATEST)]
    assert marker is None


def test_list_functions_pages_with_the_next_name_as_marker(store: MetadataStore) -> None:
    names = [f"fn-{i:02d}" for i in range(7)]
    for name in reversed(names):
        store.create_function(fn(name))
    seen: list[str] = []
    markers: list[str | None] = []
    marker: str | None = None
    while True:
        page, marker = store.list_functions(marker, 3)
        assert len(page) <= 3
        seen += [c.name for c in page]
        markers.append(marker)
        if marker is None:
            break
    assert seen == names
    assert markers == ["fn-03", "fn-06", None]
    # The marker is just the first name of the next page: any name works as a starting point.
    page, marker = store.list_functions("fn-05", 10)
    assert [c.name for c in page] == ["fn-05", "fn-06"] and marker is None
    page, marker = store.list_functions("fn-02a", 1)
    assert [c.name for c in page] == ["fn-03"] and marker == "fn-04"


def test_list_functions_exact_page_has_no_next_marker(store: MetadataStore) -> None:
    for name in ("a", "b"):
        store.create_function(fn(name))
    assert store.list_functions(None, 2)[1] is None
    assert store.list_functions(None, 1)[1] == "b"
    assert store.list_functions("zzz", 5) == ([], None)


def test_list_functions_on_empty_store(store: MetadataStore) -> None:
    assert store.list_functions(None, 10) == ([], None)
    assert store.function_count() == 0


def test_delete_one_version_keeps_the_rest(store: MetadataStore) -> None:
    store.create_function(fn("f"))
    store.put_function(fn("f", "1"))
    store.put_function(fn("f", "2"))
    assert store.delete_function("f", "1") is True
    assert store.get_function("f", "1") is None
    assert store.get_function("f", "2") is not None
    assert store.get_function("f", LATEST) is not None
    assert store.delete_function("f", "1") is False
    assert store.delete_function("f", "9") is False


def test_delete_whole_function_removes_every_version_only_of_that_function(store: MetadataStore) -> None:
    store.create_function(fn("f"))
    store.put_function(fn("f", "1"))
    store.create_function(fn("g"))
    store.put_function(fn("g", "1"))
    assert store.delete_function("f") is True
    assert store.get_function("f", LATEST) is None
    assert store.get_function("f", "1") is None
    assert store.get_function("g", "1") is not None
    assert store.function_count() == 1
    assert store.delete_function("f") is False
    # The name is free again.
    store.create_function(fn("f"))
    assert store.function_count() == 2


def test_functions_survive_close_and_reopen(backend: Backend) -> None:
    first = backend.open()
    first.create_function(fn("f", description="durable"))
    first.put_function(fn("f", "1"))
    first.close()
    second = backend.open()
    latest = second.get_function("f", LATEST)
    assert latest is not None and latest.description == "durable"
    assert second.get_function("f", "1") is not None
    with pytest.raises(ResourceConflict):
        second.create_function(fn("f"))


# --- versions, aliases, reserved concurrency -----------------------------------------------------


def test_list_versions_puts_latest_first_then_numbers_ascending(store: MetadataStore) -> None:
    store.create_function(fn("v"))
    for number in ("10", "2", "1"):
        store.put_function(fn("v", number))
    store.put_function(fn("other", "3"))
    assert [c.version for c in store.list_versions("v")] == [LATEST, "1", "2", "10"]
    assert store.list_versions("missing") == []


def test_aliases_insert_get_replace_list_and_delete(store: MetadataStore) -> None:
    live = Alias(function_name="f", name="live", function_version="1", weights={"2": 0.25}, revision_id="r1")
    assert store.insert_alias(live) is True
    assert store.insert_alias(Alias(function_name="f", name="live", function_version="9")) is False
    assert store.get_alias("f", "live") == live
    assert store.get_alias("f", "other") is None and store.get_alias("g", "live") is None
    store.insert_alias(Alias(function_name="f", name="beta", function_version="2"))
    store.insert_alias(Alias(function_name="g", name="live", function_version="1"))
    assert [a.name for a in store.list_aliases("f")] == ["beta", "live"]
    moved = Alias(function_name="f", name="live", function_version="2", description="d", revision_id="r2")
    store.put_alias(moved)
    assert store.get_alias("f", "live") == moved
    assert store.delete_alias("f", "live") is True
    assert store.delete_alias("f", "live") is False
    assert [a.name for a in store.list_aliases("f")] == ["beta"]
    assert [a.name for a in store.list_aliases("g")] == ["live"]


def test_reserved_concurrency_set_replace_and_remove(store: MetadataStore) -> None:
    assert store.reserved_concurrency() == {}
    store.set_reserved_concurrency("a", 0)
    store.set_reserved_concurrency("b", 5)
    store.set_reserved_concurrency("b", 7)
    assert store.reserved_concurrency() == {"a": 0, "b": 7}
    store.set_reserved_concurrency("a", None)
    store.set_reserved_concurrency("never", None)
    assert store.reserved_concurrency() == {"b": 7}


def test_deleting_a_function_drops_its_aliases_and_reservation_only(store: MetadataStore) -> None:
    for name in ("f", "g"):
        store.create_function(fn(name))
        store.insert_alias(Alias(function_name=name, name="live", function_version=LATEST))
        store.set_reserved_concurrency(name, 3)
    store.delete_function("f", "1")  # one version: aliases and reservation stay
    assert store.get_alias("f", "live") is not None and store.reserved_concurrency() == {"f": 3, "g": 3}
    store.delete_function("f")
    assert store.get_alias("f", "live") is None and store.list_aliases("f") == []
    assert store.reserved_concurrency() == {"g": 3}
    assert store.get_alias("g", "live") is not None


def test_aliases_and_reservations_survive_close_and_reopen(backend: Backend) -> None:
    first = backend.open()
    first.insert_alias(Alias(function_name="f", name="live", function_version="4", weights={"5": 0.5}))
    first.set_reserved_concurrency("f", 2)
    first.close()
    second = backend.open()
    alias = second.get_alias("f", "live")
    assert alias is not None and alias.weights == {"5": 0.5}
    assert second.reserved_concurrency() == {"f": 2}


# --- async queue --------------------------------------------------------------------------------


def test_enqueue_returns_distinct_increasing_ids(store: MetadataStore) -> None:
    ids = [store.enqueue(event(i)) for i in range(5)]
    assert ids == sorted(set(ids))
    assert store.queued() == 5


def test_claim_takes_due_events_oldest_first_up_to_limit(store: MetadataStore) -> None:
    ids = [store.enqueue(event(i)) for i in range(3)]
    store.enqueue(event(99, not_before=500.0))  # not due before t=500
    claimed = store.claim(now=100.0, limit=2, lease_s=1000.0)
    assert [e.id for e in claimed] == ids[:2]
    first = claimed[0]
    assert (first.request_id, first.function_name, first.qualifier) == ("req-0", "fn", LATEST)
    assert first.payload == b'{"n": 0}' and isinstance(first.payload, bytes)
    assert first.enqueued_at == 1000.0 and first.attempts == 0
    assert [e.id for e in store.claim(now=100.0, limit=10, lease_s=1000.0)] == [ids[2]]
    assert store.claim(now=100.0, limit=10, lease_s=1000.0) == []
    assert [e.request_id for e in store.claim(now=500.0, limit=10, lease_s=1000.0)] == ["req-99"]


def test_claimed_events_stay_hidden_until_the_lease_expires(store: MetadataStore) -> None:
    event_id = store.enqueue(event(1))
    assert [e.id for e in store.claim(now=100.0, limit=10, lease_s=30.0)] == [event_id]
    assert store.claim(now=129.9, limit=10, lease_s=30.0) == []
    assert store.queued() == 1  # in flight, still queued
    # The dispatcher died without completing: the event comes back.
    again = store.claim(now=130.0, limit=10, lease_s=30.0)
    assert [e.id for e in again] == [event_id]


def test_release_claims_makes_leased_events_due_again(store: MetadataStore) -> None:
    leased = store.enqueue(event(1))
    later = store.enqueue(event(2, not_before=500.0))
    assert [e.id for e in store.claim(now=100.0, limit=10, lease_s=1000.0)] == [leased]
    assert store.release_claims() == 1
    assert [e.id for e in store.claim(now=100.0, limit=10, lease_s=1000.0)] == [leased]
    # An event scheduled for later stays scheduled.
    assert [e.id for e in store.claim(now=500.0, limit=10, lease_s=1000.0)] == [later]


def test_complete_removes_the_event_for_good(store: MetadataStore) -> None:
    keep = store.enqueue(event(1))
    done = store.enqueue(event(2))
    store.claim(now=0.0, limit=10, lease_s=10.0)
    store.complete(done)
    assert store.queued() == 1
    assert [e.id for e in store.claim(now=1000.0, limit=10, lease_s=10.0)] == [keep]
    store.complete(done)  # completing twice is harmless
    assert store.queued() == 1


def test_reschedule_sets_due_time_and_attempts(store: MetadataStore) -> None:
    event_id = store.enqueue(event(1))
    store.claim(now=0.0, limit=1, lease_s=600.0)
    store.reschedule(event_id, not_before=60.0, attempts=1)
    # The reschedule replaces the lease: due at 60, not at 600.
    assert store.claim(now=59.0, limit=1, lease_s=600.0) == []
    (retried,) = store.claim(now=60.0, limit=1, lease_s=600.0)
    assert (retried.id, retried.attempts, retried.not_before) == (event_id, 1, 60.0)
    assert retried.payload == b'{"n": 1}'


def test_concurrent_claims_never_hand_out_an_event_twice(store: MetadataStore) -> None:
    total = 60
    for i in range(total):
        store.enqueue(event(i))
    threads = 6
    barrier = threading.Barrier(threads)
    claimed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        while batch := store.claim(now=10.0, limit=4, lease_s=60.0):
            with lock:
                claimed.extend(e.id for e in batch)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(claimed) == total
    assert len(set(claimed)) == total


def test_queue_survives_close_and_reopen_with_its_leases(backend: Backend) -> None:
    first = backend.open()
    leased = first.enqueue(event(1))
    waiting = first.enqueue(event(2, not_before=50.0))
    later = first.enqueue(event(3, not_before=500.0))
    assert [e.id for e in first.claim(now=10.0, limit=1, lease_s=100.0)] == [leased]
    first.close()

    second = backend.open()
    assert second.queued() == 3
    assert [e.id for e in second.claim(now=60.0, limit=10, lease_s=1000.0)] == [waiting]
    # The crashed dispatcher's lease ran out at t=110: its event is handed out again.
    assert [e.id for e in second.claim(now=110.0, limit=10, lease_s=1000.0)] == [leased]
    assert [e.id for e in second.claim(now=500.0, limit=10, lease_s=1000.0)] == [later]
    # Ids are not reused after a restart.
    assert second.enqueue(event(4)) > later


# --- metering -----------------------------------------------------------------------------------


def test_usage_round_trips_in_start_order(store: MetadataStore) -> None:
    records = [
        usage_record("a", 30.0),
        usage_record("b", 10.0, cold=True, init_ms=150.5),
        usage_record("a", 20.0),
    ]
    store.add_usage(records)
    assert store.usage() == sorted(records, key=lambda r: r.start)


def test_usage_filters_by_half_open_range_and_function(store: MetadataStore) -> None:
    store.add_usage([usage_record(name, float(t)) for t in range(10) for name in ("a", "b")])
    assert [r.start for r in store.usage(since=3.0, until=6.0, function_name="a")] == [3.0, 4.0, 5.0]
    assert [r.start for r in store.usage(since=8.0)] == [8.0, 8.0, 9.0, 9.0]
    assert [r.start for r in store.usage(until=1.0)] == [0.0, 0.0]
    assert {r.function_name for r in store.usage(function_name="b")} == {"b"}
    assert len(store.usage(function_name="b")) == 10
    assert store.usage(function_name="c") == []
    assert store.usage(since=5.0, until=5.0) == []


def test_add_usage_accepts_empty_and_many_batches(store: MetadataStore) -> None:
    store.add_usage([])
    assert store.usage() == []
    batch = [usage_record("f", float(i)) for i in range(2000)]
    store.add_usage(batch)
    store.add_usage(batch[:10])
    assert len(store.usage()) == 2010


def test_usage_survives_close_and_reopen(backend: Backend) -> None:
    first = backend.open()
    first.add_usage([usage_record("f", 1.0, cold=True, init_ms=99.0)])
    first.close()
    assert backend.open().usage() == [usage_record("f", 1.0, cold=True, init_ms=99.0)]


def test_record_writes_usage_and_the_lines_of_several_streams_at_once(store: MetadataStore) -> None:
    usage = [usage_record("f", 1.0), usage_record("g", 2.0)]
    store.record(
        usage,
        [
            ("/aws/lambda/f", "s1", [line(1, "START f")]),
            ("/aws/lambda/g", "s9", [line(2, "START g"), line(3, "END g")]),
            ("/aws/lambda/f", "s1", [line(4, "END f")]),
            ("/aws/lambda/f", "s2", []),
        ],
    )
    assert store.usage() == usage
    assert [(stream, e.message) for _, stream, e in store.log_events("/aws/lambda/f")] == [
        ("s1", "START f"),
        ("s1", "END f"),
    ]
    assert [e.message for _, _, e in store.log_events("/aws/lambda/g", stream="s9")] == ["START g", "END g"]
    store.record([], [])
    assert len(store.usage()) == 2


# --- logs ---------------------------------------------------------------------------------------


def test_logs_append_and_read_oldest_first(store: MetadataStore) -> None:
    store.append_logs("/aws/lambda/f", "s1", [line(1, "START"), line(2, "hello\n")])
    store.append_logs("/aws/lambda/f", "s2", [line(3, "other stream")])
    store.append_logs("/aws/lambda/g", "s1", [line(4, "other group")])
    got = store.log_events("/aws/lambda/f")
    assert [(stream, e) for _, stream, e in got] == [
        ("s1", line(1, "START")),
        ("s1", line(2, "hello\n")),
        ("s2", line(3, "other stream")),
    ]
    ids = [event_id for event_id, _, _ in got]
    assert ids == sorted(set(ids)) and ids[0] > 0
    assert store.log_events("/aws/lambda/none") == []


def test_logs_cursor_limit_and_stream_filter(store: MetadataStore) -> None:
    for i in range(10):
        store.append_logs("grp", f"s{i % 2}", [line(i, f"m{i}")])
    first = store.log_events("grp", limit=4)
    assert [e.message for _, _, e in first] == ["m0", "m1", "m2", "m3"]
    rest = store.log_events("grp", after_id=first[-1][0])
    assert [e.message for _, _, e in rest] == [f"m{i}" for i in range(4, 10)]
    assert store.log_events("grp", after_id=rest[-1][0]) == []
    odd = store.log_events("grp", stream="s1", limit=3)
    assert [e.message for _, _, e in odd] == ["m1", "m3", "m5"]
    odd_rest = store.log_events("grp", after_id=odd[-1][0], stream="s1")
    assert [e.message for _, _, e in odd_rest] == ["m7", "m9"]


def test_append_no_logs_is_harmless(store: MetadataStore) -> None:
    store.append_logs("grp", "s", [])
    assert store.log_events("grp") == []


def test_logs_survive_close_and_reopen_and_cursors_keep_growing(backend: Backend) -> None:
    first = backend.open()
    first.append_logs("grp", "s", [line(1, "before restart")])
    (last_id, _, _), *_ = first.log_events("grp")
    first.close()
    second = backend.open()
    assert [e.message for _, _, e in second.log_events("grp")] == ["before restart"]
    second.append_logs("grp", "s", [line(2, "after restart")])
    assert [e.message for _, _, e in second.log_events("grp", after_id=last_id)] == ["after restart"]


def test_log_groups_and_streams_summarise_their_lines(store: MetadataStore) -> None:
    assert store.log_groups() == []
    store.append_logs("/aws/lambda/b", "s2", [line(20, "x"), line(25, "yy")])
    store.append_logs("/aws/lambda/b", "s1", [line(10, "é")])
    store.append_logs("/aws/lambda/a", "s", [line(5, "abc")])
    store.append_logs("/other", "s", [line(1, "z")])
    groups = store.log_groups()
    assert [(g.name, g.first_timestamp, g.stored_bytes) for g in groups] == [
        ("/aws/lambda/a", 5, 3),
        ("/aws/lambda/b", 10, 5),
        ("/other", 1, 1),
    ]
    assert [g.name for g in store.log_groups("/aws/lambda/")] == ["/aws/lambda/a", "/aws/lambda/b"]
    assert store.log_groups("/nothing") == []
    streams = store.log_streams("/aws/lambda/b")
    assert [(s.name, s.first_timestamp, s.last_timestamp, s.stored_bytes) for s in streams] == [
        ("s1", 10, 10, 2),
        ("s2", 20, 25, 3),
    ]
    assert store.log_streams("/missing") == []


def test_log_event_range_filters_by_stream_time_and_cursor(store: MetadataStore) -> None:
    for i in range(10):
        store.append_logs("grp", f"s{i % 2}", [line(100 + i, f"m{i}")])
    store.append_logs("other", "s0", [line(100, "elsewhere")])
    every = store.log_event_range("grp")
    assert [e.message for _, _, e in every] == [f"m{i}" for i in range(10)]
    ids = [event_id for event_id, _, _ in every]
    assert [e.message for _, _, e in store.log_event_range("grp", streams=["s1"])] == ["m1", "m3", "m5", "m7", "m9"]
    assert store.log_event_range("grp", streams=[]) == []
    timed = store.log_event_range("grp", start_ms=103, end_ms=106)
    assert [e.message for _, _, e in timed] == ["m3", "m4", "m5"]
    window = store.log_event_range("grp", after_id=ids[1], before_id=ids[5])
    assert [e.message for _, _, e in window] == ["m2", "m3", "m4"]
    newest = store.log_event_range("grp", limit=3, newest_first=True)
    assert [(stream, e.message) for _, stream, e in newest] == [("s1", "m9"), ("s0", "m8"), ("s1", "m7")]


def test_delete_log_group_removes_only_that_group(store: MetadataStore) -> None:
    store.append_logs("a", "s", [line(1, "one")])
    store.append_logs("b", "s", [line(2, "two")])
    assert store.delete_log_group("a") is True
    assert store.delete_log_group("a") is False
    assert [g.name for g in store.log_groups()] == ["b"]
    assert store.log_event_range("a") == []


# --- lifecycle ----------------------------------------------------------------------------------


def test_closed_store_refuses_work_and_closes_twice(backend: Backend) -> None:
    store = backend.open()
    store.close()
    store.close()
    with pytest.raises(StoreUnavailable):
        store.get_function("f", LATEST)
    with pytest.raises(StoreUnavailable):
        store.enqueue(event(1))


def test_two_stores_on_the_same_storage_see_each_other(backend: Backend) -> None:
    one, two = backend.open(), backend.open()
    one.create_function(fn("shared"))
    assert two.get_function("shared", LATEST) is not None
    with pytest.raises(ResourceConflict):
        two.create_function(fn("shared"))
    event_id = two.enqueue(event(1))
    assert [e.id for e in one.claim(now=0.0, limit=5, lease_s=60.0)] == [event_id]
    assert two.claim(now=0.0, limit=5, lease_s=60.0) == []


# --- SQLite backend specifics -------------------------------------------------------------------


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "meta.db"


def test_sqlite_files_are_private(sqlite_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = SqliteMetadataStore(sqlite_path)
        store.create_function(fn("f"))  # forces the -wal and -shm files into existence
        paths = [sqlite_path, *sqlite_path.parent.glob("meta.db-*")]
        assert {p.name for p in paths} >= {"meta.db", "meta.db-wal", "meta.db-shm"}
        for path in paths:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        store.close()
    finally:
        os.umask(old)


def test_sqlite_runs_in_wal_with_full_sync_and_a_busy_timeout(sqlite_path: Path) -> None:
    store = SqliteMetadataStore(sqlite_path)
    try:
        conn = store._conn  # the settings are per connection: look at the store's own
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    finally:
        store.close()


def test_sqlite_records_its_schema_version(sqlite_path: Path) -> None:
    SqliteMetadataStore(sqlite_path).close()
    with sqlite3.connect(sqlite_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 1
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert {"functions", "async_events", "usage", "log_events", "aliases", "reserved_concurrency"} <= tables


def test_sqlite_migrates_a_first_version_file_and_keeps_its_functions(sqlite_path: Path) -> None:
    conn = sqlite3.connect(sqlite_path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    old = fn("old")
    conn.execute(
        "INSERT INTO functions (name, version, config) VALUES (?, ?, ?)",
        ("old", LATEST, msgspec.json.encode(old).decode()),
    )
    conn.commit()
    conn.close()
    store = SqliteMetadataStore(sqlite_path)
    try:
        assert store.get_function("old", LATEST) == old
        assert store.insert_alias(Alias(function_name="old", name="live", function_version=LATEST))
        store.set_reserved_concurrency("old", 1)
    finally:
        store.close()
    with sqlite3.connect(sqlite_path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    check.close()


def test_sqlite_refuses_a_newer_schema(sqlite_path: Path) -> None:
    SqliteMetadataStore(sqlite_path).close()
    conn = sqlite3.connect(sqlite_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreUnavailable, match="newer"):
        SqliteMetadataStore(sqlite_path)


def test_sqlite_translates_driver_errors(sqlite_path: Path, tmp_path: Path) -> None:
    sqlite_path.write_bytes(b"this is not a database, just some text long enough" * 100)
    with pytest.raises(StoreUnavailable) as caught:
        SqliteMetadataStore(sqlite_path)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    with pytest.raises(StoreUnavailable):
        SqliteMetadataStore(tmp_path / "no" / "such" / "dir" / "meta.db")


def test_sqlite_reports_a_damaged_row_as_store_failure(sqlite_path: Path) -> None:
    store = SqliteMetadataStore(sqlite_path)
    try:
        conn = sqlite3.connect(sqlite_path)
        conn.execute("INSERT INTO functions (name, version, config) VALUES ('bad', '$LATEST', '{oops')")
        conn.commit()
        conn.close()
        with pytest.raises(StoreUnavailable):
            store.get_function("bad", LATEST)
    finally:
        store.close()
