"""Topics (SNS API) end to end: boto3 and the AWS CLI against a live server, with real subscribers
(an HTTP receiver in the test, a function, a queue)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import SnsModel

from tests.conftest import make_zip
from tests.http_receiver import Receiver

from .conftest import SquallServer, error_of
from .test_aws_cli import aws_json

pytestmark = pytest.mark.e2e

ACCOUNT = "000000000000"
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "events"
#: Retries a test can watch: 3 without delay, then 2 a second apart.
FAST_RETRIES = json.dumps(
    {"healthyRetryPolicy": {"numRetries": 5, "numNoDelayRetries": 3, "minDelayTarget": 1, "maxDelayTarget": 1}}
)
SINK = """
import json, os, urllib.request

def handler(event, context):
    request = urllib.request.Request(os.environ["SINK_URL"], data=json.dumps(event).encode(), method="POST")
    urllib.request.urlopen(request, timeout=10).read()
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def sns(squall: SquallServer) -> Any:
    return squall.client("sns")


@pytest.fixture
def topic(sns: Any) -> Iterator[str]:
    arn: str = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:12]}")["TopicArn"]
    yield arn
    sns.delete_topic(TopicArn=arn)


def confirmed_http(sns: Any, topic: str, receiver: Receiver, **attributes: str) -> str:
    """Subscribe ``receiver``, answer its SubscriptionConfirmation, return the subscription ARN."""
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url + "/hook", Attributes=attributes)
    confirmation = receiver.next()
    assert confirmation.headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    arn: str = sns.confirm_subscription(TopicArn=topic, Token=confirmation.json()["Token"])["SubscriptionArn"]
    return arn


def shape(value: object) -> object:
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


# --- topics ---------------------------------------------------------------------------------------
def test_topic_lifecycle_attributes_and_tags(sns: Any) -> None:
    name = f"life-{uuid.uuid4().hex[:8]}"
    arn = sns.create_topic(Name=name, Attributes={"DisplayName": "Alarms"}, Tags=[{"Key": "team", "Value": "ops"}])[
        "TopicArn"
    ]
    assert arn == f"arn:aws:sns:us-east-1:{ACCOUNT}:{name}"
    assert sns.create_topic(Name=name, Attributes={"DisplayName": "Alarms"})["TopicArn"] == arn  # idempotent
    code, message, status, _ = error_of(sns.create_topic, Name=name, Attributes={"DisplayName": "Other"})
    assert (code, status) == ("InvalidParameter", 400)
    assert message == "Invalid parameter: Attributes Reason: Topic already exists with different attributes"

    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["TopicArn"] == arn and attributes["Owner"] == ACCOUNT
    assert attributes["DisplayName"] == "Alarms"
    assert (attributes["SubscriptionsConfirmed"], attributes["SubscriptionsPending"]) == ("0", "0")
    assert attributes["SubscriptionsDeleted"] == "0"
    policy = json.loads(attributes["Policy"])
    assert policy["Statement"][0]["Resource"] == arn
    assert "SNS:Publish" in policy["Statement"][0]["Action"]
    effective = json.loads(attributes["EffectiveDeliveryPolicy"])
    assert effective["http"]["defaultHealthyRetryPolicy"]["numRetries"] == 3

    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Pager")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "Pager"
    code, message, _, _ = error_of(sns.set_topic_attributes, TopicArn=arn, AttributeName="Nope", AttributeValue="x")
    assert (code, message) == ("InvalidParameter", "Invalid parameter: AttributeName")

    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "sre"}])
    sns.untag_resource(ResourceArn=arn, TagKeys=["env"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "sre"}]

    assert arn in [t["TopicArn"] for t in sns.get_paginator("list_topics").paginate().build_full_result()["Topics"]]
    sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=arn)  # deleting a deleted topic succeeds
    code, message, status, response = error_of(sns.get_topic_attributes, TopicArn=arn)
    assert (code, message, status) == ("NotFound", "Topic does not exist", 404)
    assert response["Error"]["Type"] == "Sender"
    code, message, status, _ = error_of(sns.list_tags_for_resource, ResourceArn=arn)
    assert (code, message, status) == ("ResourceNotFound", "Resource does not exist", 404)


