"""The stream service in-process, on SQLite and on PostgreSQL: hash-key ranges, sequence numbers,
iterator expiry, durability, reads that never wait for writes."""

import itertools
import threading

import pytest

from squall.services.streams import service as streams
from squall.services.streams import shards
from squall.services.streams.errors import ExpiredIterator, InvalidArgument, StreamInUse, StreamNotFound
from squall.stores import sqlite_file
from tests.unit.stream_stores import StreamServices


def test_even_ranges_cover_the_key_space() -> None:
    for count in (1, 2, 3, 7):
        ranges = shards.even_ranges(count)
        assert ranges[0][0] == 0 and ranges[-1][1] == shards.HASH_KEY_SPACE - 1
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))
    assert shards.hash_key("x", "12") == 12
    assert shards.hash_key("a") == int("0cc175b9c0f1b6a831c399e269772661", 16)  # MD5("a")


def test_sequence_numbers_round_trip() -> None:
    assert streams.counter_of(streams.sequence(42)) == 42
    assert int(streams.sequence(2)) > int(streams.sequence(1))
    with pytest.raises(InvalidArgument):
        streams.counter_of("123")


def test_iterators_expire_and_cannot_be_forged(
    stream_services: StreamServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = stream_services.open(iterator_key=b"k" * 32)
    service.create_stream("s", 1, "PROVISIONED", {})
    token = service.make_iterator("s", "shardId-000000000000", 1)
    assert service.open_iterator(token) == ("s", "shardId-000000000000", 1)
    body, _, _ = token.rpartition(".")
    with pytest.raises(InvalidArgument):
        service.open_iterator(body + ".0000")
    now = streams.time.time()
    monkeypatch.setattr(streams.time, "time", lambda: now + 301)
    with pytest.raises(ExpiredIterator, match="tolerated delay of 300000 milliseconds"):
        service.open_iterator(token)


def test_services_on_one_store_take_each_others_iterators(stream_services: StreamServices) -> None:
    one, two = stream_services.open(), stream_services.open()
    one.create_stream("s", 1, "PROVISIONED", {})
    token = one.make_iterator("s", shards.shard_id(0), 7)
    assert two.open_iterator(token) == ("s", shards.shard_id(0), 7)
    with pytest.raises(InvalidArgument):
        stream_services.open(iterator_key=b"other key").open_iterator(token)


def test_puts_are_durable_across_reopen(stream_services: StreamServices) -> None:
    service = stream_services.open()
    service.create_stream("s", 2, "PROVISIONED", {})
    placed = service.put("s", [("a", b"1", None), ("b", b"2", None)])
    service.close()
    reopened = stream_services.open()
    for shard_id, counter in placed:
        records, _ = reopened.read("s", shard_id, counter, 10)
        assert records and records[0].seq == counter
    assert reopened.latest_counter("s") == 2


def test_read_says_whether_the_shard_holds_newer_records(stream_services: StreamServices) -> None:
    service = stream_services.open()
    service.create_stream("s", 1, "PROVISIONED", {})
    shard = shards.shard_id(0)
    service.put("s", [(f"k{i}", str(i).encode(), None) for i in range(5)])
    records, behind = service.read("s", shard, 1, 2)
    assert [(r.seq, r.data) for r in records] == [(1, b"0"), (2, b"1")]
    assert behind == records[-1].arrival
    records, behind = service.read("s", shard, 3, 10)
    assert [r.seq for r in records] == [3, 4, 5] and behind is None
    assert service.read("s", shard, 6, 10) == ([], None)
    with pytest.raises(StreamNotFound, match=r"^Stream gone under account 000000000000 not found\.$"):
        service.read("gone", shard, 1, 10)


def test_reads_do_not_wait_for_a_put_in_progress(stream_services: StreamServices) -> None:
    service = stream_services.open()
    service.create_stream("s", 1, "PROVISIONED", {})
    service.put("s", [("k", b"committed", None)])
    result: list[list[bytes]] = []

    def read() -> None:
        result.append([r.data for r in service.read("s", shards.shard_id(0), 0, 10)[0]])

    with service.store.write() as conn:  # a put's transaction, open and uncommitted
        conn.execute("SELECT counter FROM streams WHERE name = 's'" + service.store.for_update)
        conn.execute(
            "INSERT INTO records VALUES ('s', ?, 99, 'k', ?, ?)", (shards.shard_id(0), b"\0", streams.time.time())
        )
        reader = threading.Thread(target=read)
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive()
    assert result == [[b"committed"]]  # the uncommitted record is not visible


def test_a_stream_is_created_once_and_deleted_with_its_records(stream_services: StreamServices) -> None:
    one, two = stream_services.open(), stream_services.open()
    one.create_stream("s", 2, "PROVISIONED", {"team": "a"})
    with pytest.raises(StreamInUse, match=r"^Stream s under account 000000000000 already exists\.$"):
        two.create_stream("s", 1, "ON_DEMAND", {})
    assert two.stream("s").tags == {"team": "a"} and len(two.shards("s")) == 2
    one.put("s", [("k", b"old", None)])
    two.delete_stream("s")
    with pytest.raises(StreamNotFound):
        one.put("s", [("k", b"x", None)])
    one.create_stream("s", 1, "PROVISIONED", {})
    assert one.put("s", [("k", b"new", None)]) == [(shards.shard_id(0), 1)]
    assert [r.data for r in two.read("s", shards.shard_id(0), 0, 10)[0]] == [b"new"]


@pytest.mark.parametrize("rows_per_insert", [500, 7])
def test_a_put_of_many_records_is_written_whole_and_in_order(
    stream_services: StreamServices, monkeypatch: pytest.MonkeyPatch, rows_per_insert: int
) -> None:
    """SQLite takes a put's records in multi-row INSERTs (as many rows as its parameter limit allows;
    7 stands for an old SQLite's limit of 999 parameters, scaled down)."""
    monkeypatch.setattr(sqlite_file, "MAX_ROWS_PER_INSERT", rows_per_insert)
    service = stream_services.open()
    service.create_stream("s", 1, "PROVISIONED", {})
    entries = [(f"key-{i}", bytes([i % 256]) * (i % 5), None) for i in range(500)]
    placed = service.put("s", entries)
    placed += service.put("s", entries[:1])
    records, _ = service.read("s", shards.shard_id(0), placed[0][1], 1000)
    assert [r.seq for r in records] == [counter for _, counter in placed]
    assert [(r.partition_key, r.data) for r in records] == [(k, d) for k, d, _ in entries + entries[:1]]
