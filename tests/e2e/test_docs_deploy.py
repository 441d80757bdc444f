"""docs/deploy.md, followed step by step against a live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .conftest import SquallServer
from .test_cli import DOCS, code_blocks

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


BLOCKS = code_blocks((DOCS / "deploy.md").read_text())
TEMPLATES = [code for language, code in BLOCKS if language == "yaml"]
SOURCES = [code for language, code in BLOCKS if language == "python"]
COMMANDS = [code.strip() for language, code in BLOCKS if not language]


def runner(squall: SquallServer, app: Path, template: str, source: str) -> Any:
    """The page's app written into ``app``, and a function that runs one of the page's commands there."""
    (app / "src").mkdir(parents=True)
    (app / "template.yaml").write_text(template)
    (app / "src" / "app.py").write_text(source)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "SQUALL_GATEWAY_PORT": str(squall.gateway_port)}  # fmt: skip

    def run(command: str) -> subprocess.CompletedProcess[str]:
        argv = command.replace(".venv/bin/squall", "squall").split()
        argv += ["--endpoint-url", squall.url, "--data-dir", str(squall.data_dir)]
        return subprocess.run(argv, capture_output=True, text=True, cwd=app, env=env, timeout=180)

    return run


def test_deploy_page_examples_run(squall: SquallServer, lam: Any, tmp_path: Path) -> None:
    run = runner(squall, tmp_path / "inbox-app", TEMPLATES[0], SOURCES[0])
    commands = COMMANDS

    first = run(commands[0])
    assert first.returncode == 0, first.stderr
    outputs = dict(line.split("\t", 1) for line in first.stdout.splitlines() if "\t" in line)
    name = outputs["ReaderName"]
    assert name.startswith("inbox-app-Reader-") and "/inbox-app-Inbox-" in outputs["InboxUrl"]
    assert json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()) == {"greeting": "hello"}
    second = run(commands[1])
    assert second.returncode == 0 and "updating Reader" in second.stderr
    assert json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()) == {"greeting": "bonjour"}
    gone = run(".venv/bin/squall deploy template.yaml --delete")
    assert gone.returncode == 0 and "resource(s) deleted" in gone.stdout


def test_deploy_page_services_example_runs(squall: SquallServer, tmp_path: Path) -> None:
    run = runner(squall, tmp_path / "photos", TEMPLATES[1], SOURCES[1])
    s3, sns, logs = squall.client("s3"), squall.client("sns"), squall.client("logs")
    first = run(COMMANDS[2])
    assert first.returncode == 0, first.stderr
    outputs = dict(line.split("\t", 1) for line in first.stdout.splitlines() if "\t" in line)
    bucket = outputs["Bucket"]
    assert bucket.startswith("photos-photos-") and bucket == bucket.lower()
    assert "creating ThumbnailerNightly (AWS::Scheduler::Schedule)" in first.stderr

    s3.put_object(Bucket=bucket, Key="cat.jpg", Body=b"meow")
    sns.publish(TopicArn=outputs["Topic"], Message="hello")
    url_id = outputs["Url"].split("//", 1)[1].split(".", 1)[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{squall.gateway_port}/_lambda-url/{url_id}/") as answer:
        assert answer.read() == b"thumbnails ready"

    def printed() -> str:
        groups = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/photos-Thumbnailer-")["logGroups"]
        return "".join(
            event["message"]
            for group in groups
            for event in logs.filter_log_events(logGroupName=group["logGroupName"])["events"]
        )

    deadline, lines = time.monotonic() + 60, printed()
    while time.monotonic() < deadline and not ("stored cat.jpg" in lines and "announced hello" in lines):
        time.sleep(0.2)
        lines = printed()
    assert "stored cat.jpg" in lines and "announced hello" in lines, lines

    blocked = run(COMMANDS[3])
    assert blocked.returncode == 1
    assert f"Resource Photos (AWS::S3::Bucket): The bucket you tried to delete is not empty: {bucket}" in (
        blocked.stderr
    )
    s3.delete_object(Bucket=bucket, Key="cat.jpg")
    gone = run(COMMANDS[3])
    assert gone.returncode == 0 and "resource(s) deleted" in gone.stdout, gone.stderr
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