def test_topic_name_rules_and_fifo_topics(sns: Any) -> None:
    for name, attributes in (("bad name", {}), ("x.fifo", {}), ("plain", {"FifoTopic": "true"})):
        code, _, status, _ = error_of(sns.create_topic, Name=name, Attributes=attributes)
        assert (code, status) == ("InvalidParameter", 400)
    name = f"jobs-{uuid.uuid4().hex[:8]}.fifo"
    arn = sns.create_topic(Name=name, Attributes={"FifoTopic": "true"})["TopicArn"]
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert (attributes["FifoTopic"], attributes["ContentBasedDeduplication"]) == ("true", "false")
    code, message, _, _ = error_of(sns.publish, TopicArn=arn, Message="m")
    assert (code, message) == (
        "InvalidParameter",
        "Invalid parameter: The MessageGroupId parameter is required for FIFO topics",
    )
    code, message, _, _ = error_of(sns.publish, TopicArn=arn, Message="m", MessageGroupId="g")
    assert code == "InvalidParameter" and "ContentBasedDeduplication" in message
    first = sns.publish(TopicArn=arn, Message="m", MessageGroupId="g", MessageDeduplicationId="d1")
    again = sns.publish(TopicArn=arn, Message="m", MessageGroupId="g", MessageDeduplicationId="d1")
    later = sns.publish(TopicArn=arn, Message="m", MessageGroupId="g", MessageDeduplicationId="d2")
    assert first["MessageId"] == again["MessageId"] and first["SequenceNumber"] == again["SequenceNumber"]
    assert int(later["SequenceNumber"]) > int(first["SequenceNumber"])
    sns.set_topic_attributes(TopicArn=arn, AttributeName="ContentBasedDeduplication", AttributeValue="true")
    assert "SequenceNumber" in sns.publish(TopicArn=arn, Message="m2", MessageGroupId="g")
    sns.delete_topic(TopicArn=arn)


def test_list_topics_pages(sns: Any) -> None:
    prefix = f"page-{uuid.uuid4().hex[:6]}"
    arns = {sns.create_topic(Name=f"{prefix}-{i:03d}")["TopicArn"] for i in range(105)}
    first = sns.list_topics()
    assert len(first["Topics"]) == 100 and "NextToken" in first
    listed = [t["TopicArn"] for t in sns.get_paginator("list_topics").paginate().build_full_result()["Topics"]]
    assert arns <= set(listed) and len(listed) == len(set(listed))
    for arn in arns:
        sns.delete_topic(TopicArn=arn)


# --- subscriptions --------------------------------------------------------------------------------
def test_subscriptions_and_their_errors(sns: Any, topic: str) -> None:
    fn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:somewhere"
    queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:somewhere"
    sub = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=fn)["SubscriptionArn"]
    assert sub.startswith(topic + ":")
    assert sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=fn)["SubscriptionArn"] == sub
    raw = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})[
        "SubscriptionArn"
    ]
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted((s["Protocol"], s["Endpoint"], s["SubscriptionArn"]) for s in listed) == sorted(
        [("lambda", fn, sub), ("sqs", queue_arn, raw)]
    )
    assert all(s["Owner"] == ACCOUNT and s["TopicArn"] == topic for s in listed)
    everything = sns.get_paginator("list_subscriptions").paginate().build_full_result()["Subscriptions"]
    assert {sub, raw} <= {s["SubscriptionArn"] for s in everything}

    attributes = sns.get_subscription_attributes(SubscriptionArn=raw)["Attributes"]
    assert attributes["RawMessageDelivery"] == "true" and attributes["PendingConfirmation"] == "false"
    assert (attributes["Protocol"], attributes["Endpoint"], attributes["TopicArn"]) == ("sqs", queue_arn, topic)
    policy = json.dumps({"kind": ["alarm"]})
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy", AttributeValue=policy)
    attributes = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert attributes["FilterPolicy"] == policy and attributes["FilterPolicyScope"] == "MessageAttributes"
    code, message, _, _ = error_of(
        sns.set_subscription_attributes, SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true"
    )
    assert (code, message) == (
        "InvalidParameter",
        "Invalid parameter: Attributes Reason: Delivery protocol [lambda] does not support raw message delivery.",
    )
    code, _, _, _ = error_of(
        sns.set_subscription_attributes, SubscriptionArn=sub, AttributeName="FilterPolicy", AttributeValue="{"
    )
    assert code == "InvalidParameter"
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsConfirmed"] == "2"

    sns.unsubscribe(SubscriptionArn=sub)
    sns.unsubscribe(SubscriptionArn=sub)  # again: no error, as on AWS
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsDeleted"] == "1"
    code, message, status, _ = error_of(sns.get_subscription_attributes, SubscriptionArn=sub)
    assert (code, message, status) == ("NotFound", "Subscription does not exist", 404)

    for protocol, endpoint, expected in (
        ("ftp", "ftp://x", "Invalid parameter: Amazon SNS does not support this protocol string: ftp"),
        ("sqs", "not-an-arn", "Invalid parameter: SQS endpoint ARN"),
        ("lambda", "arn:aws:sqs:us-east-1:0:q", "Invalid parameter: Lambda endpoint ARN"),
        ("http", "https://example.com", "Invalid parameter: Endpoint must match the specified protocol"),
    ):
        code, message, status, _ = error_of(sns.subscribe, TopicArn=topic, Protocol=protocol, Endpoint=endpoint)
        assert (code, message, status) == ("InvalidParameter", expected, 400)
    missing = topic + "-missing"
    code, message, _, _ = error_of(sns.subscribe, TopicArn=missing, Protocol="lambda", Endpoint=fn)
    assert (code, message) == ("NotFound", "Topic does not exist")
    code, _, _, _ = error_of(sns.list_subscriptions_by_topic, TopicArn=missing)
    assert code == "NotFound"


