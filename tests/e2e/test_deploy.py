"""``squall deploy``: a SAM template deployed, redeployed with changes, and deleted, against a live server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import SquallServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APP = Path(__file__).resolve().parents[1] / "templates" / "orders"


def deploy(server: SquallServer, template: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "squall", "deploy", str(template), "--endpoint-url", server.url,
         "--data-dir", str(server.data_dir), *args],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def outputs(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in result.stdout.splitlines() if "\t" in line)


def test_deploy_redeploy_and_delete_a_sam_app(squall: SquallServer, tmp_path: Path) -> None:
    app = tmp_path / "orders"
    shutil.copytree(APP, app)
    lam, sqs, kinesis, dynamodb = (squall.client(s) for s in ("lambda", "sqs", "kinesis", "dynamodb"))

    first = deploy(squall, app / "template.yaml")
    assert first.returncode == 0, first.stderr
    assert "Stack orders: 8 resource(s) deployed." in first.stdout  # SAM adds a role and two mappings
    out = outputs(first)
    function_arn, queue_url = out["FunctionArn"], out["QueueUrl"]
    name = function_arn.rsplit(":", 1)[1]
    assert name.startswith("orders-Counter-")
    assert out["Summary"].startswith(f"{name} reads orders-Clicks-") and out["Summary"].endswith("in us-east-1")
    payload = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert payload == {"greeting": "hello", "label": "from the layer"}

    # The template's triggers really feed the function, which counts into the table.
    sqs.send_message(QueueUrl=queue_url, MessageBody="order")
    stream = out["Summary"].split(" reads ")[1].split(" in ")[0]
    kinesis.put_record(StreamName=stream, Data=b"click", PartitionKey="k")
    table = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]["TABLE"]
    deadline = time.monotonic() + 30
    counted: dict[str, Any] = {}
    while time.monotonic() < deadline and len(counted) < 2:
        items = dynamodb.scan(TableName=table)["Items"]
        counted = {item["id"]["S"]: item["n"]["N"] for item in items}
        time.sleep(0.2)
    assert counted == {"aws:sqs": "1", "aws:kinesis": "1"}

    # Unchanged: nothing is touched. A parameter and the code change: only the function is updated.
    again = deploy(squall, app / "template.yaml")
    assert again.returncode == 0 and "updating" not in again.stderr and "creating" not in again.stderr
    (app / "src" / "app.py").write_text((app / "src" / "app.py").read_text().replace('"label"', '"tag"'))
    changed = deploy(squall, app / "template.yaml", "--parameter", "Greeting=bonjour")
    assert changed.returncode == 0, changed.stderr
    assert "updating Counter" in changed.stderr and "Orders" not in changed.stderr
    assert outputs(changed)["QueueUrl"] == queue_url  # the queue was kept
    payload = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert payload == {"greeting": "bonjour", "tag": "from the layer"}

    # A resource the template no longer has is deleted.
    text = (app / "template.yaml").read_text()
    start, end = text.index("  Clicks:"), text.index("  Counts:")
    trimmed = text[:start] + text[end:]
    trimmed = trimmed.replace(
        "        FromStream:\n          Type: Kinesis\n"
        "          Properties: {Stream: !GetAtt Clicks.Arn, StartingPosition: TRIM_HORIZON}\n",
        "",
    ).replace('    Value: !Sub "${Counter} reads ${Clicks} in ${AWS::Region}"', "    Value: !Sub ${Counter}")
    (app / "template.yaml").write_text(trimmed)
    smaller = deploy(squall, app / "template.yaml")
    assert smaller.returncode == 0, smaller.stderr
    assert "deleting Clicks" in smaller.stderr and "deleting CounterFromStream" in smaller.stderr
    assert stream not in [s for s in kinesis.list_streams()["StreamNames"]]

    gone = deploy(squall, app / "template.yaml", "--delete")
    assert gone.returncode == 0, gone.stderr
    # SAM gives a layer version DeletionPolicy Retain (its RetentionPolicy default): it is kept.
    assert "Stack orders: 5 resource(s) deleted." in gone.stdout
    assert re.search(r"retaining Shared\w+ \(AWS::Lambda::LayerVersion, DeletionPolicy Retain\)", gone.stderr)
    (kept,) = lam.list_layer_versions(LayerName="Shared")["LayerVersions"]
    lam.delete_layer_version(LayerName="Shared", VersionNumber=kept["Version"])
    assert name not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert not (squall.data_dir / "stacks" / "orders.json").exists()


def test_what_squall_cannot_deploy_is_named(squall: SquallServer, tmp_path: Path) -> None:
    template = tmp_path / "bad" / "template.yaml"
    template.parent.mkdir()
    template.write_text("Resources:\n  Photos:\n    Type: AWS::EC2::Instance\n    Properties: {ImageId: ami-1}\n")
    result = deploy(squall, template)
    assert result.returncode == 1
    assert "Resource Photos: Squall cannot create AWS::EC2::Instance yet" in result.stderr
    template.write_text(
        "Resources:\n  Work:\n    Type: AWS::SQS::Queue\n    Properties: {Colour: blue, VisibilityTimeout: 5}\n"
    )
    result = deploy(squall, template)
    assert result.returncode == 1
    assert "Resource Work (AWS::SQS::Queue): Squall does not support the property Colour" in result.stderr
    template.write_text("Resources:\n  A:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: !Ref Missing}\n")
    result = deploy(squall, template)
    assert "Resource A: Ref to 'Missing', which is neither a parameter nor a resource" in result.stderr


def test_environment_variables_are_strings_as_cloudformation_makes_them(squall: SquallServer, tmp_path: Path) -> None:
    """A Number parameter's Ref, a number or a boolean in ``Variables`` reach Lambda as strings."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def handler(event, context):\n    return None\n")
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Parameters:\n  Limit: {Type: Number, Default: 4}\n"
        "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      CodeUri: src/\n      Handler: app.handler\n      Runtime: python3.11\n"
        "      Environment:\n        Variables: {LIMIT: !Ref Limit, RATIO: 0.5, VERBOSE: true, NAME: plain}\n"
        "Outputs:\n  Name:\n    Value: !Ref Fn\n"
    )
    lam = squall.client("lambda")
    first = deploy(squall, tmp_path / "template.yaml", "--stack-name", "typed-env")
    assert first.returncode == 0, first.stderr
    name = outputs(first)["Name"]
    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    assert variables == {"LIMIT": "4", "RATIO": "0.5", "VERBOSE": "true", "NAME": "plain"}
    # The update path too: a new default changes the function in place.
    template = tmp_path / "template.yaml"
    template.write_text(template.read_text().replace("Default: 4", "Default: 7"))
    again = deploy(squall, template, "--stack-name", "typed-env")
    assert again.returncode == 0, again.stderr
    assert lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]["LIMIT"] == "7"
    assert deploy(squall, tmp_path / "template.yaml", "--stack-name", "typed-env", "--delete").returncode == 0


