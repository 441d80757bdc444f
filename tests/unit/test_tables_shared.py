"""Two table services on one store, as two servers on one PostgreSQL (or one data directory) have: writes
to the same item from both stay atomic (ADD counters, conditional puts, transactions), each sees the
other's tables, items, indexes and definition changes, TTL expiry deletes an item once, and a table
stream's records get unique, increasing numbers with a reader never skipping one."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from squall.services.tables.errors import ConditionalCheckFailed, TableNotFound, TransactionCanceled
from squall.services.tables.expressions import Placeholders, parse_condition, parse_update
from squall.services.tables.reads import ReadSpec
from squall.services.tables.service import TableService, WriteOp
from squall.services.tables.streams import TableStreams
from tests.threads import run_together
from tests.unit.table_stores import TableServices

THREADS_PER_SERVER = 3

TABLE = {
    "TableName": "things",
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    "BillingMode": "PAY_PER_REQUEST",
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
}


def both(table_services: TableServices) -> tuple[TableService, TableService]:
    a, b = table_services.open(), table_services.open()
    a.create_table(TABLE)
    return a, b


def run_threads(work: Callable[[TableService, int], None], servers: tuple[TableService, TableService]) -> None:
    """``work(server, thread number)`` on THREADS_PER_SERVER threads per server at once; re-raises a failure."""
    run_together(
        [
            functools.partial(work, server, i * THREADS_PER_SERVER + n)
            for i, server in enumerate(servers)
            for n in range(THREADS_PER_SERVER)
        ]
    )


def condition(text: str, values: dict[str, Any] | None = None) -> Any:
    return parse_condition(text, "ConditionExpression", Placeholders({}, values or {}))


def test_add_counters_from_two_servers_lose_no_increment(table_services: TableServices) -> None:
    servers = both(table_services)
    increments = 25
    add = parse_update("ADD n :one", Placeholders({}, {":one": {"N": "1"}}))

    def work(server: TableService, _: int) -> None:
        for _ in range(increments):
            server.write(WriteOp(table="things", kind="update", key={"pk": {"S": "counter"}}, update=add))

    run_threads(work, servers)
    total = 2 * THREADS_PER_SERVER * increments
    for server in servers:
        assert server.get_item("things", {"pk": {"S": "counter"}}) == {"pk": {"S": "counter"}, "n": {"N": str(total)}}


def test_racing_conditional_puts_have_one_winner_each(table_services: TableServices) -> None:
    servers = both(table_services)
    keys = 15
    wins: list[tuple[str, int]] = []
    lock = threading.Lock()
    new_only = condition("attribute_not_exists(pk)")

    def work(server: TableService, n: int) -> None:
        for k in range(keys):
            item = {"pk": {"S": f"k{k}"}, "by": {"N": str(n)}}
            try:
                server.write(WriteOp(table="things", kind="put", item=item, condition=new_only))
            except ConditionalCheckFailed:
                continue
            with lock:
                wins.append((f"k{k}", n))

    run_threads(work, servers)
    assert sorted(key for key, _ in wins) == sorted(f"k{k}" for k in range(keys))  # exactly one per key
    for key, winner in wins:
        assert servers[1].get_item("things", {"pk": {"S": key}}) == {"pk": {"S": key}, "by": {"N": str(winner)}}


def test_transactions_from_two_servers_move_every_unit_once(table_services: TableServices) -> None:
    servers = both(table_services)
    units = 30
    a = servers[0]
    a.write(WriteOp(table="things", kind="put", item={"pk": {"S": "from"}, "n": {"N": str(units)}}))
    a.write(WriteOp(table="things", kind="put", item={"pk": {"S": "to"}, "n": {"N": "0"}}))
    take = parse_update("SET n = n - :one", Placeholders({}, {":one": {"N": "1"}}))
    give = parse_update("SET n = n + :one", Placeholders({}, {":one": {"N": "1"}}))
    some_left = condition("n >= :one", {":one": {"N": "1"}})
    moved: list[int] = []

    def work(server: TableService, n: int) -> None:
        while True:
            try:
                server.transact(
                    [
                        WriteOp(
                            table="things", kind="update", key={"pk": {"S": "from"}}, update=take, condition=some_left
                        ),
                        WriteOp(table="things", kind="update", key={"pk": {"S": "to"}}, update=give),
                    ]
                )
            except TransactionCanceled:
                return
            moved.append(n)

    run_threads(work, servers)
    assert len(moved) == units
    assert servers[1].get_items([("things", {"pk": {"S": "from"}}), ("things", {"pk": {"S": "to"}})]) == [
        {"pk": {"S": "from"}, "n": {"N": "0"}},
        {"pk": {"S": "to"}, "n": {"N": str(units)}},
    ]


def test_each_server_sees_the_others_tables_items_and_indexes(table_services: TableServices) -> None:
    a, b = both(table_services)
    assert b.list_tables(None, 10) == (["things"], None)
    a.write(WriteOp(table="things", kind="put", item={"pk": {"S": "x"}, "kind": {"S": "red"}}))
    assert b.get_item("things", {"pk": {"S": "x"}}) == {"pk": {"S": "x"}, "kind": {"S": "red"}}
    b.table("things")  # b caches the definition without the index ...
    a.update_table(
        {
            "TableName": "things",
            "AttributeDefinitions": [{"AttributeName": "kind", "AttributeType": "S"}],
            "GlobalSecondaryIndexUpdates": [
                {
                    "Create": {
                        "IndexName": "by-kind",
                        "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    }
                }
            ],
        }
    )
    # ... and its next write, whenever the notification arrives, keeps the index a just made.
    b.write(WriteOp(table="things", kind="put", item={"pk": {"S": "y"}, "kind": {"S": "red"}}))
    by_kind = ReadSpec(table="things", index="by-kind", hash_value={"S": "red"})
    assert sorted(i["pk"]["S"] for i in a.read(by_kind).items) == ["x", "y"]
    assert b.describe_table("things")["GlobalSecondaryIndexes"][0]["ItemCount"] == 2
    assert sorted(i["pk"]["S"] for i in b.read(ReadSpec(table="things")).items) == ["x", "y"]

    a.delete_table("things")
    assert b.list_tables(None, 10) == ([], None)
    with pytest.raises(TableNotFound):
        b.write(WriteOp(table="things", kind="put", item={"pk": {"S": "z"}}))


def test_a_definition_changed_elsewhere_leaves_the_cache(table_services: TableServices) -> None:
    if table_services.backend != "postgres":
        pytest.skip("an embedded store has one server: nobody else changes its tables")
    a, b = both(table_services)
    assert b.table("things").ttl_attribute is None  # cached by b
    a.update_ttl("things", True, "ttl")
    wait_for(lambda: b.table("things").ttl_attribute == "ttl")  # b heard, dropped it and read it again
    assert b.describe_ttl("things") == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    a.delete_table("things")
    wait_for(lambda: "things" not in b._tables)
    with pytest.raises(TableNotFound):
        b.get_item("things", {"pk": {"S": "x"}})


def test_definitions_are_read_again_after_notifications_were_lost(table_services: TableServices) -> None:
    if table_services.backend != "postgres":
        pytest.skip("an embedded store has one server: nobody else changes its tables")
    import psycopg

    from tests.contract.postgres import dsn as postgres_dsn

    a, b = both(table_services)
    assert b.table("things").ttl_attribute is None  # cached by b
    time.sleep(0.5)  # both listening
    with psycopg.connect(postgres_dsn(), autocommit=True) as admin:  # only this test's listeners
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = %s", ("LISTEN squall_tables",)
        ).fetchall()
        a.update_ttl("things", True, "ttl")  # notified while b's listener is down: lost
    assert ended
    wait_for(lambda: b.table("things").ttl_attribute == "ttl")  # b read its definitions again on reconnecting


def test_ttl_expiry_on_two_servers_deletes_each_item_once(table_services: TableServices) -> None:
    servers = both(table_services)
    a, b = servers
    a.update_ttl("things", True, "ttl")
    count = 60
    a.write_many(
        [WriteOp(table="things", kind="put", item={"pk": {"S": f"i{n}"}, "ttl": {"N": "100"}}) for n in range(count)]
    )
    gone: list[int] = []

    def work(server: TableService, _: int) -> None:
        gone.append(server.expire(1000))

    run_threads(work, servers)
    assert sum(gone) == count
    records = everything(TableStreams(b), b)
    assert sorted(r["dynamodb"]["Keys"]["pk"]["S"] for r in records if r["eventName"] == "REMOVE") == sorted(
        f"i{n}" for n in range(count)
    )


def test_stream_records_from_two_servers_are_numbered_in_commit_order(table_services: TableServices) -> None:
    servers = both(table_services)
    a, b = servers
    writes = 20
    streams = TableStreams(b)
    arn = b.stream_arn(b.table("things"))
    assert arn is not None
    shard = streams.shards(arn)[0].shard_id
    first = streams.latest(arn) + 1  # before any write: the reader must see every record
    seen: list[int] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        # A poller on b reads while both servers write: it must never find a record behind its position.
        try:
            position = first
            while True:
                finished = done.is_set()  # taken before the pass, so the last pass sees every commit
                records = streams.read(arn, shard, position, 100)
                assert all(r.seq >= position for r in records)
                seen.extend(r.seq for r in records)
                if records:
                    position = records[-1].seq + 1
                if finished:
                    return
        except BaseException as exc:
            errors.append(exc)

    def work(server: TableService, n: int) -> None:
        for i in range(writes):
            server.write(WriteOp(table="things", kind="put", item={"pk": {"S": f"t{n}-{i}"}}))

    polling = threading.Thread(target=reader)
    polling.start()
    try:
        run_threads(work, servers)
    finally:
        done.set()
        polling.join(timeout=60)
    assert errors == []
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in everything(streams, a)]
    assert len(numbers) == len(set(numbers)) == 2 * THREADS_PER_SERVER * writes
    assert numbers == sorted(numbers)
    assert len(seen) == len(numbers)  # the reader saw every record, none twice


def everything(streams: TableStreams, service: TableService) -> list[dict[str, Any]]:
    arn = service.stream_arn(service.table("things"))
    assert arn is not None
    shard = streams.shards(arn)[0].shard_id
    token = streams.get_shard_iterator({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"})
    records: list[dict[str, Any]] = []
    while True:
        page = streams.get_records({"ShardIterator": token["ShardIterator"]})
        records += page["Records"]
        if not page["Records"]:
            return records
        token = {"ShardIterator": page["NextShardIterator"]}


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
