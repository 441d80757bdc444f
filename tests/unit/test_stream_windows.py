"""Tumbling windows, lanes and batches of the stream poller, without a server."""

import json
import os
from pathlib import Path

import msgspec
import pytest

from squall.runtime.bootstrap import batch_events
from squall.services.streams.events import kinesis_batch, kinesis_event, record_size
from squall.services.streams.events import shape as batch_shape
from squall.services.streams.service import StoredRecord
from squall.sources.stream_poller import MAX_BATCH_BYTES, _batches, _lanes
from squall.sources.windows import MAX_STATE_BYTES, Window, state_of
from tests.unit.test_stream_events import SAMPLES, shape


def record(seq: int, key: str = "k", size: int = 10, arrival: float = 100.0) -> StoredRecord:
    return StoredRecord(seq=seq, partition_key=key, data=b"x" * size, arrival=arrival)


def test_windowed_event_matches_the_aws_sample() -> None:
    sample_path = SAMPLES / "aws-lambda-go" / "kinesis-time-window-event.json"
    if not sample_path.exists() and not os.environ.get("CI"):
        pytest.skip(f"no sample at {sample_path}")
    sample = json.loads(sample_path.read_text())
    window = Window.containing(1607497475.0, 120)
    window.state = {"1": "state 1", "2": "state 2"}
    arn = "arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream"
    event = kinesis_event([record(1)], "shardId-000000000006", arn, "us-east-1", "arn:aws:iam::1:role/r")
    event |= window.fields("shardId-000000000006", arn)
    assert shape(event) == shape(sample)
    assert event["window"] == sample["window"]  # 07:04:35 falls in the 2-minute window 07:04-07:06


def test_window_bounds_and_round_trip() -> None:
    window = Window.containing(125.5, 60)
    assert (window.start, window.end) == (120, 180)
    assert window.holds(120) and window.holds(179.9) and not window.holds(180)
    assert window.ended(180) and not window.ended(179)
    window.state = {"n": 3}
    assert Window.load(window.dump()) == window
    assert Window.load(None) is None


def test_state_is_required_and_oversized_state_is_detected() -> None:
    assert state_of({"state": {"a": 1}}) == {"a": 1}
    assert state_of({"state": None}) == {}
    assert state_of({"batchItemFailures": []}) is None
    assert state_of(None) is None
    window = Window(start=0, size=1, state={"big": "x" * MAX_STATE_BYTES})
    assert window.too_big()


def test_lanes_keep_each_partition_key_in_order() -> None:
    records = [record(i, key=f"k{i % 5}") for i in range(50)]
    lanes = _lanes(records, 3)
    assert 1 < len(lanes) <= 3
    assert sorted(r.seq for lane in lanes for r in lane) == list(range(50))
    for lane in lanes:
        assert [r.seq for r in lane] == sorted(r.seq for r in lane)
    owner = {r.partition_key: i for i, lane in enumerate(lanes) for r in lane}
    assert all(owner[r.partition_key] == i for i, lane in enumerate(lanes) for r in lane)  # one lane per key
    assert _lanes(records, 1) == [records] and _lanes([], 4) == []


ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream"
ROLE = "arn:aws:iam::123456789012:role/squall-event-source"
SHARD = "shardId-000000000006"


def test_batches_respect_count_and_six_megabytes() -> None:
    size = record_size(SHARD, ARN, "us-east-1", ROLE)
    room = MAX_BATCH_BYTES - 16
    small = [record(i) for i in range(25)]
    assert [len(b) for b in _batches(small, 10, size, room)] == [10, 10, 5]
    big = [record(i, size=1024 * 1024) for i in range(12)]
    batches = _batches(big, 100, size, room)
    assert sum(len(b) for b in batches) == 12 and len(batches) > 1
    for batch in batches:
        assert sum(len(r.data) * 4 // 3 for r in batch) <= MAX_BATCH_BYTES
    huge = [record(0, size=MAX_BATCH_BYTES)]
    assert _batches(huge, 10, size, room) == [huge]  # one record alone always forms a batch


def test_a_batch_of_small_records_is_split_by_its_whole_event_size() -> None:
    """Each record's keys and ARNs count: 10,000 records of 100 bytes make a 6.9 MB event, so two
    batches, each as close under 6 MB as the records allow."""
    size = record_size(SHARD, ARN, "us-east-1", ROLE)
    keys = ["k", 'quote"and\\slash', "ключ", "tab\there"]
    records = [record(i, key=f"{keys[i % 4]}{i}", size=100, arrival=1700000000.1 + i / 7) for i in range(10_000)]
    shape = batch_shape(SHARD, ARN, "us-east-1", ROLE)
    for one in records[:8]:
        encoded = len(msgspec.json.encode(batch_events.event(shape, kinesis_batch([one]))["Records"][0]))
        assert 0 <= size(one) - (encoded + 1) <= 3  # exact but for the arrival's digits
    batches = _batches(records, 10_000, size, MAX_BATCH_BYTES - 16)
    assert [len(b) for b in batches] == [len(batches[0]), 10_000 - len(batches[0])] and len(batches[0]) < 10_000
    for batch in batches:
        event = msgspec.json.encode(batch_events.event(shape, kinesis_batch(batch)))
        assert len(event) <= MAX_BATCH_BYTES
    assert len(msgspec.json.encode(batch_events.event(shape, kinesis_batch(batches[0])))) > MAX_BATCH_BYTES - 4000


def test_sample_path_exists_in_ci() -> None:
    if os.environ.get("CI"):
        assert Path(SAMPLES).is_dir()
