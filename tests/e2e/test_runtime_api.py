"""Custom runtimes (``provided.al2023``) driven by real Runtime API clients: bash bootstraps (curl),
AWS's Python runtime interface client ``awslambdaric``, and the examples of docs/runtimes.md (Python,
bash, Node.js, and Ruby, Go and Java runtimes written with their standard HTTP clients), whose files
and commands are taken from the page and run as a reader runs them."""

from __future__ import annotations

import base64
import contextlib
import http.client
import importlib.metadata
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[2] / "docs" / "runtimes.md"
RUNTIME = "provided.al2023"


def package(files: dict[str, str | bytes], executable: tuple[str, ...] = ("bootstrap",)) -> bytes:
    """A zip whose ``executable`` entries keep mode 755 (as ``zip`` stores a chmod +x file)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100755 if name in executable else 0o100644) << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def docs_bash_example() -> dict[str, str]:
    """The two bash files of docs/runtimes.md: the first two ```bash blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", DOCS.read_text(), re.S)
    return {"bootstrap": blocks[0], "function.sh": blocks[1]}


def invoke(lam: Any, name: str, event: Any = None, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    payload = json.dumps(event if event is not None else {}).encode()
    response = lam.invoke(FunctionName=name, Payload=payload, **kwargs)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def request_id(response: dict[str, Any]) -> str:
    return str(response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])


def tail(response: dict[str, Any]) -> str:
    return base64.b64decode(response["LogResult"]).decode()


@pytest.mark.slow
def test_bash_bootstrap_from_the_docs(lam: Any, make_function: Any) -> None:
    make_function("rapi-bash", package(docs_bash_example()), handler="function.handler", Runtime=RUNTIME)
    first, body = invoke(lam, "rapi-bash", {"a": 1}, LogType="Tail")
    assert "FunctionError" not in first
    assert body == {"echo": {"a": 1}}
    log = tail(first)
    assert 'got {"a": 1}' in log
    assert "Init Duration" in log  # a cold start
    warm, body = invoke(lam, "rapi-bash", {"b": [2]}, LogType="Tail")
    assert body == {"echo": {"b": [2]}}
    assert "Init Duration" not in tail(warm)  # the same sandbox, the same bootstrap loop

    make_function("rapi-bash-fail", package(docs_bash_example()), handler="function.fail", Runtime=RUNTIME)
    failed, body = invoke(lam, "rapi-bash-fail", {"a": 1})
    assert failed["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": "no luck", "errorType": "HandlerFailed"}
    _, body = invoke(lam, "rapi-bash-fail", {"a": 2})  # an error leaves the runtime usable
    assert body == {"errorMessage": "no luck", "errorType": "HandlerFailed"}


ENV_BOOTSTRAP = """#!/bin/bash
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  headers="$(mktemp)"
  curl -sS -D "$headers" -o /dev/null "$api/invocation/next"
  id="$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$headers" | cut -d: -f2 | tr -d '[:space:]')"
  arn="$(grep -i '^Lambda-Runtime-Invoked-Function-Arn:' "$headers" | cut -d' ' -f2 | tr -d '[:space:]')"
  deadline="$(grep -i '^Lambda-Runtime-Deadline-Ms:' "$headers" | cut -d: -f2 | tr -d '[:space:]')"
  body="$(printf '{"id":"%s","arn":"%s","deadline":%s,"cwd":"%s","uid":%s,"ppid1":"%s",' \
    "$id" "$arn" "$deadline" "$PWD" "$(id -u)" "$(cat /proc/1/comm)")"
  for name in AWS_LAMBDA_RUNTIME_API _HANDLER LAMBDA_TASK_ROOT LAMBDA_RUNTIME_DIR AWS_LAMBDA_FUNCTION_NAME \
      AWS_LAMBDA_FUNCTION_VERSION AWS_LAMBDA_FUNCTION_MEMORY_SIZE AWS_LAMBDA_LOG_GROUP_NAME \
      AWS_LAMBDA_LOG_STREAM_NAME AWS_REGION AWS_DEFAULT_REGION TZ LANG PATH LD_LIBRARY_PATH \
      AWS_LAMBDA_INITIALIZATION_TYPE AWS_EXECUTION_ENV AWS_ACCESS_KEY_ID MY_SETTING; do
    body="$body\\"$name\\":\\"${!name-unset}\\","
  done
  curl -sS -o /dev/null -X POST "$api/invocation/$id/response" --data-binary "${body%,}}"
done
"""


def test_environment_and_next_headers(lam: Any, make_function: Any) -> None:
    created = make_function(
        "rapi-env",
        package({"bootstrap": ENV_BOOTSTRAP}),
        handler="anything.goes",
        Runtime=RUNTIME,
        MemorySize=256,
        Environment={"Variables": {"MY_SETTING": "on"}},
    )
    response, body = invoke(lam, "rapi-env")
    assert body["id"] == request_id(response)
    assert body["arn"] == created["FunctionArn"]
    assert body["deadline"] > 0
    assert body["_HANDLER"] == "anything.goes"
    assert body["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert body["LAMBDA_TASK_ROOT"] == body["cwd"]
    assert body["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    assert body["AWS_LAMBDA_FUNCTION_NAME"] == "rapi-env"
    assert body["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert body["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert body["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/rapi-env"
    assert "[$LATEST]" in body["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert body["AWS_REGION"] == body["AWS_DEFAULT_REGION"] == "us-east-1"
    assert body["TZ"] == ":UTC"
    assert body["LANG"] == "en_US.UTF-8"
    assert body["PATH"] == "/usr/local/bin:/usr/bin/:/bin:/opt/bin"
    assert body["LD_LIBRARY_PATH"].startswith("/lib64:/usr/lib64:/var/runtime:")
    assert body["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert body["AWS_EXECUTION_ENV"] == "unset"  # not set for custom runtimes
    assert body["AWS_ACCESS_KEY_ID"] != "unset"
    assert body["MY_SETTING"] == "on"
    if body["uid"] != 0:  # confined (Squall runs as root): own uid, code at /var/task, PID 1 is Squall's
        assert body["cwd"] == "/var/task"
        assert body["ppid1"].startswith("python")
        # The Runtime API port is on the host's loopback, but serves only the sandbox's own user.
        host, port = body["AWS_LAMBDA_RUNTIME_API"].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            conn.request("GET", "/2018-06-01/runtime/invocation/next")
            conn.getresponse()
        conn.close()


EXIT_BOOTSTRAP = "#!/bin/sh\necho 'cannot start' >&2\nexit 3\n"
EXIT_LATER_BOOTSTRAP = """#!/bin/bash
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
curl -sS -o /dev/null "$api/invocation/next"
kill -9 $$
"""


def test_runtime_exit_is_an_exit_error(lam: Any, make_function: Any) -> None:
    make_function("rapi-exit", package({"bootstrap": EXIT_BOOTSTRAP}), handler="x.y", Runtime=RUNTIME)
    response, body = invoke(lam, "rapi-exit", LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    rid = request_id(response)
    assert body == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: exit status 3",
    }
    assert "cannot start" in tail(response)

    make_function("rapi-killed", package({"bootstrap": EXIT_LATER_BOOTSTRAP}), handler="x.y", Runtime=RUNTIME)
    response, body = invoke(lam, "rapi-killed")
    rid = request_id(response)
    assert body == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: signal: killed",
    }


def test_missing_or_unusable_bootstrap(lam: Any, make_function: Any) -> None:
    make_function("rapi-none", package({"function.sh": "x"}), handler="x.y", Runtime=RUNTIME)
    response, body = invoke(lam, "rapi-none")
    assert response["FunctionError"] == "Unhandled"
    rid = request_id(response)
    assert body["errorType"] == "Runtime.InvalidEntrypoint"
    # Confined, the code is at /var/task: "[/var/task/bootstrap /opt/bootstrap]", as on Lambda.
    assert body["errorMessage"].startswith(f"RequestId: {rid} Error: Couldn't find valid bootstrap(s): [")
    assert body["errorMessage"].endswith("/bootstrap /opt/bootstrap]")

    make_function("rapi-noexec", package({"bootstrap": "#!/bin/sh\n"}, executable=()), handler="x.y", Runtime=RUNTIME)
    response, body = invoke(lam, "rapi-noexec")
    assert body["errorType"] == "Runtime.InvalidEntrypoint"
    assert body["errorMessage"].endswith("/bootstrap: permission denied")


SLEEPY_BOOTSTRAP = """#!/bin/bash
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  headers="$(mktemp)"
  event="$(curl -sS -D "$headers" "$api/invocation/next")"
  id="$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$headers" | cut -d: -f2 | tr -d '[:space:]')"
  if [ "$event" = '"sleep"' ]; then sleep 30; fi
  curl -sS -o /dev/null -X POST "$api/invocation/$id/response" --data-binary '"awake"'
done
"""


@pytest.mark.slow
def test_timeout_kills_the_sandbox(lam: Any, make_function: Any) -> None:
    make_function("rapi-sleepy", package({"bootstrap": SLEEPY_BOOTSTRAP}), handler="x.y", Runtime=RUNTIME, Timeout=1)
    response, body = invoke(lam, "rapi-sleepy", "sleep")
    rid = request_id(response)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].startswith(f"RequestId: {rid} Error: Task timed out after 1.")
    _, body = invoke(lam, "rapi-sleepy", "now")  # a fresh sandbox
    assert body == "awake"


BIG_BOOTSTRAP = """#!/bin/bash
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
headers="$(mktemp)"
curl -sS -D "$headers" -o /dev/null "$api/invocation/next"
id="$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$headers" | cut -d: -f2 | tr -d '[:space:]')"
head -c 6291557 /dev/zero | tr '\\0' 'a' > /tmp/big
curl -sS -X POST "$api/invocation/$id/response" --data-binary @/tmp/big -w ' %{http_code}\\n' >&2
curl -sS -D "$headers" -o /dev/null "$api/invocation/next"
id="$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$headers" | cut -d: -f2 | tr -d '[:space:]')"
curl -sS -o /dev/null -X POST "$api/invocation/$id/response" --data-binary '"small"'
sleep 60
"""


def test_oversized_response(lam: Any, make_function: Any) -> None:
    make_function("rapi-big", package({"bootstrap": BIG_BOOTSTRAP}), handler="x.y", Runtime=RUNTIME)
    response, body = invoke(lam, "rapi-big", LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert body == {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": "Response payload size (6291557 bytes) exceeded maximum allowed payload size (6291556 bytes).",
    }
    after, body = invoke(lam, "rapi-big", LogType="Tail")  # the runtime carries on
    assert body == "small"
    # What the runtime was told, as curl printed it (while or after the first invocation ended).
    told = re.sub(r"(START|END|REPORT) RequestId: [^\n]*\n?", "", tail(response) + tail(after))
    assert (
        '{"errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).", '
        '"errorType": "RequestEntityTooLarge"} 413' in told
    )


# --- AWS's Python runtime interface client -----------------------------------------------------
RIC_APP = """
import os


def ok(event, context):
    print("handling", context.aws_request_id)
    return {"echo": event, "left_ms": context.get_remaining_time_in_millis(), "fn": context.function_name}


def boom(event, context):
    raise ValueError("kaboom")
"""


def ric_package() -> bytes:
    """app.py, a bootstrap running ``python3.X -m awslambdaric``, and the client vendored with its
    dependencies (copied from this interpreter's site-packages, so built for the same Python)."""
    files: dict[str, str | bytes] = {
        "app.py": RIC_APP,
        "bootstrap": (
            '#!/bin/sh\nexport PYTHONPATH="$LAMBDA_TASK_ROOT"\n'
            f'exec python{sys.version_info[0]}.{sys.version_info[1]} -m awslambdaric "$_HANDLER"\n'
        ),
    }
    for distribution in ("awslambdaric", "simplejson", "snapshot-restore-py"):
        # Every file the installed distribution put in site-packages (its native runtime_client too).
        for item in importlib.metadata.files(distribution) or []:
            path = Path(str(item.locate()))
            if path.is_file() and "__pycache__" not in item.parts and ".." not in item.parts:
                files[str(item)] = path.read_bytes()
    return package(files)


@pytest.fixture(scope="module")
def ric_zip() -> bytes:
    return ric_package()


@pytest.mark.slow
def test_awslambdaric_success(lam: Any, make_function: Any, ric_zip: bytes) -> None:
    make_function("rapi-ric-ok", ric_zip, handler="app.ok", Runtime=RUNTIME, Timeout=5)
    response, body = invoke(lam, "rapi-ric-ok", {"a": 1}, LogType="Tail")
    assert "FunctionError" not in response
    assert body["echo"] == {"a": 1}
    assert body["fn"] == "rapi-ric-ok"
    assert 3000 < body["left_ms"] <= 5000
    assert f"handling {request_id(response)}" in tail(response)
    _, body = invoke(lam, "rapi-ric-ok", {"b": 2})
    assert body["echo"] == {"b": 2}


@pytest.mark.slow
def test_awslambdaric_handler_error(lam: Any, make_function: Any, ric_zip: bytes) -> None:
    make_function("rapi-ric-boom", ric_zip, handler="app.boom", Runtime=RUNTIME)
    response, body = invoke(lam, "rapi-ric-boom", LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "kaboom"
    assert body["requestId"] == request_id(response)
    assert any("raise ValueError" in line for line in body["stackTrace"])
    assert "kaboom" in tail(response)


@pytest.mark.slow
def test_awslambdaric_init_error(lam: Any, make_function: Any, ric_zip: bytes) -> None:
    make_function("rapi-ric-missing", ric_zip, handler="app.missing", Runtime=RUNTIME)
    response, body = invoke(lam, "rapi-ric-missing")
    assert response["FunctionError"] == "Unhandled"
    assert body == {
        "errorMessage": "Handler 'missing' missing on module 'app'",
        "errorType": "Runtime.HandlerNotFound",
        "requestId": "",
        "stackTrace": [],
    }


ONCE_BOOTSTRAP = """#!/bin/bash
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
headers="$(mktemp)"
curl -sS -D "$headers" -o /dev/null "$api/invocation/next"
id="$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$headers" | cut -d: -f2 | tr -d '[:space:]')"
curl -sS -o /dev/null -X POST "$api/invocation/$id/response" --data-binary '"once"'
"""


def test_a_runtime_that_exits_after_responding_starts_afresh(lam: Any, make_function: Any) -> None:
    make_function("rapi-once", package({"bootstrap": ONCE_BOOTSTRAP}), handler="x.y", Runtime=RUNTIME)
    lingering = ONCE_BOOTSTRAP + "sleep 0.5\n"  # exits with the next event queued, not taken
    make_function("rapi-once-late", package({"bootstrap": lingering}), handler="x.y", Runtime=RUNTIME)
    for name in ("rapi-once", "rapi-once-late"):
        for pause in (0.0, 0.0, 0.8, 0.0):  # next call before, while or after the runtime exits
            response, body = invoke(lam, name, LogType="Tail")
            assert "FunctionError" not in response, body
            assert body == "once"
            time.sleep(pause)


def test_bootstrap_from_a_layer(lam: Any, make_function: Any) -> None:
    layer = lam.publish_layer_version(
        LayerName="rapi-bash-runtime",
        Content={"ZipFile": package({"bootstrap": docs_bash_example()["bootstrap"]})},
        CompatibleRuntimes=[RUNTIME],
    )
    make_function(
        "rapi-layered",
        package({"function.sh": docs_bash_example()["function.sh"]}, executable=()),
        handler="function.handler",
        Runtime=RUNTIME,
        Layers=[layer["LayerVersionArn"]],
    )
    _, body = invoke(lam, "rapi-layered", {"from": "opt"})
    assert body == {"echo": {"from": "opt"}}


@pytest.mark.slow
def test_init_limit_is_ten_seconds(lam: Any, make_function: Any) -> None:
    """A bootstrap that never asks for its first event is stopped after Lambda's 10 s init limit."""
    make_function(
        "rapi-slow-init", package({"bootstrap": "#!/bin/sh\nexec sleep 60\n"}), handler="x.y", Runtime=RUNTIME
    )
    started = time.monotonic()
    response, body = invoke(lam, "rapi-slow-init")
    assert 9.5 < time.monotonic() - started < 20
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"


# --- the examples of docs/runtimes.md, language by language, run as a reader runs them ----------
def _toolchain(command: str) -> None:
    """Tests of other languages need their toolchain on the machine; CI installs them."""
    if shutil.which(command) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{command} is not installed")
        pytest.skip(f"{command} is not installed")


def docs_example(heading: str) -> tuple[dict[str, str], str]:
    """The files and the console block of the example under ``heading`` (a whole line of
    docs/runtimes.md), up to the next heading of its level or above. A file is a fenced block whose
    preceding line ends with ```name`:``; code blocks without such a line are not part of it."""
    lines = DOCS.read_text().splitlines()
    level = heading.split(" ", 1)[0]
    files: dict[str, str] = {}
    console, fence, label, body, previous = "", None, None, [], ""
    for line in lines[lines.index(heading) + 1 :]:
        heading_level = re.match(r"(#+) ", line) if fence is None else None
        if heading_level and len(heading_level.group(1)) <= len(level):
            break
        if line.startswith("```"):
            if fence is None:
                fence, body = line[3:], []
                found = re.search(r"`([^`\s]+)`:$", previous)
                label = found.group(1) if found else None
            else:
                if fence == "console" and not console:
                    console = "\n".join(body) + "\n"
                elif label:
                    files[label] = "\n".join(body) + "\n"
                fence = None
        elif fence is not None:
            body.append(line)
        if line.strip():
            previous = line
    return files, console


