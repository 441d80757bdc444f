"""The real AWS CLI (``aws`` from this virtualenv) against a live Squall server.

The CLI signs its requests with the credentials file Squall wrote, exactly as a user's shell would.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import function_zip, make_zip
from tests.e2e.conftest import ROLE, SquallServer

pytestmark = pytest.mark.e2e

AWS = Path(sys.executable).parent / "aws"
MISSING_EXIT_CODES = {254, 255}  # CLI v2 uses 254 for service errors, v1 255


@functools.cache
def cli_major_version() -> int:
    out = subprocess.run([str(AWS), "--version"], capture_output=True, text=True, check=True, timeout=60)
    match = re.search(r"aws-cli/(\d+)\.", out.stdout + out.stderr)
    assert match, out
    return int(match.group(1))


def aws(
    server: SquallServer, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``aws <args>`` against ``server``; with ``check``, it must succeed."""
    argv = [str(AWS), "--endpoint-url", server.url, "--output", "json", *args]
    proc = subprocess.run(argv, env=env or server.cli_env(), capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert proc.returncode == 0, f"{args} exited {proc.returncode}: {proc.stderr}"
    return proc


def aws_json(server: SquallServer, *args: str) -> Any:
    return json.loads(aws(server, *args).stdout)


def payload_args(payload: Any) -> list[str]:
    """An inline JSON payload: raw bytes, which CLI v2 only takes with ``--cli-binary-format``."""
    args = ["--payload", json.dumps(payload)]
    if cli_major_version() >= 2:
        args += ["--cli-binary-format", "raw-in-base64-out"]
    return args


def code_sha256(zip_bytes: bytes) -> str:
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


@pytest.fixture
def cleanup(lam: Any) -> Iterator[list[str]]:
    """Names of functions to delete after the test, whatever the CLI managed to do."""
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            lam.delete_function(FunctionName=name)


def create_with_cli(squall: SquallServer, tmp_path: Path, name: str, zip_bytes: bytes, *extra: str) -> Any:
    package = tmp_path / f"{name}.zip"
    package.write_bytes(zip_bytes)
    created = aws_json(
        squall,
        "lambda",
        "create-function",
        "--function-name",
        name,
        "--runtime",
        "python3.11",
        "--role",
        ROLE,
        "--handler",
        "app.handler",
        "--zip-file",
        f"fileb://{package}",
        *extra,
    )
    aws(squall, "lambda", "wait", "function-active-v2", "--function-name", name)
    return created


@pytest.mark.slow
def test_create_get_list_delete(squall: SquallServer, tmp_path: Path, cleanup: list[str]) -> None:
    name = f"cli-lifecycle-{uuid.uuid4().hex[:8]}"
    cleanup.append(name)
    package = function_zip("probe", "app")
    created = create_with_cli(
        squall,
        tmp_path,
        name,
        package,
        "--timeout",
        "5",
        "--memory-size",
        "256",
        "--description",
        "made by the aws cli",
        "--environment",
        "Variables={GREETING=hello}",
    )
    assert created["FunctionName"] == name
    assert created["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert created["Runtime"] == "python3.11"
    assert created["Handler"] == "app.handler"
    assert created["Role"] == ROLE
    assert created["Timeout"] == 5
    assert created["MemorySize"] == 256
    assert created["Description"] == "made by the aws cli"
    assert created["Environment"] == {"Variables": {"GREETING": "hello"}}
    assert created["CodeSha256"] == code_sha256(package)
    assert created["CodeSize"] == len(package)
    assert created["Version"] == "$LATEST"

    got = aws_json(squall, "lambda", "get-function", "--function-name", name)
    assert got["Configuration"]["FunctionName"] == name
    assert got["Configuration"]["State"] == "Active"
    assert got["Configuration"]["CodeSha256"] == code_sha256(package)
    with urllib.request.urlopen(got["Code"]["Location"], timeout=10) as response:
        assert response.read() == package

    listed = aws_json(squall, "lambda", "list-functions")
    mine = [f for f in listed["Functions"] if f["FunctionName"] == name]
    assert len(mine) == 1 and mine[0]["MemorySize"] == 256

    deleted = aws(squall, "lambda", "delete-function", "--function-name", name)
    # Lambda answers 204; newer botocore models print it as StatusCode, older ones print nothing.
    assert json.loads(deleted.stdout or "{}").get("StatusCode", 204) == 204
    missing = aws(squall, "lambda", "get-function", "--function-name", name, check=False)
    assert missing.returncode in MISSING_EXIT_CODES
    assert "ResourceNotFoundException" in missing.stderr
    listed = aws_json(squall, "lambda", "list-functions")
    assert name not in [f["FunctionName"] for f in listed["Functions"]]


@pytest.mark.slow
def test_update_configuration_and_code(squall: SquallServer, tmp_path: Path, cleanup: list[str]) -> None:
    name = f"cli-update-{uuid.uuid4().hex[:8]}"
    cleanup.append(name)
    first = function_zip("probe", "app")
    create_with_cli(squall, tmp_path, name, first)

    updated = aws_json(
        squall,
        "lambda",
        "update-function-configuration",
        "--function-name",
        name,
        "--timeout",
        "7",
        "--memory-size",
        "192",
        "--environment",
        "Variables={COLOR=blue,SHAPE=round}",
    )
    assert updated["Timeout"] == 7
    assert updated["MemorySize"] == 192
    assert updated["Environment"] == {"Variables": {"COLOR": "blue", "SHAPE": "round"}}
    aws(squall, "lambda", "wait", "function-updated-v2", "--function-name", name)
    config = aws_json(squall, "lambda", "get-function-configuration", "--function-name", name)
    assert (config["Timeout"], config["MemorySize"]) == (7, 192)
    out = tmp_path / "env.json"
    aws(squall, "lambda", "invoke", "--function-name", name, *payload_args({"action": "env"}), str(out))
    env = json.loads(out.read_text())
    assert (env["COLOR"], env["SHAPE"], env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]) == ("blue", "round", "192")

    source = "import os\n\ndef handler(event, context):\n    return {'code': 2, 'color': os.environ['COLOR']}\n"
    second = make_zip({"app.py": source})
    package = tmp_path / "second.zip"
    package.write_bytes(second)
    replaced = aws_json(
        squall, "lambda", "update-function-code", "--function-name", name, "--zip-file", f"fileb://{package}"
    )
    assert replaced["CodeSha256"] == code_sha256(second) != code_sha256(first)
    assert replaced["CodeSize"] == len(second)
    aws(squall, "lambda", "wait", "function-updated-v2", "--function-name", name)
    out = tmp_path / "code.json"
    aws(squall, "lambda", "invoke", "--function-name", name, *payload_args({}), str(out))
    assert json.loads(out.read_text()) == {"code": 2, "color": "blue"}


def test_invoke_request_response(squall: SquallServer, make_function: Any, tmp_path: Path) -> None:
    make_function("cli-invoke", function_zip("probe", "app"))
    out = tmp_path / "out.json"
    text = f"hello from the cli {uuid.uuid4().hex}"
    proc = aws(
        squall,
        "lambda",
        "invoke",
        "--function-name",
        "cli-invoke",
        *payload_args({"action": "print", "text": text}),
        "--log-type",
        "Tail",
        str(out),
    )
    printed = json.loads(proc.stdout)
    assert printed["StatusCode"] == 200
    assert printed["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in printed
    assert json.loads(out.read_text()) == "printed"
    log = base64.b64decode(printed["LogResult"]).decode()
    assert re.search(r"^START RequestId: \S+ Version: \$LATEST$", log, re.M), log
    assert text in log
    assert re.search(r"^END RequestId: \S+$", log, re.M), log
    assert re.search(r"^REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms", log, re.M), log

    # A payload from a file (fileb:// is raw bytes in every CLI version), without a log tail.
    event = {"action": "echo", "nested": {"list": [1, "two", None]}, "unicode": "Grüße"}
    payload_file = tmp_path / "event.json"
    payload_file.write_text(json.dumps(event), encoding="utf-8")
    proc = aws(
        squall,
        "lambda",
        "invoke",
        "--function-name",
        "cli-invoke",
        "--payload",
        f"fileb://{payload_file}",
        str(out),
    )
    printed = json.loads(proc.stdout)
    assert printed["StatusCode"] == 200
    assert "LogResult" not in printed
    assert json.loads(out.read_text(encoding="utf-8"))["event"] == event


def test_invoke_function_error(squall: SquallServer, make_function: Any, tmp_path: Path) -> None:
    make_function("cli-invoke-error", function_zip("probe", "app"))
    out = tmp_path / "out.json"
    proc = aws(
        squall,
        "lambda",
        "invoke",
        "--function-name",
        "cli-invoke-error",
        *payload_args({"action": "raise", "message": "it broke"}),
        str(out),
    )
    printed = json.loads(proc.stdout)
    assert printed["StatusCode"] == 200
    assert printed["FunctionError"] == "Unhandled"
    error = json.loads(out.read_text())
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "it broke"


def test_invoke_event_is_queued_and_runs(squall: SquallServer, lam: Any, make_function: Any, tmp_path: Path) -> None:
    """``--invocation-type Event`` answers 202 at once; the function then runs and leaves a mark."""
    # The function prints the event's mark; its log shows that the queued event ran.
    source = "def handler(event, context):\n    print(event['mark'])\n    return 'marked'\n"
    make_function("cli-invoke-event", make_zip({"app.py": source}), Timeout=30)
    mark = f"ran {uuid.uuid4().hex}"
    out = tmp_path / "out.json"
    proc = aws(
        squall,
        "lambda",
        "invoke",
        "--function-name",
        "cli-invoke-event",
        "--invocation-type",
        "Event",
        *payload_args({"mark": mark}),
        str(out),
    )
    printed = json.loads(proc.stdout)
    assert printed["StatusCode"] == 202
    assert "FunctionError" not in printed
    assert out.read_bytes() == b""
    deadline = time.monotonic() + 30
    log = ""
    while time.monotonic() < deadline:
        log = subprocess.run(
            [sys.executable, "-m", "squall", "logs", "cli-invoke-event", "--data-dir", str(squall.data_dir)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if mark in log.splitlines():
            break
        time.sleep(0.1)
    assert mark in log.splitlines(), "the queued event did not run"


@pytest.mark.parametrize(
    "args",
    [
        ["get-function", "--function-name", "cli-no-such-function"],
        ["get-function-configuration", "--function-name", "cli-no-such-function"],
        ["delete-function", "--function-name", "cli-no-such-function"],
        ["invoke", "--function-name", "cli-no-such-function", "{out}"],
    ],
    ids=lambda args: args[0],
)
def test_missing_function(squall: SquallServer, tmp_path: Path, args: list[str]) -> None:
    argv = [arg.replace("{out}", str(tmp_path / "out.json")) for arg in args]
    proc = aws(squall, "lambda", *argv, check=False)
    assert proc.returncode in MISSING_EXIT_CODES, proc
    assert "ResourceNotFoundException" in proc.stderr
    assert "cli-no-such-function" in proc.stderr


def write_credentials(path: Path, key: str, secret: str) -> None:
    path.write_text(f"[squall]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n")
    path.chmod(0o600)


@pytest.mark.parametrize(
    ("which", "code", "wording"),
    [
        ("secret", "InvalidSignatureException", "The request signature we calculated does not match"),
        ("key", "UnrecognizedClientException", "The security token included in the request is invalid"),
    ],
)
def test_wrong_credentials_are_rejected(
    squall: SquallServer, tmp_path: Path, which: str, code: str, wording: str
) -> None:
    key, secret = squall.credentials()
    wrong = tmp_path / "credentials"
    if which == "secret":
        write_credentials(wrong, key, "x" + secret[1:] if not secret.startswith("x") else "y" + secret[1:])
    else:
        write_credentials(wrong, "AKIA" + uuid.uuid4().hex[:16].upper(), secret)
    env = squall.cli_env()
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(wrong)
    proc = aws(squall, "--debug", "lambda", "list-functions", env=env, check=False)
    assert proc.returncode in MISSING_EXIT_CODES, proc.stdout
    assert f"An error occurred ({code}) when calling the ListFunctions operation: {wording}" in proc.stderr
    # The HTTP status, as logged by the CLI's HTTP client.
    assert re.search(r'"GET /2015-03-31/functions/? HTTP/1\.1" 403 ', proc.stderr), proc.stderr[-3000:]
    # The same CLI with the right credentials file works.
    assert "Functions" in aws_json(squall, "lambda", "list-functions")


def test_version_alias_invoke_and_logs_flow(squall: SquallServer, tmp_path: Path, cleanup: list[str]) -> None:
    """Issue 3's CLI flow: create, publish a version, alias it, invoke through the alias, read the logs."""
    cleanup.append("cli-flow")
    source = "def handler(event, context):\n    print('flow', context.function_version)\n    return 'v1'\n"
    create_with_cli(squall, tmp_path, "cli-flow", make_zip({"app.py": source}))
    version = aws_json(squall, "lambda", "publish-version", "--function-name", "cli-flow")
    assert version["Version"] == "1"
    alias = aws_json(
        squall, "lambda", "create-alias", "--function-name", "cli-flow", "--name", "live", "--function-version", "1"
    )
    assert alias["AliasArn"].endswith(":function:cli-flow:live")
    out = tmp_path / "flow.json"
    printed = aws_json(
        squall, "lambda", "invoke", "--function-name", "cli-flow", "--qualifier", "live", *payload_args({}), str(out)
    )
    assert printed["StatusCode"] == 200 and printed["ExecutedVersion"] == "1"
    assert json.loads(out.read_text()) == "v1"
    deadline = time.monotonic() + 10
    messages: list[str] = []
    while time.monotonic() < deadline and not any(m.startswith("flow 1") for m in messages):
        events = aws_json(squall, "logs", "filter-log-events", "--log-group-name", "/aws/lambda/cli-flow")
        messages = [e["message"] for e in events["events"]]
        time.sleep(0.2)
    assert any(m.startswith("flow 1") for m in messages), messages
    assert any(m.startswith("REPORT RequestId: ") for m in messages)
