"""Tumbling windows, lanes and batches of the stream poller, without a server."""

import json
import os
from pathlib import Path

import pytest

from squall.services.streams.events import kinesis_event
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


def test_batches_respect_count_and_six_megabytes() -> None:
    small = [record(i) for i in range(25)]
    assert [len(b) for b in _batches(small, 10)] == [10, 10, 5]
    big = [record(i, size=1024 * 1024) for i in range(12)]
    batches = _batches(big, 100)
    assert sum(len(b) for b in batches) == 12 and len(batches) > 1
    for batch in batches:
        assert sum(len(r.data) * 4 // 3 for r in batch) <= MAX_BATCH_BYTES
    huge = [record(0, size=MAX_BATCH_BYTES)]
    assert _batches(huge, 10) == [huge]  # one record alone always forms a batch


def test_sample_path_exists_in_ci() -> None:
    if os.environ.get("CI"):
        assert Path(SAMPLES).is_dir()