def console_commands(block: str) -> list[tuple[str, str]]:
    """(command, the output shown after it) for each ``$`` line of a console block; a line ending
    in a backslash goes on on the next one."""
    commands: list[tuple[str, str]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], ""))
        elif commands and commands[-1][0].endswith("\\") and not commands[-1][1]:
            commands[-1] = (commands[-1][0] + "\n" + line, "")
        elif commands:
            commands[-1] = (commands[-1][0], commands[-1][1] + line + "\n")
    return commands


def json_values(text: str) -> list[Any]:
    """The JSON documents printed one after another in ``text`` (the CLI's answer, then a file)."""
    decoder, values, position = json.JSONDecoder(), [], 0
    while text[position:].strip():
        position += len(text[position:]) - len(text[position:].lstrip())
        value, position = decoder.raw_decode(text, position)
        values.append(value)
    return values


def run_docs_example(heading: str, squall: Any, workdir: Path, **extra_env: str) -> tuple[dict[str, str], str]:
    """Write the example's files into ``workdir`` and run its commands there with the AWS CLI
    pointed at the test server: each must succeed and print what the page shows after it (compared
    as JSON). Returns the files and the name of the function the commands created."""
    files, console = docs_example(heading)
    commands = console_commands(console)
    assert files and commands, f"no example under {heading!r}"
    workdir.mkdir(parents=True)
    for name, content in files.items():
        (workdir / name).write_text(content)
    env = {
        **squall.cli_env(),
        "AWS_ENDPOINT_URL": squall.url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        **extra_env,
    }
    for command, shown in commands:
        result = subprocess.run(
            ["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        if shown.strip():
            assert json_values(result.stdout) == json_values(shown), command
    created = re.search(r"create-function --function-name (\S+)", console)
    assert created, console
    return files, created.group(1)


@pytest.fixture
def delete_afterwards(lam: Any) -> Any:
    """Names of functions a test's commands created, deleted when the test ends."""
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            lam.delete_function(FunctionName=name)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("heading", "tool"), [("## Python", "python3.11"), ("### Example: a bash function", "curl"), ("## Node.js", "node")]
)
def test_docs_example_commands(
    heading: str, tool: str, squall: Any, lam: Any, tmp_path: Path, delete_afterwards: list[str]
) -> None:
    _toolchain(tool)
    _, name = run_docs_example(heading, squall, tmp_path / "example")
    delete_afterwards.append(name)
    response, _ = invoke(lam, name, {"name": "Ada", "a": 1}, LogType="Tail")
    assert "FunctionError" not in response, tail(response)


def round_trips(lam: Any, name: str, who: str, error_type: str) -> dict[str, Any]:
    """One success (the greeting, and the handler's log line) and one error (an event without a
    name: the caller gets the runtime's error body), then a success again: an error leaves the
    runtime usable. Returns the first success's response."""
    response, body = invoke(lam, name, {"name": who}, LogType="Tail")
    assert body == {"greeting": f"Hello, {who}!"}, tail(response)
    assert f"hello from {name}" in tail(response)
    failed, body = invoke(lam, name, {}, LogType="Tail")
    assert failed.get("FunctionError") == "Unhandled", tail(failed)
    assert body == {"errorMessage": "no name given", "errorType": error_type}
    _, body = invoke(lam, name, {"name": "again"})
    assert body == {"greeting": "Hello, again!"}
    return response


@pytest.mark.slow
def test_ruby_bootstrap_from_the_docs(
    squall: Any, lam: Any, make_function: Any, tmp_path: Path, delete_afterwards: list[str]
) -> None:
    _toolchain("ruby")
    files, name = run_docs_example("### Ruby", squall, tmp_path / "ruby")
    delete_afterwards.append(name)
    response = round_trips(lam, name, "Ruby", "ArgumentError")
    assert f"hello from {name} ({request_id(response)})" in tail(response)

    # A handler the runtime cannot find is its init error, which the caller gets as Lambda gives it.
    make_function("rapi-ruby-missing", package(files), handler="function.missing", Runtime=RUNTIME)
    response, body = invoke(lam, "rapi-ruby-missing")
    assert response["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": "Handler 'missing' missing on 'function'", "errorType": "Runtime.HandlerNotFound"}
    make_function("rapi-ruby-nofile", package(files), handler="nowhere.handler", Runtime=RUNTIME)
    _, body = invoke(lam, "rapi-ruby-nofile")
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "nowhere" in body["errorMessage"]


@pytest.mark.slow
@pytest.mark.timeout(300)  # the first `go build` on a fresh machine compiles the standard library
def test_go_bootstrap_from_the_docs(squall: Any, lam: Any, tmp_path: Path, delete_afterwards: list[str]) -> None:
    _toolchain("go")
    # The page's `go build`, on a fresh machine too: caches under tmp, no network, no toolchain switch.
    go_env = {
        "GOCACHE": str(tmp_path / "gocache"),
        "GOPATH": str(tmp_path / "gopath"),
        "GOENV": "off",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "",
    }
    _, name = run_docs_example("### Go", squall, tmp_path / "go", **go_env)
    delete_afterwards.append(name)
    round_trips(lam, name, "Go", "HandlerError")


@pytest.mark.slow
@pytest.mark.timeout(300)  # a JVM compiling the source on a loaded machine
def test_java_bootstrap_from_the_docs(squall: Any, lam: Any, tmp_path: Path, delete_afterwards: list[str]) -> None:
    _toolchain("java")
    _, name = run_docs_example("### Java", squall, tmp_path / "java")
    delete_afterwards.append(name)
    round_trips(lam, name, "Java", "IllegalArgumentException")
