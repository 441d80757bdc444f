"""Async invocation against a live server: retries, max event age, destinations, event invoke configs.

The server runs with ``--async-retry-scale 0.01``, so Lambda's 1 and 2 minute retry delays take
0.6 and 1.2 s and a MaximumEventAgeInSeconds of 60 lasts 0.6 s. Functions count their runs by
writing a note to a Kinesis stream before they fail; destination functions write the record they get.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_zip

from .conftest import ROLE, SquallServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"

WORKER = """
import boto3, json, os, time

def handler(event, context):
    note = {"kind": "run", "request": context.aws_request_id, "event": event}
    boto3.client("kinesis").put_record(StreamName=os.environ["SINK"], Data=json.dumps(note), PartitionKey="r")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        raise ValueError("boom " + str(event.get("n")))
    return {"doubled": event.get("n", 0) * 2}
"""

DESTINATION = """
import boto3, json, os

def handler(event, context):
    note = {"kind": "record", "record": event}
    boto3.client("kinesis").put_record(StreamName=os.environ["SINK"], Data=json.dumps(note), PartitionKey="d")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    srv = SquallServer(Path(tmp_path_factory.mktemp("async")) / "data", ["--async-retry-scale", "0.01"])
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(server: SquallServer) -> Any:
    return server.client("lambda")


@pytest.fixture(scope="module")
def unchecked(server: SquallServer) -> Any:
    """A client that sends out-of-range values instead of refusing them (botocore checks ranges)."""
    return server.client("lambda", parameter_validation=False)


@pytest.fixture(scope="module")
def kinesis(server: SquallServer) -> Any:
    return server.client("kinesis")


def create(lam: Any, name: str, source: str, sink: str, **kwargs: Any) -> None:
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": source})},
        Environment={"Variables": {"SINK": sink}},
        **kwargs,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})


def setup(lam: Any, kinesis: Any, name: str, **kwargs: Any) -> str:
    """A worker ``name`` and destination ``name-dest``, both writing to stream ``name-notes``."""
    sink = f"{name}-notes"
    kinesis.create_stream(StreamName=sink, ShardCount=1)
    create(lam, name, WORKER, sink, **kwargs)
    create(lam, f"{name}-dest", DESTINATION, sink)
    return sink