def test_http_subscription_handshake_then_notifications(sns: Any, topic: str, receiver: Receiver) -> None:
    assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url + "/hook")["SubscriptionArn"] == (
        "pending confirmation"
    )
    confirmation = receiver.next()
    assert confirmation.path == "/hook"
    assert confirmation.headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    assert confirmation.headers["x-amz-sns-topic-arn"] == topic
    document = confirmation.json()
    assert document["Type"] == "SubscriptionConfirmation" and document["TopicArn"] == topic
    assert confirmation.headers["x-amz-sns-message-id"] == document["MessageId"]
    assert "Action=ConfirmSubscription" in document["SubscribeURL"]
    (pending,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert pending["SubscriptionArn"] == "PendingConfirmation"
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsPending"] == "1"
    pending_arn = sns.subscribe(
        TopicArn=topic, Protocol="http", Endpoint=receiver.url + "/hook", ReturnSubscriptionArn=True
    )["SubscriptionArn"]
    assert pending_arn.startswith(topic + ":")
    assert sns.get_subscription_attributes(SubscriptionArn=pending_arn)["Attributes"]["PendingConfirmation"] == "true"
    token = receiver.next().json()["Token"]  # the second Subscribe sent a fresh confirmation
    sns.publish(TopicArn=topic, Message="not yet")  # nothing goes to a pending subscription

    code, message, _, _ = error_of(sns.confirm_subscription, TopicArn=topic, Token="0" * 64)
    assert (code, message) == ("InvalidParameter", "Invalid token")
    arn = sns.confirm_subscription(TopicArn=topic, Token=token)["SubscriptionArn"]
    assert arn == pending_arn

    published = sns.publish(
        TopicArn=topic,
        Message="disk full",
        Subject="Alarm",
        MessageAttributes={
            "severity": {"DataType": "String", "StringValue": "high"},
            "count": {"DataType": "Number", "StringValue": "3"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
    )
    got = receiver.next()
    assert got.headers["x-amz-sns-message-type"] == "Notification"
    assert got.headers["x-amz-sns-message-id"] == published["MessageId"]
    assert got.headers["x-amz-sns-topic-arn"] == topic
    assert got.headers["x-amz-sns-subscription-arn"] == arn
    note = got.json()
    assert (note["Type"], note["Message"], note["Subject"], note["TopicArn"]) == (
        "Notification",
        "disk full",
        "Alarm",
        topic,
    )
    assert note["MessageId"] == published["MessageId"]
    assert note["MessageAttributes"] == {
        "severity": {"Type": "String", "Value": "high"},
        "count": {"Type": "Number", "Value": "3"},
        "blob": {"Type": "Binary", "Value": "AP8="},
    }
    assert arn in note["UnsubscribeURL"] and note["SignatureVersion"] == "1"

    sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="RawMessageDelivery", AttributeValue="true")
    sns.publish(TopicArn=topic, Message="raw body")
    raw = receiver.next()
    assert raw.body == b"raw body" and raw.headers["x-amz-sns-rawdelivery"] == "true"
    assert receiver.requests.empty()


def test_http_endpoint_under_localhost_reaches_the_loopback(sns: Any, topic: str, receiver: Receiver) -> None:
    """``*.localhost`` names go to 127.0.0.1, as curl resolves them (function URLs use such names)."""
    port = receiver.url.rsplit(":", 1)[1]
    host = f"hooks-{uuid.uuid4().hex[:8]}.lambda-url.us-east-1.localhost:{port}"
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=f"http://{host}/hook")
    confirmation = receiver.next()
    assert confirmation.path == "/hook" and confirmation.headers["host"] == host
    assert confirmation.headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    sns.confirm_subscription(TopicArn=topic, Token=confirmation.json()["Token"])
    sns.publish(TopicArn=topic, Message="to a localhost name")
    note = receiver.next()
    assert note.headers["host"] == host and note.json()["Message"] == "to a localhost name"


def test_failing_http_endpoint_is_retried(sns: Any, topic: str, receiver: Receiver) -> None:
    arn = confirmed_http(sns, topic, receiver, DeliveryPolicy=FAST_RETRIES)
    assert (
        json.loads(sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]["EffectiveDeliveryPolicy"])[
            "healthyRetryPolicy"
        ]["numNoDelayRetries"]
        == 3
    )
    receiver.fail = 3
    message_id = sns.publish(TopicArn=topic, Message="eventually")["MessageId"]
    attempts = [receiver.next() for _ in range(4)]
    assert [a.headers["x-amz-sns-message-id"] for a in attempts] == [message_id] * 4
    assert all(a.json()["Message"] == "eventually" for a in attempts)
    time.sleep(0.5)
    assert receiver.requests.empty()  # the fourth attempt succeeded: no more