def test_parameters_are_strings_converted_to_each_property_type(squall: SquallServer, tmp_path: Path) -> None:
    """As on CloudFormation, a Number parameter reaches the template as a string ("100" in a
    variable) and becomes a number where the API takes one (MemorySize)."""
    app = tmp_path / "typed"
    (app / "src").mkdir(parents=True)
    (app / "src" / "app.py").write_text("def handler(event, context):\n    return event\n")
    template = app / "template.yaml"
    template.write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Parameters:\n"
        "  Memory: {Type: Number, Default: 256, AllowedValues: [128, 256]}\n"
        "  Threshold: {Type: Number, Default: 100}\n"
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: src/\n      Handler: app.handler\n      Runtime: python3.11\n"
        "      MemorySize: !Ref Memory\n"
        "      Environment: {Variables: {THRESHOLD: !Ref Threshold}}\n"
        "Outputs:\n  Name: {Value: !Ref Fn}\n"
    )
    first = deploy(squall, template)
    assert first.returncode == 0, first.stderr
    config = squall.client("lambda").get_function_configuration(FunctionName=outputs(first)["Name"])
    assert (config["MemorySize"], config["Environment"]["Variables"]) == (256, {"THRESHOLD": "100"})

    wrong = deploy(squall, template, "--parameter", "Threshold=many")
    assert wrong.returncode == 1 and "Parameter 'Threshold' must be a number." in wrong.stderr
    refused = deploy(squall, template, "--parameter", "Memory=512")
    assert refused.returncode == 1 and "Parameter Memory must be one of 128, 256" in refused.stderr
    assert deploy(squall, template, "--delete").returncode == 0