def notes(kinesis: Any, sink: str, runs: int, records: int, timeout: float = 30, settle: float = 2.0) -> Any:
    """The (runs, records) noted once at least the expected numbers arrived, plus ``settle`` s for extras."""
    deadline = time.monotonic() + timeout
    settled_at: float | None = None
    while True:
        shard = kinesis.list_shards(StreamName=sink)["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName=sink, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        got = [json.loads(r["Data"]) for r in kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]]
        run_notes = [n for n in got if n["kind"] == "run"]
        record_notes = [n["record"] for n in got if n["kind"] == "record"]
        now = time.monotonic()
        if len(run_notes) >= runs and len(record_notes) >= records:
            settled_at = settled_at or now
            if now - settled_at >= settle:
                return run_notes, record_notes
        if now > deadline:
            return run_notes, record_notes
        time.sleep(0.2)


def check_record(record: dict[str, Any], request_id: str, condition: str, count: int, payload: Any) -> None:
    """Every field of the invocation record of spec section 4, with its type."""
    assert set(record) >= {"version", "timestamp", "requestContext", "requestPayload", "responseContext"}
    assert record["version"] == "1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    context = record["requestContext"]
    assert set(context) == {"requestId", "functionArn", "condition", "approximateInvokeCount"}
    assert context["requestId"] == request_id
    assert context["condition"] == condition
    assert context["approximateInvokeCount"] == count and isinstance(context["approximateInvokeCount"], int)
    assert record["requestPayload"] == payload


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response = info.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_failing_function_runs_three_times_then_on_failure(lam: Any, kinesis: Any) -> None:
    sink = setup(lam, kinesis, "fail3")
    lam.put_function_event_invoke_config(
        FunctionName="fail3",
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": ARN + "fail3-dest"}},
    )
    started = time.monotonic()
    response = lam.invoke(FunctionName="fail3", InvocationType="Event", Payload=json.dumps({"fail": True, "n": 7}))
    assert response["StatusCode"] == 202
    request_id = response["ResponseMetadata"]["RequestId"]
    runs, records = notes(kinesis, sink, 3, 1)
    assert len(runs) == 3 and len(records) == 1
    assert {r["request"] for r in runs} == {request_id}  # the same request id on every attempt
    # Lambda waits ~1 min then ~2 min; scaled by 0.01 that is at least 1.8 s in all.
    assert time.monotonic() - started >= 1.8
    record = records[0]
    check_record(record, request_id, "RetriesExhausted", 3, {"fail": True, "n": 7})
    assert record["requestContext"]["functionArn"] == ARN + "fail3:$LATEST"
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "boom 7"


def test_no_retries_runs_once_and_success_goes_to_on_success(lam: Any, kinesis: Any) -> None:
    sink = setup(lam, kinesis, "once")
    lam.publish_version(FunctionName="once")
    lam.put_function_event_invoke_config(
        FunctionName="once",
        Qualifier="1",
        MaximumRetryAttempts=0,
        DestinationConfig={
            "OnFailure": {"Destination": ARN + "once-dest"},
            "OnSuccess": {"Destination": ARN + "once-dest"},
        },
    )
    failed = lam.invoke(FunctionName="once", Qualifier="1", InvocationType="Event", Payload=b'{"fail": true, "n": 1}')
    runs, records = notes(kinesis, sink, 1, 1)
    assert len(runs) == 1 and len(records) == 1
    check_record(records[0], failed["ResponseMetadata"]["RequestId"], "RetriesExhausted", 1, {"fail": True, "n": 1})
    assert records[0]["requestContext"]["functionArn"] == ARN + "once:1"
    assert records[0]["responseContext"]["executedVersion"] == "1"

    ok = lam.invoke(FunctionName="once", Qualifier="1", InvocationType="Event", Payload=b'{"n": 21}')
    runs, records = notes(kinesis, sink, 2, 2)
    assert len(runs) == 2 and len(records) == 2
    success = records[1]
    check_record(success, ok["ResponseMetadata"]["RequestId"], "Success", 1, {"n": 21})
    assert success["responseContext"] == {"statusCode": 200, "executedVersion": "1"}
    assert success["responsePayload"] == {"doubled": 42}


def test_default_config_retries_twice_without_destination(lam: Any, kinesis: Any) -> None:
    sink = setup(lam, kinesis, "defaults")
    lam.invoke(FunctionName="defaults", InvocationType="Event", Payload=b'{"fail": true}')
    runs, records = notes(kinesis, sink, 3, 0)
    assert len(runs) == 3 and records == []


def test_timeouts_are_retried_like_errors(lam: Any, kinesis: Any) -> None:
    sink = setup(lam, kinesis, "slowpoke", Timeout=1)
    lam.put_function_event_invoke_config(
        FunctionName="slowpoke",
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": ARN + "slowpoke-dest"}},
    )
    lam.invoke(FunctionName="slowpoke", InvocationType="Event", Payload=b'{"sleep": 5}')
    runs, records = notes(kinesis, sink, 2, 1)
    assert len(runs) == 2 and len(records) == 1
    assert records[0]["requestContext"]["condition"] == "RetriesExhausted"
    assert records[0]["responseContext"]["functionError"] == "Unhandled"
    assert records[0]["responsePayload"]["errorType"] == "Sandbox.Timedout"


def test_event_older_than_max_age_goes_to_on_failure(lam: Any, kinesis: Any) -> None:
    # Max age 60 s (0.6 s scaled) and a first retry after 1 min (0.6 s scaled): when the retry is
    # due the event is already older than its max age, so it is not run again.
    sink = setup(lam, kinesis, "aged")
    lam.put_function_event_invoke_config(
        FunctionName="aged",
        MaximumEventAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": ARN + "aged-dest"}},
    )
    response = lam.invoke(FunctionName="aged", InvocationType="Event", Payload=b'{"fail": true}')
    runs, records = notes(kinesis, sink, 1, 1)
    assert len(runs) == 1 and len(records) == 1
    check_record(records[0], response["ResponseMetadata"]["RequestId"], "EventAgeExceeded", 1, {"fail": True})
    assert records[0]["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}


def test_invoke_async_follows_the_same_retry_rules(lam: Any, kinesis: Any) -> None:
    sink = setup(lam, kinesis, "legacy")
    lam.put_function_event_invoke_config(
        FunctionName="legacy",
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": ARN + "legacy-dest"}},
    )
    assert lam.invoke_async(FunctionName="legacy", InvokeArgs=b'{"fail": true, "n": 3}')["Status"] == 202
    runs, records = notes(kinesis, sink, 2, 1)
    assert len(runs) == 2 and len(records) == 1
    assert records[0]["requestContext"]["approximateInvokeCount"] == 2


def test_reserved_concurrency_zero_goes_straight_to_on_failure(lam: Any, kinesis: Any) -> None:
    sink = setup(lam, kinesis, "closed")
    lam.put_function_event_invoke_config(
        FunctionName="closed", DestinationConfig={"OnFailure": {"Destination": ARN + "closed-dest"}}
    )
    lam.put_function_concurrency(FunctionName="closed", ReservedConcurrentExecutions=0)
    response = lam.invoke(FunctionName="closed", InvocationType="Event", Payload=b'{"n": 1}')
    runs, records = notes(kinesis, sink, 0, 1)
    assert runs == [] and len(records) == 1
    check_record(records[0], response["ResponseMetadata"]["RequestId"], "RetriesExhausted", 0, {"n": 1})


def test_unsupported_destination_is_stored_and_delivery_is_logged(lam: Any, kinesis: Any, server: SquallServer) -> None:
    sink = setup(lam, kinesis, "tobus")
    bus = "arn:aws:events:us-east-1:000000000000:event-bus/default"  # no event buses in Squall yet
    config = lam.put_function_event_invoke_config(
        FunctionName="tobus", MaximumRetryAttempts=0, DestinationConfig={"OnSuccess": {"Destination": bus}}
    )
    assert config["DestinationConfig"]["OnSuccess"] == {"Destination": bus}
    response = lam.invoke(FunctionName="tobus", InvocationType="Event", Payload=b'{"n": 1}')
    runs, _ = notes(kinesis, sink, 1, 0)
    assert len(runs) == 1
    deadline = time.monotonic() + 10
    expected = f"destination {bus}: Squall cannot deliver to this kind of target yet"
    while expected not in server.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert expected in server.log_path.read_text()
    assert response["ResponseMetadata"]["RequestId"] in server.log_path.read_text()


def test_event_invoke_config_operations(lam: Any) -> None:
    create(lam, "cfg", WORKER, "unused")
    arn = ARN + "cfg"
    put = lam.put_function_event_invoke_config(
        FunctionName="cfg",
        MaximumRetryAttempts=1,
        MaximumEventAgeInSeconds=300,
        DestinationConfig={"OnFailure": {"Destination": ARN + "other"}},
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert put["FunctionArn"] == arn + ":$LATEST"
    assert put["MaximumRetryAttempts"] == 1 and put["MaximumEventAgeInSeconds"] == 300
    assert put["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {"Destination": ARN + "other"}}
    assert abs(put["LastModified"].timestamp() - time.time()) < 60  # epoch on the wire, a datetime in boto3

    # Update merges: only the members it names change.
    updated = lam.update_function_event_invoke_config(FunctionName="cfg", MaximumRetryAttempts=0)
    assert updated["MaximumRetryAttempts"] == 0 and updated["MaximumEventAgeInSeconds"] == 300
    assert updated["DestinationConfig"]["OnFailure"] == {"Destination": ARN + "other"}
    # Put replaces: members it leaves out are gone.
    replaced = lam.put_function_event_invoke_config(FunctionName="cfg", MaximumEventAgeInSeconds=60)
    assert "MaximumRetryAttempts" not in replaced and replaced["MaximumEventAgeInSeconds"] == 60
    assert replaced["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    got = lam.get_function_event_invoke_config(FunctionName="cfg")
    assert got["MaximumEventAgeInSeconds"] == 60 and got["FunctionArn"] == arn + ":$LATEST"

    # Per version and alias, qualifier in the name or as Qualifier.
    lam.publish_version(FunctionName="cfg")
    lam.create_alias(FunctionName="cfg", Name="live", FunctionVersion="1")
    assert lam.put_function_event_invoke_config(FunctionName="cfg:1")["FunctionArn"] == arn + ":1"
    on_alias = lam.put_function_event_invoke_config(FunctionName="cfg", Qualifier="live", MaximumRetryAttempts=2)
    assert on_alias["FunctionArn"] == arn + ":live"
    listed = lam.list_function_event_invoke_configs(FunctionName="cfg")["FunctionEventInvokeConfigs"]
    assert sorted(c["FunctionArn"] for c in listed) == [arn + ":$LATEST", arn + ":1", arn + ":live"]
    page = lam.list_function_event_invoke_configs(FunctionName="cfg", MaxItems=2)
    assert len(page["FunctionEventInvokeConfigs"]) == 2
    rest = lam.list_function_event_invoke_configs(FunctionName="cfg", Marker=page["NextMarker"])
    assert len(rest["FunctionEventInvokeConfigs"]) == 1 and "NextMarker" not in rest

    deleted = lam.delete_function_event_invoke_config(FunctionName="cfg", Qualifier="live")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(lam.get_function_event_invoke_config, FunctionName="cfg", Qualifier="live") == (
        "ResourceNotFoundException",
        f"The function {arn}:live doesn't have an EventInvokeConfig",
        404,
    )
    missing = f"The function {arn}:$LATEST doesn't have an EventInvokeConfig"
    lam.delete_function_event_invoke_config(FunctionName="cfg")
    for call in (lam.get_function_event_invoke_config, lam.delete_function_event_invoke_config):
        assert error_of(call, FunctionName="cfg") == ("ResourceNotFoundException", missing, 404)
    assert error_of(lam.update_function_event_invoke_config, FunctionName="cfg", MaximumRetryAttempts=1) == (
        "ResourceNotFoundException",
        missing,
        404,
    )
    # Unknown function, version, alias.
    for call in (lam.put_function_event_invoke_config, lam.get_function_event_invoke_config):
        assert error_of(call, FunctionName="nope") == (
            "ResourceNotFoundException",
            f"Function not found: {ARN}nope",
            404,
        )
        assert error_of(call, FunctionName="cfg", Qualifier="9") == (
            "ResourceNotFoundException",
            f"Function not found: {arn}:9",
            404,
        )
        assert error_of(call, FunctionName="cfg", Qualifier="gone") == (
            "ResourceNotFoundException",
            f"Function not found: {arn}:gone",
            404,
        )
    assert error_of(lam.list_function_event_invoke_configs, FunctionName="nope")[0] == "ResourceNotFoundException"
    # A function cannot be its own destination.
    code, message, status = error_of(
        lam.put_function_event_invoke_config,
        FunctionName="cfg",
        DestinationConfig={"OnSuccess": {"Destination": arn}},
    )
    assert (code, message, status) == (
        "InvalidParameterValueException",
        "You can't specify the function as a destination for itself.",
        400,
    )
    # Deleting the function removes its configs.
    lam.delete_function(FunctionName="cfg")
    create(lam, "cfg", WORKER, "unused")
    assert lam.list_function_event_invoke_configs(FunctionName="cfg")["FunctionEventInvokeConfigs"] == []
    lam.delete_function(FunctionName="cfg")


@pytest.mark.parametrize(
    ("member", "wire", "value", "error"),
    [
        ("MaximumRetryAttempts", "maximumRetryAttempts", -1, "greater than or equal to 0"),
        ("MaximumRetryAttempts", "maximumRetryAttempts", 0, None),
        ("MaximumRetryAttempts", "maximumRetryAttempts", 2, None),
        ("MaximumRetryAttempts", "maximumRetryAttempts", 3, "less than or equal to 2"),
        ("MaximumEventAgeInSeconds", "maximumEventAgeInSeconds", 59, "greater than or equal to 60"),
        ("MaximumEventAgeInSeconds", "maximumEventAgeInSeconds", 60, None),
        ("MaximumEventAgeInSeconds", "maximumEventAgeInSeconds", 21600, None),
        ("MaximumEventAgeInSeconds", "maximumEventAgeInSeconds", 21601, "less than or equal to 21600"),
    ],
)
def test_event_invoke_config_ranges(
    lam: Any, unchecked: Any, member: str, wire: str, value: int, error: str | None
) -> None:
    name = f"range-{wire[:5]}-{value}".replace("--", "-m")
    create(lam, name, WORKER, "unused")
    try:
        for operation in ("put_function_event_invoke_config", "update_function_event_invoke_config"):
            call = getattr(unchecked, operation)
            if error is None:
                assert call(FunctionName=name, **{member: value})[member] == value
                continue
            assert error_of(call, FunctionName=name, **{member: value}) == (
                "ValidationException",
                f"1 validation error detected: Value '{value}' at '{wire}' failed to satisfy constraint: "
                f"Member must have value {error}",
                400,
            )
    finally:
        lam.delete_function(FunctionName=name)
