"""Bucket notifications: configuration parsing and checks, event matching and the S3 event itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import S3Model

from squall.services.buckets.errors import InvalidArgument, MalformedXML
from squall.services.buckets.notifications import (
    Caller,
    NotificationConfig,
    event_matches,
    from_json,
    parse_configuration,
    render,
    to_json,
)
from squall.services.buckets.service import BucketService, ObjectChange
from squall.sources.objects import event_key, matching, s3_record, s3_test_event

EVENTS = Path(__file__).resolve().parents[3] / "shared" / "events"


def shape(value: object) -> object:
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def doc(*configs: str) -> bytes:
    return (
        '<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        + "".join(configs)
        + "</NotificationConfiguration>"
    ).encode()


def queue(events: list[str], rules: dict[str, str] | None = None, arn: str = "arn:aws:sqs:us-east-1:0:q") -> str:
    filter_xml = ""
    if rules:
        filter_xml = (
            "<Filter><S3Key>"
            + "".join(f"<FilterRule><Name>{n}</Name><Value>{v}</Value></FilterRule>" for n, v in rules.items())
            + "</S3Key></Filter>"
        )
    events_xml = "".join(f"<Event>{event}</Event>" for event in events)
    return f"<QueueConfiguration><Queue>{arn}</Queue>{events_xml}{filter_xml}</QueueConfiguration>"


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        ("s3:ObjectCreated:*", "ObjectCreated:Put", True),
        ("s3:ObjectCreated:*", "ObjectCreated:CompleteMultipartUpload", True),
        ("s3:ObjectCreated:*", "ObjectRemoved:Delete", False),
        ("s3:ObjectCreated:Put", "ObjectCreated:Put", True),
        ("s3:ObjectCreated:Put", "ObjectCreated:Copy", False),
        ("s3:ObjectRemoved:*", "ObjectRemoved:Delete", True),
        ("s3:ObjectRemoved:DeleteMarkerCreated", "ObjectRemoved:Delete", False),
    ],
)
def test_event_patterns(pattern: str, event: str, expected: bool) -> None:
    assert event_matches(pattern, event) is expected


def test_prefix_and_suffix_filter_the_raw_key() -> None:
    config = NotificationConfig("queue", "c", "arn", ("s3:ObjectCreated:*",), (("prefix", "in/"), ("suffix", ".txt")))
    change = ObjectChange("ObjectCreated:Put", "b", "in/a b.txt", 1, '"e"', "01")
    assert matching([config], change) == [config]
    for key in ("out/a.txt", "in/a.bin", "IN/a.txt"):
        assert matching([config], ObjectChange("ObjectCreated:Put", "b", key, 1, '"e"', "01")) == []


def test_parse_render_round_trip_and_generated_ids() -> None:
    configs = parse_configuration(doc(queue(["s3:ObjectCreated:*"], {"Prefix": "a/"})))
    (config,) = configs
    assert config.rules == (("prefix", "a/"),) and len(config.id) == 48
    assert from_json(to_json(configs)) == configs
    assert parse_configuration(render(configs)) == configs
    assert parse_configuration(b"") == []


def test_the_checks() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_configuration(doc(queue(["s3:ObjectCreated:Put"]), queue(["s3:ObjectCreated:*"])))
    assert info.value.extra == {"ArgumentName": "Event", "ArgumentValue": "s3:ObjectCreated:Put, s3:ObjectCreated:*"}
    # Different event types, or disjoint filters, do not overlap.
    parse_configuration(doc(queue(["s3:ObjectCreated:*"]), queue(["s3:ObjectRemoved:*"])))
    parse_configuration(
        doc(queue(["s3:ObjectCreated:*"], {"suffix": ".a"}), queue(["s3:ObjectCreated:*"], {"suffix": ".b"}))
    )
    with pytest.raises(InvalidArgument, match="ambiguously"):
        parse_configuration(
            doc(queue(["s3:ObjectCreated:*"], {"suffix": ".a"}), queue(["s3:ObjectCreated:*"], {"suffix": "b.a"}))
        )
    with pytest.raises(InvalidArgument, match="not supported"):
        parse_configuration(doc(queue(["s3:Nope"])))
    with pytest.raises(InvalidArgument, match="prefix or suffix"):
        parse_configuration(doc(queue(["s3:ObjectCreated:*"], {"infix": "x"})))
    with pytest.raises(MalformedXML):
        parse_configuration(doc("<QueueConfiguration><Queue>arn</Queue></QueueConfiguration>"))


def test_keys_are_encoded_as_s3_does() -> None:
    assert event_key("a b/c+d ü(1).txt") == "a+b/c%2Bd+%C3%BC%281%29.txt"


def test_event_matches_the_aws_samples_and_parses() -> None:
    caller = Caller("10.0.0.1", "REQ", "AKID")
    moment = datetime(2026, 1, 2, 3, 4, 5, 678000, UTC)
    created = s3_record(
        ObjectChange("ObjectCreated:Put", "bkt", "k", 5, '"abc"', "0A"), "cfg", "eu-west-1", caller, moment
    )
    removed = s3_record(
        ObjectChange("ObjectRemoved:Delete", "bkt", "k", None, None, "0B"), "cfg", "eu-west-1", caller, moment
    )
    samples = EVENTS / "powertools-lambda-python"
    put_sample = json.loads((samples / "s3Event.json").read_text())["Records"][0]
    delete_sample = json.loads((samples / "s3EventDeleteObject.json").read_text())["Records"][0]
    assert shape(created) == shape(put_sample)
    assert shape(removed) == shape(delete_sample)
    go_sample: dict[str, Any] = json.loads((EVENTS / "aws-lambda-go" / "s3-event.json").read_text())["Records"][0]
    assert set(created) == set(go_sample)
    assert created["eventTime"] == "2026-01-02T03:04:05.678Z" and created["s3"]["object"]["eTag"] == "abc"
    assert created["requestParameters"] == {"sourceIPAddress": "10.0.0.1"}
    assert created["responseElements"]["x-amz-request-id"] == "REQ"
    S3Model(Records=[created, removed])
    assert set(s3_test_event("bkt", "REQ")) == {"Service", "Event", "Time", "Bucket", "RequestId", "HostId"}


def test_configuration_is_stored_with_the_bucket(tmp_path: Path) -> None:
    service = BucketService(tmp_path / "buckets.db", tmp_path / "objects", "us-east-1")
    service.create_bucket("bkt")
    service.put_notifications("bkt", '[{"x": 1}]')
    service.close()
    service = BucketService(tmp_path / "buckets.db", tmp_path / "objects", "us-east-1")
    assert service.notifications("bkt") == '[{"x": 1}]'
    service.delete_bucket("bkt")
    service.create_bucket("bkt")
    assert service.notifications("bkt") == "[]"
    service.close()


def test_a_wanted_change_is_kept_in_the_outbox_until_acknowledged(tmp_path: Path) -> None:
    service = BucketService(tmp_path / "buckets.db", tmp_path / "objects", "us-east-1")
    heard: list[ObjectChange] = []
    service.add_listener(heard.append)
    service.create_bucket("bkt")
    wanted = NotificationConfig(
        "queue", "c", "arn:aws:sqs:us-east-1:0:q", ("s3:ObjectCreated:*",), (("prefix", "in/"),)
    )
    service.put_notifications("bkt", to_json([wanted]))
    service.put_object("bkt", "out/x", b"1", {}, {})
    service.put_object("bkt", "in/x", b"22", {}, {})
    service.delete_object("bkt", "in/x")  # ObjectRemoved is not wanted
    assert [change.outbox_id is not None for change in heard] == [False, True, False]
    service.close()
    # After a "crash" (nobody acknowledged), the row is still there, with what the event needs.
    service = BucketService(tmp_path / "buckets.db", tmp_path / "objects", "us-east-1")
    (pending,) = service.pending_notifications()
    assert pending == heard[1]
    service.ack_notification(pending.outbox_id or 0)
    assert service.pending_notifications() == []
    service.close()
