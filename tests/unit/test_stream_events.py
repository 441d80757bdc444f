"""Squall's Kinesis events against AWS's own samples and an independent validator."""

import json
import os
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import KinesisDataStreamModel
from hypothesis import given
from hypothesis import strategies as st

from squall.runtime.bootstrap import batch_events
from squall.services.streams.events import kinesis_batch, kinesis_event
from squall.services.streams.events import shape as batch_shape
from squall.services.streams.service import StoredRecord

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "events"  # shared/ lies beside the checkout


def setup_module() -> None:
    # The samples come with the project's shared folder; without it (a bare clone) only CI must have them.
    if not SAMPLES.is_dir() and not os.environ.get("CI"):
        pytest.skip(f"AWS's sample events are not at {SAMPLES}")


def shape(value: object) -> object:
    """Keys and value types, recursively: what must match between two events."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def test_kinesis_event_matches_aws_samples_and_parses() -> None:
    records = [
        StoredRecord(seq=1, partition_key="s1", data=b"Hello World", arrival=1480641523.477),
        StoredRecord(seq=2, partition_key="s2", data=b"\x00\xff", arrival=1480641524.0),
    ]
    event = kinesis_event(
        records,
        "shardId-000000000000",
        "arn:aws:kinesis:us-east-1:000000000000:stream/s",
        "us-east-1",
        "arn:aws:iam::000000000000:role/r",
    )
    sample = json.loads((SAMPLES / "aws-lambda-go" / "kinesis-event.json").read_text())
    assert shape(event["Records"][0]) == shape(sample["Records"][0])
    parsed = KinesisDataStreamModel.model_validate(event)
    assert parsed.Records[0].kinesis.data == b"Hello World"
    assert parsed.Records[1].kinesis.data == b"\x00\xff"
    first = event["Records"][0]
    assert first["eventID"] == f"shardId-000000000000:{first['kinesis']['sequenceNumber']}"
    for sample_file in ("powertools-lambda-python/kinesisStreamEvent.json",):
        other = json.loads((SAMPLES / sample_file).read_text())
        assert set(other["Records"][0]) == set(first)


ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/s"
ROLE = "arn:aws:iam::000000000000:role/r"

stored_records = st.builds(
    StoredRecord,
    seq=st.integers(min_value=0, max_value=2**63 - 1),
    partition_key=st.text(min_size=1, max_size=256),
    data=st.binary(max_size=300),
    arrival=st.floats(min_value=0, max_value=4e9, allow_nan=False),
)


@given(st.lists(stored_records, min_size=1, max_size=20))
def test_the_sandbox_builds_from_rows_the_event_the_server_would(records: list[StoredRecord]) -> None:
    """What the delivery engine sends (rows + shape) becomes, in the sandbox, the very event the
    server builds itself: data base64, sequence numbers, keys and rounded arrival times."""
    shape = batch_shape("shardId-000000000003", ARN, "eu-west-1", ROLE)
    body = kinesis_batch(records)
    expected = kinesis_event(records, "shardId-000000000003", ARN, "eu-west-1", ROLE)
    assert batch_events.event(shape, body) == expected
    assert json.loads(batch_events.event_json(shape, body)) == expected  # over the Runtime API


def test_a_window_s_fields_ride_along_with_the_rows() -> None:
    records = [StoredRecord(seq=1, partition_key="k", data=b"x", arrival=1.0)]
    shape = batch_shape("shardId-000000000000", ARN, "us-east-1", ROLE)
    extra = {"window": {"start": "a", "end": "b"}, "state": {}, "shardId": "shardId-000000000000"}
    event = batch_events.event(shape, kinesis_batch(records, extra))
    assert list(event) == ["Records", "window", "state", "shardId"]
    assert event == kinesis_event(records, "shardId-000000000000", ARN, "us-east-1", ROLE) | extra


@pytest.mark.parametrize(
    ("shape", "body"),
    [
        ({"kind": "sqs"}, b'{"Records": []}'),
        (batch_shape("shardId-000000000000", ARN, "us-east-1", ROLE), b"not json"),
        (batch_shape("shardId-000000000000", ARN, "us-east-1", ROLE), b'{"Records": [[1, "k"]]}'),
        (batch_shape("shardId-000000000000", ARN, "us-east-1", ROLE), b"{}"),
    ],
)
def test_rows_that_are_not_a_batch_are_a_value_error(shape: dict[str, object], body: bytes) -> None:
    with pytest.raises(ValueError):
        batch_events.event(shape, body)
