"""Squall's Kinesis events against AWS's own samples and an independent validator."""

import json
import os
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import KinesisDataStreamModel

from squall.services.streams.events import kinesis_event
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