def test_a_4xx_answer_is_not_retried(sns: Any, topic: str, receiver: Receiver) -> None:
    confirmed_http(sns, topic, receiver, DeliveryPolicy=FAST_RETRIES)
    receiver.fail, receiver.fail_status = 1, 404
    sns.publish(TopicArn=topic, Message="refused")
    assert receiver.next().json()["Message"] == "refused"
    sns.publish(TopicArn=topic, Message="next")
    assert receiver.next().json()["Message"] == "next"  # not a retry of "refused"
    time.sleep(0.5)
    assert receiver.requests.empty()


def test_filter_policy_drops_what_it_should(sns: Any, topic: str, receiver: Receiver) -> None:
    policy = {"severity": ["high", "critical"], "count": [{"numeric": [">=", 10]}]}
    confirmed_http(sns, topic, receiver, FilterPolicy=json.dumps(policy))

    def publish(message: str, severity: str, count: str) -> None:
        attributes = {
            "severity": {"DataType": "String", "StringValue": severity},
            "count": {"DataType": "Number", "StringValue": count},
        }
        sns.publish(TopicArn=topic, Message=message, MessageAttributes=attributes)

    publish("low severity", "low", "50")
    publish("too few", "high", "2")
    sns.publish(TopicArn=topic, Message="no attributes")
    publish("wanted", "critical", "10")
    assert receiver.next().json()["Message"] == "wanted"
    time.sleep(0.5)
    assert receiver.requests.empty()


def test_message_body_filter_policy(sns: Any, topic: str, receiver: Receiver) -> None:
    policy = {"order": {"kind": [{"prefix": "exp"}]}}
    confirmed_http(sns, topic, receiver, FilterPolicy=json.dumps(policy), FilterPolicyScope="MessageBody")
    sns.publish(TopicArn=topic, Message=json.dumps({"order": {"kind": "standard"}}))
    sns.publish(TopicArn=topic, Message="not json")
    sns.publish(TopicArn=topic, Message=json.dumps({"order": {"kind": "express"}}))
    assert json.loads(receiver.next().json()["Message"]) == {"order": {"kind": "express"}}
    time.sleep(0.5)
    assert receiver.requests.empty()


