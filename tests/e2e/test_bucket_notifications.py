"""Bucket notifications: the configuration API and objects triggering functions, queues and topics
(real server, real boto3 clients; the function reports its event through a real queue)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import S3Model

from squall.services.buckets.service import BucketService
from tests.conftest import make_zip
from tests.e2e.conftest import SquallServer, error_of

pytestmark = pytest.mark.e2e

FORWARDER = """
import boto3, json, os

def handler(event, context):
    boto3.client("sqs").send_message(QueueUrl=os.environ["SINK"], MessageBody=json.dumps(event))
"""


@pytest.fixture(scope="module")
def s3(squall: SquallServer) -> Any:
    return squall.client("s3")


@pytest.fixture(scope="module")
def sqs(squall: SquallServer) -> Any:
    return squall.client("sqs")


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    name = f"notif-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield name
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def queue(sqs: Any) -> Iterator[tuple[str, str]]:
    """(url, ARN) of a fresh queue."""
    url = sqs.create_queue(QueueName=f"nq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    yield url, arn
    sqs.delete_queue(QueueUrl=url)


def receive(sqs: Any, url: str, wait: int = 20) -> dict[str, Any]:
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=wait).get("Messages", [])
    assert messages, "no message arrived"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
    body: dict[str, Any] = json.loads(messages[0]["Body"])
    return body


def assert_empty(sqs: Any, url: str) -> None:
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []


def shape(value: object) -> object:
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


SAMPLE_PUT = {
    "eventVersion": "2.1",
    "eventSource": "aws:s3",
    "awsRegion": "us-east-2",
    "eventTime": "2019-09-03T19:37:27.192Z",
    "eventName": "ObjectCreated:Put",
    "userIdentity": {"principalId": "AWS:AIDAINPONIXQXHT3IKHL2"},
    "requestParameters": {"sourceIPAddress": "205.255.255.255"},
    "responseElements": {"x-amz-request-id": "D82B88E5F771F645", "x-amz-id-2": "vlR7"},
    "s3": {
        "s3SchemaVersion": "1.0",
        "configurationId": "828aa6fc",
        "bucket": {"name": "b", "ownerIdentity": {"principalId": "A3I5XTEXAMAI3E"}, "arn": "arn:aws:s3:::b"},
        "object": {"key": "k", "size": 1305107, "eTag": "b21b", "sequencer": "0C0F6F405D6ED209E1"},
    },
}


# --- the configuration API ----------------------------------------------------------------------
def test_configuration_round_trip_and_removal(s3: Any, bucket: str, queue: tuple[str, str], sqs: Any) -> None:
    assert {
        k: v for k, v in s3.get_bucket_notification_configuration(Bucket=bucket).items() if k != "ResponseMetadata"
    } == {}
    url, arn = queue
    config = {
        "QueueConfigurations": [
            {
                "Id": "images",
                "QueueArn": arn,
                "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"],
                "Filter": {
                    "Key": {"FilterRules": [{"Name": "prefix", "Value": "img/"}, {"Name": "suffix", "Value": ".jpg"}]}
                },
            },
            {
                "QueueArn": arn,
                "Events": ["s3:ObjectCreated:Put"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "doc/"}]}},
            },
        ]
    }
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    got = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert got[0] == config["QueueConfigurations"][0]
    generated = got[1].pop("Id")
    assert generated and got[1] == config["QueueConfigurations"][1]
    # The queue got S3's test event, once.
    test = receive(sqs, url)
    assert (test["Service"], test["Event"], test["Bucket"]) == ("Amazon S3", "s3:TestEvent", bucket)
    assert set(test) == {"Service", "Event", "Time", "Bucket", "RequestId", "HostId"}
    assert_empty(sqs, url)
    # An empty configuration removes it.
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bucket)


def test_configuration_errors(s3: Any, bucket: str, queue: tuple[str, str]) -> None:
    _, arn = queue
    put = s3.put_bucket_notification_configuration

    def with_queues(*configs: dict[str, Any]) -> dict[str, Any]:
        return {"Bucket": bucket, "NotificationConfiguration": {"QueueConfigurations": list(configs)}}

    code, message, status, response = error_of(
        put,
        **with_queues(
            {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}, {"QueueArn": arn, "Events": ["s3:ObjectCreated:Put"]}
        ),
    )
    assert (code, status) == ("InvalidArgument", 400)
    assert message == "Configurations overlap. Configurations on the same bucket cannot share a common event type."
    assert (response["Error"]["ArgumentName"], response["Error"]["ArgumentValue"]) == (
        "Event",
        "s3:ObjectCreated:*, s3:ObjectCreated:Put",
    )

    # Disjoint prefixes may share an event; overlapping filters may not.
    def prefixed(prefix: str) -> dict[str, Any]:
        rules = [{"Name": "prefix", "Value": prefix}]
        return {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": {"Key": {"FilterRules": rules}}}

    put(**with_queues(prefixed("a/"), prefixed("b/")))
    code, message, _, _ = error_of(put, **with_queues(prefixed("a/"), prefixed("a/b/")))
    assert code == "InvalidArgument" and message.startswith("Configuration is ambiguously defined.")

    code, message, _, response = error_of(put, **with_queues({"QueueArn": arn, "Events": ["s3:ObjectEaten:*"]}))
    assert code == "InvalidArgument" and response["Error"]["ArgumentValue"] == "s3:ObjectEaten:*"
    bad_rule = {
        "QueueArn": arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "middle", "Value": "x"}]}},
    }
    code, _, _, response = error_of(put, **with_queues(bad_rule))
    assert code == "InvalidArgument" and response["Error"]["ArgumentValue"] == "middle"

    missing = arn + "-gone"
    code, message, _, response = error_of(put, **with_queues({"QueueArn": missing, "Events": ["s3:ObjectCreated:*"]}))
    assert (code, message) == ("InvalidArgument", "Unable to validate the following destination configurations")
    assert response["Error"]["ArgumentName"] == missing
    function = "arn:aws:lambda:us-east-1:000000000000:function:nothing-here"
    code, _, _, response = error_of(
        put,
        Bucket=bucket,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"LambdaFunctionArn": function, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    assert code == "InvalidArgument" and response["Error"]["ArgumentName"] == function
    # SkipDestinationValidation stores it anyway.
    put(**with_queues({"QueueArn": missing, "Events": ["s3:ObjectCreated:*"]}), SkipDestinationValidation=True)
    assert s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"][0]["QueueArn"] == missing
    code, _, status, _ = error_of(s3.get_bucket_notification_configuration, Bucket=f"nope-{uuid.uuid4().hex[:8]}")
    assert (code, status) == ("NoSuchBucket", 404)


# --- delivery -----------------------------------------------------------------------------------
def test_put_object_invokes_function_with_the_s3_event(
    s3: Any, sqs: Any, bucket: str, queue: tuple[str, str], make_function: Any
) -> None:
    url, _ = queue
    name = f"s3-fn-{uuid.uuid4().hex[:8]}"
    function = make_function(name, make_zip({"app.py": FORWARDER}), Environment={"Variables": {"SINK": url}})
    rules = [{"Name": "prefix", "Value": "in/"}, {"Name": "suffix", "Value": ".txt"}]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {
                    "Id": "to-fn",
                    "LambdaFunctionArn": function["FunctionArn"],
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    "Filter": {"Key": {"FilterRules": rules}},
                }
            ]
        },
    )
    assert s3.get_bucket_notification_configuration(Bucket=bucket)["LambdaFunctionConfigurations"][0]["Id"] == "to-fn"
    s3.put_object(Bucket=bucket, Key="out/skip.txt", Body=b"no")
    s3.put_object(Bucket=bucket, Key="in/skip.bin", Body=b"no")
    put = s3.put_object(Bucket=bucket, Key="in/hello world ü.txt", Body=b"hello")
    event = receive(sqs, url)
    S3Model(**event)
    (record,) = event["Records"]
    assert shape(record) == shape(SAMPLE_PUT)
    assert record["eventName"] == "ObjectCreated:Put" and record["awsRegion"] == "us-east-1"
    assert record["s3"]["configurationId"] == "to-fn"
    assert record["s3"]["bucket"]["name"] == bucket and record["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    assert record["s3"]["object"]["key"] == "in/hello+world+%C3%BC.txt"
    assert record["s3"]["object"]["size"] == 5
    assert record["s3"]["object"]["eTag"] == put["ETag"].strip('"')
    assert record["requestParameters"]["sourceIPAddress"] == "127.0.0.1"
    assert record["responseElements"]["x-amz-request-id"] == put["ResponseMetadata"]["RequestId"]
    assert len(record["eventTime"]) == len("2019-09-03T19:37:27.192Z")
    assert_empty(sqs, url)  # the filtered keys sent nothing

    s3.delete_object(Bucket=bucket, Key="in/hello world ü.txt")
    removed = receive(sqs, url)
    S3Model(**removed)
    (record,) = removed["Records"]
    assert record["eventName"] == "ObjectRemoved:Delete"
    assert record["s3"]["object"].keys() == {"key", "sequencer"}
    assert record["s3"]["object"]["sequencer"] > event["Records"][0]["s3"]["object"]["sequencer"]


def test_queue_and_topic_targets(s3: Any, sqs: Any, squall: SquallServer, bucket: str, queue: tuple[str, str]) -> None:
    sns = squall.client("sns")
    url, arn = queue
    topic = sns.create_topic(Name=f"nt-{uuid.uuid4().hex[:8]}")["TopicArn"]
    topic_queue = sqs.create_queue(QueueName=f"ntq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    topic_queue_arn = sqs.get_queue_attributes(QueueUrl=topic_queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=topic_queue_arn, Attributes={"RawMessageDelivery": "true"})
    try:
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": arn, "Events": ["s3:ObjectCreated:Put", "s3:ObjectCreated:CompleteMultipartUpload"]}
                ],
                "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectRemoved:*"]}],
            },
        )
        assert receive(sqs, url)["Event"] == "s3:TestEvent"
        assert receive(sqs, topic_queue)["Event"] == "s3:TestEvent"
        s3.put_object(Bucket=bucket, Key="a b/c", Body=b"x")
        created = receive(sqs, url)
        S3Model(**created)
        assert created["Records"][0]["eventName"] == "ObjectCreated:Put"
        assert created["Records"][0]["s3"]["object"]["key"] == "a+b/c"
        s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "a b/c"})
        assert_empty(sqs, url)  # Copy is not Put
        s3.delete_object(Bucket=bucket, Key="copy")
        removed = receive(sqs, topic_queue)
        S3Model(**removed)
        assert removed["Records"][0]["eventName"] == "ObjectRemoved:Delete"
        assert removed["Records"][0]["s3"]["object"]["key"] == "copy"
        upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
        part = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=1, Body=b"abc")
        parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
        done = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload, MultipartUpload=parts)
        assembled = receive(sqs, url)["Records"][0]
        assert assembled["eventName"] == "ObjectCreated:CompleteMultipartUpload"
        assert (assembled["s3"]["object"]["size"], assembled["s3"]["object"]["eTag"]) == (3, done["ETag"].strip('"'))
        # DeleteObjects notifies each removal.
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a b/c"}, {"Key": "big"}]})
        keys = {receive(sqs, topic_queue)["Records"][0]["s3"]["object"]["key"] for _ in range(2)}
        assert keys == {"a+b/c", "big"}
        # The legacy GetBucketNotification reads the same configuration.
        legacy = s3.get_bucket_notification(Bucket=bucket)
        assert legacy["QueueConfiguration"]["Queue"] == arn
        assert legacy["TopicConfiguration"]["Topic"] == topic
    finally:
        sns.delete_topic(TopicArn=topic)
        sqs.delete_queue(QueueUrl=topic_queue)


def test_configuration_goes_with_the_bucket(s3: Any, queue: tuple[str, str]) -> None:
    _, arn = queue
    name = f"notif-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_notification_configuration(
        Bucket=name,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    s3.delete_bucket(Bucket=name)
    s3.create_bucket(Bucket=name)
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket=name)
    s3.delete_bucket(Bucket=name)


def test_squall_buckets_cli(squall: SquallServer, s3: Any, bucket: str, queue: tuple[str, str]) -> None:
    _, arn = queue
    rules = [{"Name": "suffix", "Value": ".csv"}]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "csv",
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": rules}},
                }
            ]
        },
    )
    s3.put_object(Bucket=bucket, Key="a", Body=b"12345")
    s3.put_object(Bucket=bucket, Key="b", Body=b"67")
    command = [sys.executable, "-m", "squall", "buckets", "--data-dir", str(squall.data_dir)]
    report = json.loads(subprocess.run([*command, "--json"], capture_output=True, text=True, check=True).stdout)
    (mine,) = [entry for entry in report if entry["name"] == bucket]
    assert mine == {
        "name": bucket,
        "region": "us-east-1",
        "objects": 2,
        "bytes": 7,
        "notifications": [{"id": "csv", "target": arn, "events": ["s3:ObjectCreated:*"], "rules": {"suffix": ".csv"}}],
    }
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert f"{bucket}  us-east-1  2 object(s), 7 bytes" in text
    assert f"  -> {arn}  s3:ObjectCreated:*  suffix='.csv'" in text


@pytest.mark.slow
def test_a_notification_a_crash_left_in_the_outbox_is_sent_by_the_next_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = SquallServer(data)
    first.start()
    try:
        sqs, s3 = first.client("sqs"), first.client("s3")
        url = sqs.create_queue(QueueName="late")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.create_bucket(Bucket="crashy")
        s3.put_bucket_notification_configuration(
            Bucket="crashy",
            NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
        )
        assert receive(sqs, url)["Event"] == "s3:TestEvent"
    finally:
        first.stop()
    # The object commits, then the process dies before the notifier runs: here, no notifier at all.
    service = BucketService(data / "buckets.db", data / "objects", "us-east-1")
    service.put_object("crashy", "late.txt", b"late", {}, {})
    assert len(service.pending_notifications()) == 1
    service.close()
    second = SquallServer(data)
    second.start()
    try:
        sqs = second.client("sqs")
        event = receive(sqs, sqs.get_queue_url(QueueName="late")["QueueUrl"])
        S3Model(**event)
        assert event["Records"][0]["s3"]["object"]["key"] == "late.txt"
        assert event["Records"][0]["eventName"] == "ObjectCreated:Put"
    finally:
        second.stop()
    service = BucketService(data / "buckets.db", data / "objects", "us-east-1")
    assert service.pending_notifications() == []  # acknowledged once sent
    service.close()


@pytest.mark.slow
def test_a_thousand_objects_each_reach_the_function_as_put(
    s3: Any, sqs: Any, bucket: str, queue: tuple[str, str], make_function: Any
) -> None:
    url, _ = queue
    name = f"s3-many-{uuid.uuid4().hex[:8]}"
    function = make_function(name, make_zip({"app.py": FORWARDER}), Environment={"Variables": {"SINK": url}})
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {"LambdaFunctionArn": function["FunctionArn"], "Events": ["s3:ObjectCreated:Put"]}
            ]
        },
    )
    put: dict[str, tuple[int, str]] = {}
    for i in range(1000):
        body = f"object {i} ".encode() * (i % 7 + 1)
        etag = s3.put_object(Bucket=bucket, Key=f"many/{i:04d}.txt", Body=body)["ETag"].strip('"')
        put[f"many/{i:04d}.txt"] = (len(body), etag)
    seen: dict[str, list[tuple[int, str]]] = {}
    deadline = time.monotonic() + 120
    while sum(len(v) for v in seen.values()) < len(put) and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            for record in json.loads(message["Body"])["Records"]:
                obj = record["s3"]["object"]
                seen.setdefault(obj["key"], []).append((obj["size"], obj["eTag"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert {key: values[0] for key, values in seen.items()} == put  # every object, exactly as put
    assert all(len(values) == 1 for values in seen.values())  # and once
