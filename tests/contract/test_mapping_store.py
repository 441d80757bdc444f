"""The MappingStore contract: one suite over every backend (a SQLite file, a PostgreSQL schema)."""

from __future__ import annotations

import threading
import time

from squall.sources.mappings import EventSourceMapping
from tests.contract.mapping_stores import Opener, mapping_stores

__all__ = ["mapping_stores"]

ARN = "arn:aws:lambda:us-east-1:000000000000:function:f"


def mapping(uuid: str, **fields: object) -> EventSourceMapping:
    return EventSourceMapping(
        uuid=uuid, function_arn=ARN, event_source_arn="arn:aws:kinesis:us-east-1:000000000000:stream/s", **fields
    )


def test_mappings_are_stored_listed_replaced_and_deleted(mapping_stores: Opener) -> None:
    store = mapping_stores()
    assert store.get("m1") is None and store.all() == []
    first = mapping("m2", batch_size=7, filter_patterns=['{"data": {"a": [1]}}'])
    before = time.time()
    store.put(first)
    store.put(mapping("m1"))
    assert first.last_modified >= before
    assert store.get("m2") == first
    assert [m.uuid for m in store.all()] == ["m1", "m2"]  # by UUID
    first.batch_size, first.enabled = 9, False
    store.put(first)
    got = store.get("m2")
    assert got is not None and (got.batch_size, got.enabled) == (9, False)
    store.save_checkpoint("m2", "shard-0", 5)
    store.delete("m2")
    assert store.get("m2") is None and [m.uuid for m in store.all()] == ["m1"]
    assert store.checkpoint("m2", "shard-0") is None and store.progress("m2", "shard-0") == (None, None, None)


def test_a_checkpoint_moves_with_its_window_and_keeps_the_last_known_iterator_age(mapping_stores: Opener) -> None:
    store = mapping_stores()
    assert store.checkpoint("m", "shard-0") is None
    store.save_checkpoint("m", "shard-0", 10)
    assert store.checkpoint("m", "shard-0") == 10
    assert store.progress("m", "shard-0") == (10, None, None)
    store.save_checkpoint("m", "shard-0", 20, '{"start": 1.0}', 1500)
    assert store.progress("m", "shard-0") == (20, '{"start": 1.0}', 1500)
    store.save_checkpoint("m", "shard-0", 30)  # no age this time: the last one stays; the window closed
    assert store.progress("m", "shard-0") == (30, None, 1500)
    store.save_checkpoint("m", "shard-1", 3, None, 2**40)  # positions and ages are 64-bit
    store.save_checkpoint("m", "shard-1", 2**62)
    assert store.progress("m", "shard-1") == (2**62, None, 2**40)
    assert store.checkpoint("m", "shard-0") == 30


def test_recording_a_result_changes_only_that_member(mapping_stores: Opener) -> None:
    store = mapping_stores()
    store.record_result("gone", "OK")  # no such mapping: nothing to do
    assert store.get("gone") is None
    stored = mapping("m", batch_size=3)
    store.put(stored)
    store.record_result("m", "PROBLEM: Function call failed")
    got = store.get("m")
    assert got is not None
    assert got.last_processing_result == "PROBLEM: Function call failed"
    assert (got.batch_size, got.last_modified) == (3, stored.last_modified)


def test_what_one_store_writes_another_on_the_same_storage_reads(mapping_stores: Opener) -> None:
    # A reopened SQLite file after a restart; two servers on one PostgreSQL schema.
    writer, reader = mapping_stores(), mapping_stores()
    writer.put(mapping("shared", batch_size=4))
    writer.save_checkpoint("shared", "shard-0", 42, '{"w": 1}', 7)
    got = reader.get("shared")
    assert got is not None and got.batch_size == 4
    assert reader.progress("shared", "shard-0") == (42, '{"w": 1}', 7)
    reader.record_result("shared", "OK")
    assert [m.last_processing_result for m in writer.all()] == ["OK"]


def test_writes_from_many_threads_and_two_stores_all_land(mapping_stores: Opener) -> None:
    stores = [mapping_stores(), mapping_stores()]
    stores[0].put(mapping("busy"))
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                stores[n % 2].record_result("busy", f"result {n}-{i}")
                stores[n % 2].save_checkpoint("busy", f"shard-{n}", i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert [stores[1].checkpoint("busy", f"shard-{n}") for n in range(4)] == [19] * 4
    got = stores[1].get("busy")
    assert got is not None and got.last_processing_result.startswith("result ")
    assert got.function_arn == ARN