def test_lambda_subscriber_gets_the_sns_event(sns: Any, topic: str, receiver: Receiver, make_function: Any) -> None:
    name = f"sns-sink-{uuid.uuid4().hex[:8]}"
    function = make_function(
        name, make_zip({"app.py": SINK}), Environment={"Variables": {"SINK_URL": receiver.url + "/event"}}
    )
    sub = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function["FunctionArn"])["SubscriptionArn"]
    published = sns.publish(
        TopicArn=topic,
        Message="Hello from SNS!",
        Subject="TestInvoke",
        MessageAttributes={
            "Test": {"DataType": "String", "StringValue": "TestString"},
            "TestBinary": {"DataType": "Binary", "BinaryValue": b"TestBinary"},
        },
    )
    event = receiver.next(timeout=60).json()
    record = event["Records"][0]
    assert record["EventSubscriptionArn"] == sub and record["EventSource"] == "aws:sns"
    assert record["Sns"]["MessageId"] == published["MessageId"]
    assert record["Sns"]["Message"] == "Hello from SNS!" and record["Sns"]["Subject"] == "TestInvoke"
    assert record["Sns"]["MessageAttributes"]["Test"] == {"Type": "String", "Value": "TestString"}
    sample = json.loads((SAMPLES / "aws-lambda-go" / "sns-event.json").read_text())
    assert shape(event) == shape(sample)
    SnsModel.model_validate(event)


def test_queue_subscriber_gets_envelope_or_raw_message(squall: SquallServer, sns: Any, topic: str) -> None:
    sqs = squall.client("sqs")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    published = sns.publish(TopicArn=topic, Message="to the queue", Subject="s")
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)["Messages"]
    envelope = json.loads(messages[0]["Body"])
    assert (envelope["Type"], envelope["Message"], envelope["MessageId"]) == (
        "Notification",
        "to the queue",
        published["MessageId"],
    )
    sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true")
    sns.publish(TopicArn=topic, Message="raw", MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    raw = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10, MessageAttributeNames=["All"])["Messages"][0]
    assert raw["Body"] == "raw"
    assert raw["MessageAttributes"] == {"k": {"DataType": "String", "StringValue": "v"}}
    sqs.delete_queue(QueueUrl=url)


# --- publishing -----------------------------------------------------------------------------------
def test_publish_errors(sns: Any, topic: str) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"Message": ""}, "InvalidParameter", "Invalid parameter: Empty message"),
        ({"Message": "x" * (256 * 1024 + 1)}, "InvalidParameter", "Invalid parameter: Message too long"),
        (
            {"Message": "{}", "MessageStructure": "json"},
            "InvalidParameter",
            "Invalid parameter: Message Structure - No default entry in JSON message body",
        ),
        (
            {"Message": "nope", "MessageStructure": "json"},
            "InvalidParameter",
            "Invalid parameter: Message Structure - JSON message body failed to parse",
        ),
        (
            {"Message": "m", "MessageAttributes": {"a": {"DataType": "Number", "StringValue": "abc"}}},
            "ParameterValueInvalid",
            "Could not cast message attribute 'a' value to number.",
        ),
        (
            {"Message": "m", "MessageAttributes": {"a": {"DataType": "Date", "StringValue": "x"}}},
            "ParameterValueInvalid",
            "The message attribute 'a' has an invalid message attribute type, the set of supported type prefixes "
            "is Binary, Number, and String.",
        ),
        (
            {"Message": "m", "MessageDeduplicationId": "d"},
            "InvalidParameter",
            "Invalid parameter: MessageDeduplicationId "
            "Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type",
        ),
    ]
    for params, code, message in cases:
        assert error_of(sns.publish, TopicArn=topic, **params)[:3] == (code, message, 400), params
    assert sns.publish(TopicArn=topic, Message="x" * (256 * 1024))["MessageId"]
    assert sns.publish(TargetArn=topic, Message="by target")["MessageId"]
    code, message, status, _ = error_of(sns.publish, TopicArn=topic + "-missing", Message="m")
    assert (code, message, status) == ("NotFound", "Topic does not exist", 404)


