"""``squall deploy`` of topics, buckets, rules, schedules, function URLs and policies, against a live server.

The SAM app in ``tests/templates/services/`` wires one function to a bucket, a topic (directly, and
through a queue), a rule, a schedule and a function URL; the function records what reached it in a
table, so each wire is proved by the record it leaves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import SquallServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APP = Path(__file__).resolve().parents[1] / "templates" / "services"


def deploy(server: SquallServer, template: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # No SQUALL_GATEWAY_PORT: the bucket's WebsiteURL gets the gateway's port from the server itself.
    env = {key: value for key, value in os.environ.items() if key != "SQUALL_GATEWAY_PORT"}
    return subprocess.run(
        [sys.executable, "-m", "squall", "deploy", str(template), "--endpoint-url", server.url,
         "--data-dir", str(server.data_dir), *args],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def outputs(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in result.stdout.splitlines() if "\t" in line)


def touched(result: subprocess.CompletedProcess[str]) -> set[str]:
    """The logical ids a deploy created, updated or deleted, from its progress lines."""
    return set(re.findall(r"^  (?:creating|updating|deleting) (\w+)", result.stderr, re.MULTILINE))


def poll(what: Callable[[], Any], done: Callable[[Any], bool], seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    value = what()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.2)
        value = what()
    return value


def test_services_app_deploys_works_redeploys_and_deletes(squall: SquallServer, tmp_path: Path) -> None:
    app = tmp_path / "services"
    shutil.copytree(APP, app)
    lam, s3, sns, sqs = (squall.client(s) for s in ("lambda", "s3", "sns", "sqs"))
    dynamodb, events, scheduler = (squall.client(s) for s in ("dynamodb", "events", "scheduler"))

    first = deploy(squall, app / "template.yaml")
    assert first.returncode == 0, first.stderr
    assert "Stack services: 22 resource(s) deployed." in first.stdout
    for policy in ("UploadsPolicy (AWS::S3::BucketPolicy)", "AlertsPolicy (AWS::SNS::TopicPolicy)",
                   "QueuesPolicy (AWS::SQS::QueuePolicy)"):  # fmt: skip
        assert first.stderr.count(f"note: {policy}: ") == 1 and "not enforced" in first.stderr
    out = outputs(first)
    bucket, topic, function = out["Bucket"], out["TopicArn"], out["FunctionName"]
    assert re.fullmatch(r"services-uploads-[a-z0-9]{12}", bucket)
    assert out["Website"] == f"http://{bucket}.s3-website-us-east-1.localhost:{squall.gateway_port}"
    assert out["PolicyOf"] == bucket and out["TopicPolicyId"].startswith("services-AlertsPolicy-")
    table = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]["TABLE"]

    def seen() -> dict[str, str]:
        return {i["id"]["S"]: i["label"]["S"] for i in dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]}

    # Every wire, for real: an object under the filter's prefix, a message, a call to the URL.
    s3.put_object(Bucket=bucket, Key="in/photo.txt", Body=b"pixels")
    sns.publish(TopicArn=topic, Message="hello")
    url_id = re.fullmatch(r"http://([a-z0-9]+)\.lambda-url\.us-east-1\.localhost:\d+/", out["FunctionUrl"])
    assert url_id is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{squall.gateway_port}/_lambda-url/{url_id[1]}/ping") as answer:
        assert json.loads(answer.read()) == {"label": "first", "path": "/ping"}
    wanted = {"s3:in/photo.txt", "sns:hello", "sqs:hello", "url:/ping"}
    records = poll(seen, lambda found: wanted <= set(found))
    assert wanted <= set(records), records
    # The audit queue gets the topic's message (its own Subscription list: an SNS envelope, not raw)
    # and the bucket's notification of an object under audit/ (after S3's test event).
    s3.put_object(Bucket=bucket, Key="audit/log.txt", Body=b"entry")
    audited: list[dict[str, Any]] = []

    def audit_has_both() -> bool:
        for message in sqs.receive_message(QueueUrl=out["AuditUrl"], MaxNumberOfMessages=10).get("Messages", []):
            audited.append(json.loads(message["Body"]))
        keys = [r["s3"]["object"]["key"] for body in audited for r in body.get("Records", [])]
        return "audit/log.txt" in keys and any(body.get("Message") == "hello" for body in audited)

    assert poll(audit_has_both, bool), audited
    # The topic's attributes and policies, the rule and the schedule, as their APIs show them.
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["DisplayName"] == "alerts (first)" and "events.amazonaws.com" in attributes["Policy"]
    assert sns.list_tags_for_resource(ResourceArn=topic)["Tags"] == [{"Key": "team", "Value": "ops"}]
    policy = sqs.get_queue_attributes(QueueUrl=out["AuditUrl"], AttributeNames=["Policy"])["Attributes"]["Policy"]
    assert json.loads(policy)["Statement"][0]["Condition"] == {"ArnEquals": {"aws:SourceArn": topic}}
    (rule,) = events.list_rules(NamePrefix="services-RecorderTick-")["Rules"]
    assert (rule["ScheduleExpression"], rule["State"]) == ("rate(1 minute)", "ENABLED")
    function_arn = lam.get_function_configuration(FunctionName=function)["FunctionArn"]
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert (target["Arn"], json.loads(target["Input"])) == (function_arn, {"tick": "rule"})
    schedule = scheduler.get_schedule(Name="RecorderTock")
    assert schedule["ScheduleExpression"] == "rate(1 minute)" and schedule["Target"]["Arn"] == function_arn
    assert json.loads(schedule["Target"]["Input"]) == {"tick": "scheduler"}

    # The website configuration serves the bucket's index on the gateway port.
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"<h1>home</h1>", ContentType="text/html")
    with urllib.request.urlopen(f"http://127.0.0.1:{squall.gateway_port}/_s3-website/{bucket}/") as answer:
        assert answer.read() == b"<h1>home</h1>"

    # Unchanged: nothing is touched. A label, a filter prefix and a rate changed: only those resources.
    again = deploy(squall, app / "template.yaml")
    assert again.returncode == 0 and touched(again) == set() and "note:" not in again.stderr, again.stderr
    text = (app / "template.yaml").read_text()
    text = text.replace("Value: in/", "Value: incoming/").replace(
        "ScheduleExpression: rate(1 minute)", "ScheduleExpression: rate(2 minutes)"
    )
    (app / "template.yaml").write_text(text)
    changed = deploy(squall, app / "template.yaml", "--parameter", "Label=second")
    assert changed.returncode == 0, changed.stderr
    assert touched(changed) == {"Alerts", "Recorder", "Uploads", "RecorderTock"}, changed.stderr
    assert all(f"updating {name}" in changed.stderr for name in touched(changed))
    assert outputs(changed) == out  # every name and URL kept
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["DisplayName"] == "alerts (second)"
    assert scheduler.get_schedule(Name="RecorderTock")["ScheduleExpression"] == "rate(2 minutes)"
    s3.put_object(Bucket=bucket, Key="incoming/two.txt", Body=b"more")
    records = poll(seen, lambda found: "s3:incoming/two.txt" in found)
    assert records.get("s3:incoming/two.txt") == "second", records

    # Subscriptions, a URL, a rule's target and a policy changed in place too; a dropped subscription goes.
    text = (app / "template.yaml").read_text()
    for before, after in [
        ("      Subscription:\n        - Protocol: sqs\n          Endpoint: !GetAtt Audit.Arn\n", ""),
        ("      RawMessageDelivery: true\n", "      RawMessageDelivery: true\n      FilterPolicy: {kind: [keep]}\n"),
        ("Queues: [!Ref Audit, !Ref Relay]", "Queues: [!Ref Relay]"),
        ("        AuthType: NONE\n", "        AuthType: NONE\n        Cors: {AllowOrigins: ['*']}\n"),
        ("""Input: '{"tick": "rule"}'""", """Input: '{"tick": "rule, again"}'"""),
    ]:
        assert before in text
        text = text.replace(before, after)
    (app / "template.yaml").write_text(text)
    rewired = deploy(squall, app / "template.yaml", "--parameter", "Label=second")
    assert rewired.returncode == 0, rewired.stderr
    assert touched(rewired) == {"Alerts", "RelaySubscription", "QueuesPolicy", "RecorderUrl", "RecorderTick"}
    assert "creating" not in rewired.stderr and outputs(rewired) == out
    subscribed = [sub["Endpoint"] for sub in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]]
    assert len(subscribed) == 2 and not any(
        endpoint.endswith(out["AuditUrl"].rsplit("/")[-1]) for endpoint in subscribed
    )
    audit = sqs.get_queue_attributes(QueueUrl=out["AuditUrl"], AttributeNames=["All"])["Attributes"]
    assert audit.get("Policy", "") == ""  # cleared (Squall's SQS answers an empty Policy)
    assert lam.get_function_url_config(FunctionName=function)["Cors"]["AllowOrigins"] == ["*"]
    assert events.list_rules(NamePrefix="services-RecorderTick-")["Rules"][0]["Name"] == rule["Name"]
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert json.loads(target["Input"]) == {"tick": "rule, again"}
    sns.publish(TopicArn=topic, Message="skipped")
    kind = {"kind": {"DataType": "String", "StringValue": "keep"}}
    sns.publish(TopicArn=topic, Message="kept", MessageAttributes=kind)
    records = poll(seen, lambda found: {"sqs:kept", "sns:skipped", "sns:kept"} <= set(found))
    assert {"sqs:kept", "sns:skipped", "sns:kept"} <= set(records) and "sqs:skipped" not in records, records

    # A bucket that holds objects stops the delete, naming it; emptied, the delete finishes.
    blocked = deploy(squall, app / "template.yaml", "--delete")
    assert blocked.returncode == 1
    assert f"Resource Uploads (AWS::S3::Bucket): The bucket you tried to delete is not empty: {bucket}" in (
        blocked.stderr
    )
    for listed in s3.list_objects_v2(Bucket=bucket)["Contents"]:
        s3.delete_object(Bucket=bucket, Key=listed["Key"])
    gone = deploy(squall, app / "template.yaml", "--delete")
    assert gone.returncode == 0, gone.stderr
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert topic not in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert function not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert events.list_rules(NamePrefix="services-")["Rules"] == []
    assert "RecorderTock" not in [s["Name"] for s in scheduler.list_schedules()["Schedules"]]
    assert not [u for u in sqs.list_queues(QueueNamePrefix="services-").get("QueueUrls", [])]
    assert not (squall.data_dir / "stacks" / "services.json").exists()


def test_deletion_policy_retain_keeps_the_resource(squall: SquallServer, tmp_path: Path) -> None:
    template = tmp_path / "keeper" / "template.yaml"
    template.parent.mkdir()
    template.write_text(
        "Resources:\n"
        "  Archive:\n    Type: AWS::S3::Bucket\n    DeletionPolicy: Retain\n"
        "  News:\n    Type: AWS::SNS::Topic\n    DeletionPolicy: Retain\n"
        "  Scratch:\n    Type: AWS::SNS::Topic\n"
    )
    s3, sns = squall.client("s3"), squall.client("sns")
    first = deploy(squall, template)
    assert first.returncode == 0, first.stderr
    record = json.loads((squall.data_dir / "stacks" / "keeper.json").read_text())
    bucket = record["resources"]["Archive"]["physical_id"]
    news, scratch = record["resources"]["News"]["physical_id"], record["resources"]["Scratch"]["physical_id"]
    s3.put_object(Bucket=bucket, Key="kept.txt", Body=b"kept")

    # The policy of the last deployed template decides: News loses its Retain, then leaves the template.
    template.write_text(template.read_text().replace("    DeletionPolicy: Retain\n  Scratch", "  Scratch"))
    assert deploy(squall, template).returncode == 0
    template.write_text(template.read_text().replace("  News:\n    Type: AWS::SNS::Topic\n", ""))
    smaller = deploy(squall, template)
    assert smaller.returncode == 0 and "deleting News" in smaller.stderr, smaller.stderr
    gone = deploy(squall, template, "--delete")
    assert gone.returncode == 0, gone.stderr
    assert f"retaining Archive (AWS::S3::Bucket, DeletionPolicy Retain): {bucket}" in gone.stderr
    assert "Stack keeper: 1 resource(s) deleted." in gone.stdout
    assert s3.get_object(Bucket=bucket, Key="kept.txt")["Body"].read() == b"kept"
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert news not in topics and scratch not in topics
    s3.delete_object(Bucket=bucket, Key="kept.txt")
    s3.delete_bucket(Bucket=bucket)

    template.write_text("Resources:\n  Box:\n    Type: AWS::S3::Bucket\n    DeletionPolicy: Snapshot\n")
    refused = deploy(squall, template)
    assert refused.returncode == 1
    assert "Resource Box: DeletionPolicy Snapshot is not supported (Delete or Retain)" in refused.stderr


@pytest.mark.parametrize(
    ("resource", "named"),
    [
        ("Type: AWS::S3::Bucket\n    Properties: {Tags: [{Key: a, Value: b}]}", "(AWS::S3::Bucket): Squall does "
         "not support the property Tags"),
        ("Type: AWS::S3::Bucket\n    Properties: {NotificationConfiguration: {EventBridgeConfiguration: "
         "{EventBridgeEnabled: true}}}", "the property NotificationConfiguration.EventBridgeConfiguration"),
        ("Type: AWS::S3::Bucket\n    Properties: {WebsiteConfiguration: {RoutingRules: []}}",
         "the property WebsiteConfiguration.RoutingRules"),
        ("Type: AWS::SNS::Topic\n    Properties: {DeliveryStatusLogging: []}", "the property DeliveryStatusLogging"),
        ("Type: AWS::Events::Rule\n    Properties: {ScheduleExpression: rate(1 hour), Targets: [{Id: a, "
         "Arn: x, InputTransformer: {InputTemplate: t}}]}", "the property Targets[0].InputTransformer"),
        ("Type: AWS::Events::Rule\n    Properties: {ScheduleExpression: rate(1 hour), EventBusName: orders}",
         "EventBusName: Squall has the default bus only"),
        ("Type: AWS::Scheduler::Schedule\n    Properties: {ScheduleExpression: rate(1 hour), FlexibleTimeWindow: "
         "{Mode: 'OFF'}, Target: {Arn: x, RoleArn: y, RetryPolicy: {}}}", "the property Target.RetryPolicy"),
        ("Type: AWS::Lambda::Url\n    Properties: {TargetFunctionArn: f, AuthType: NONE, Colour: red}",
         "(AWS::Lambda::Url): Squall does not support the property Colour"),
        ("Type: AWS::SQS::QueuePolicy\n    Properties: {Queues: [q]}", "PolicyDocument is required"),
        ("Type: AWS::SNS::Topic\n    UpdateReplacePolicy: Retain", "UpdateReplacePolicy Retain is not supported"),
    ],
)  # fmt: skip
def test_what_a_service_type_cannot_honour_is_named(
    squall: SquallServer, tmp_path: Path, resource: str, named: str
) -> None:
    template = tmp_path / "refused" / "template.yaml"
    template.parent.mkdir()
    template.write_text(f"Resources:\n  Thing:\n    {resource}\n")
    result = deploy(squall, template)
    assert result.returncode == 1 and "Resource Thing" in result.stderr and named in result.stderr, result.stderr
    assert not (squall.data_dir / "stacks" / "refused.json").exists()
