"""Custom runtimes (``provided.al2023``) driven by real Runtime API clients: the bash bootstrap of
docs/runtimes.md (curl) and AWS's Python runtime interface client ``awslambdaric``."""

from __future__ import annotations

import base64
import http.client
import importlib.metadata
import io
import json
import os
import re
import shutil
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


# --- other languages, each with its standard HTTP client -----------------------------------------
JAVA_RUNTIME = """
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Runtime {
    public static void main(String[] args) throws Exception {
        String api = "http://" + System.getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/";
        boolean echo = System.getenv("_HANDLER").equals("echo");
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        while (true) {
            HttpResponse<String> next = client.send(
                HttpRequest.newBuilder(URI.create(api + "next")).build(), HttpResponse.BodyHandlers.ofString());
            String id = next.headers().firstValue("Lambda-Runtime-Aws-Request-Id").orElseThrow();
            HttpRequest.Builder post;
            if (echo) {
                String body = "{\\"java\\": " + next.body() + "}";
                post = HttpRequest.newBuilder(URI.create(api + id + "/response"))
                    .POST(HttpRequest.BodyPublishers.ofString(body));
            } else {
                String body = "{\\"errorMessage\\": \\"no luck in java\\", "
                    + "\\"errorType\\": \\"IllegalStateException\\"}";
                post = HttpRequest.newBuilder(URI.create(api + id + "/error"))
                    .header("Lambda-Runtime-Function-Error-Type", "Function.IllegalStateException")
                    .POST(HttpRequest.BodyPublishers.ofString(body));
            }
            client.send(post.build(), HttpResponse.BodyHandlers.discarding());
        }
    }
}
"""
JAVA_BOOTSTRAP = '#!/bin/sh\nexec java -XX:+UseSerialGC -Xmx64m -Xss512k "$LAMBDA_TASK_ROOT/Runtime.java"\n'


def _toolchain(command: str) -> None:
    """Tests of other languages need their toolchain on the machine; CI installs them."""
    if shutil.which(command) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{command} is not installed")
        pytest.skip(f"{command} is not installed")


@pytest.mark.slow
def test_java_bootstrap(lam: Any, make_function: Any) -> None:
    _toolchain("java")
    code = package({"bootstrap": JAVA_BOOTSTRAP, "Runtime.java": JAVA_RUNTIME})
    make_function("rapi-java", code, handler="echo", Runtime=RUNTIME, MemorySize=512, Timeout=10)
    response, body = invoke(lam, "rapi-java", {"a": 1}, LogType="Tail")
    assert "FunctionError" not in response, tail(response)
    assert body == {"java": {"a": 1}}
    _, body = invoke(lam, "rapi-java", {"b": 2})
    assert body == {"java": {"b": 2}}
    make_function("rapi-java-fail", code, handler="fail", Runtime=RUNTIME, MemorySize=512, Timeout=10)
    response, body = invoke(lam, "rapi-java-fail")
    assert response["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": "no luck in java", "errorType": "IllegalStateException"}