def test_publish_batch(sns: Any, topic: str, receiver: Receiver) -> None:
    confirmed_http(sns, topic, receiver)
    result = sns.publish_batch(
        TopicArn=topic,
        PublishBatchRequestEntries=[
            {"Id": "a", "Message": "first", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "1"}}},
            {"Id": "b", "Message": ""},
            {"Id": "c", "Message": "third", "Subject": "s"},
        ],
    )
    assert [s["Id"] for s in result["Successful"]] == ["a", "c"]
    assert result["Failed"] == [
        {"Id": "b", "Code": "InvalidParameter", "Message": "Invalid parameter: Empty message", "SenderFault": True}
    ]
    got = {r.json()["Message"]: r.json() for r in (receiver.next(), receiver.next())}
    assert got["first"]["MessageAttributes"] == {"n": {"Type": "Number", "Value": "1"}}
    assert got["third"]["Subject"] == "s"
    assert got["first"]["MessageId"] == result["Successful"][0]["MessageId"]

    entries = [{"Id": str(i), "Message": "m"} for i in range(11)]
    assert error_of(sns.publish_batch, TopicArn=topic, PublishBatchRequestEntries=entries)[0] == (
        "TooManyEntriesInBatchRequest"
    )
    same = [{"Id": "x", "Message": "m"}, {"Id": "x", "Message": "n"}]
    assert error_of(sns.publish_batch, TopicArn=topic, PublishBatchRequestEntries=same)[0] == "BatchEntryIdsNotDistinct"
    assert error_of(sns.publish_batch, TopicArn=topic, PublishBatchRequestEntries=[])[0] == "EmptyBatchRequest"
    bad_id = [{"Id": "no spaces", "Message": "m"}]
    assert error_of(sns.publish_batch, TopicArn=topic, PublishBatchRequestEntries=bad_id)[0] == "InvalidBatchEntryId"
    big = [{"Id": str(i), "Message": "x" * 100_000} for i in range(3)]
    assert error_of(sns.publish_batch, TopicArn=topic, PublishBatchRequestEntries=big)[0] == "BatchRequestTooLong"


def test_message_structure_json_sends_each_protocol_its_message(sns: Any, topic: str, receiver: Receiver) -> None:
    confirmed_http(sns, topic, receiver)
    body = json.dumps({"default": "for everyone", "http": "for hooks", "sqs": "for queues"})
    sns.publish(TopicArn=topic, Message=body, MessageStructure="json")
    assert receiver.next().json()["Message"] == "for hooks"


def test_aws_cli_publish(squall: SquallServer, sns: Any, topic: str, receiver: Receiver) -> None:
    confirmed_http(sns, topic, receiver)
    out = aws_json(squall, "sns", "publish", "--topic-arn", topic, "--message", "from the cli", "--subject", "cli")
    got = receiver.next().json()
    assert (got["MessageId"], got["Message"], got["Subject"]) == (out["MessageId"], "from the cli", "cli")
    listed = aws_json(squall, "sns", "list-subscriptions-by-topic", "--topic-arn", topic)
    assert listed["Subscriptions"][0]["Protocol"] == "http"


@pytest.mark.slow
def test_pending_deliveries_survive_a_restart(new_server: Any) -> None:
    """A delivery to an endpoint that is down stays pending across a restart and arrives once it is up."""
    server = new_server()
    sns = server.client("sns")
    arn = sns.create_topic(Name="durable")["TopicArn"]
    receiver = Receiver()
    try:
        confirmed_http(sns, arn, receiver)
        # Every retry fails while the server is up (the endpoint answers 500), so the message stays pending.
        receiver.fail = 1_000
        policy = json.dumps({"healthyRetryPolicy": {"numRetries": 100, "minDelayTarget": 1, "maxDelayTarget": 1}})
        sub = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"][0]["SubscriptionArn"]
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="DeliveryPolicy", AttributeValue=policy)
        message_id = sns.publish(TopicArn=arn, Message="kept")["MessageId"]
        assert receiver.next().headers["x-amz-sns-message-id"] == message_id
        server.stop()
        receiver.fail = 0
        while not receiver.requests.empty():
            receiver.requests.get()
        server.start()
        got = receiver.next(timeout=30)
        assert got.json()["Message"] == "kept" and got.headers["x-amz-sns-message-id"] == message_id
    finally:
        receiver.close()


def test_fifo_topic_delivers_in_order_to_a_fifo_queue(squall: SquallServer, sns: Any) -> None:
    sqs = squall.client("sqs")
    suffix = uuid.uuid4().hex[:8]
    url = sqs.create_queue(QueueName=f"orders-{suffix}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(
        Name=f"orders-{suffix}.fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"}
    )["TopicArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true")
    code, _, _, _ = error_of(
        sns.subscribe, TopicArn=topic, Protocol="lambda", Endpoint=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f"
    )
    assert code == "InvalidParameter"
    for i in range(20):
        sns.publish(TopicArn=topic, Message=f"step {i}", MessageGroupId="g")
    sns.publish(TopicArn=topic, Message="step 0", MessageGroupId="g")  # a duplicate: not delivered again
    bodies: list[str] = []
    deadline = time.monotonic() + 30
    while len(bodies) < 20 and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", []):
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert bodies == [f"step {i}" for i in range(20)]
    assert not sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages")
    sns.delete_topic(TopicArn=topic)
    sqs.delete_queue(QueueUrl=url)
