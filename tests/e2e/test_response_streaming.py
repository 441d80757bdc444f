"""Streamed responses end to end: custom runtimes and Node functions that stream through the Runtime
API, read back with boto3's ``invoke_with_response_stream`` and over streaming function URLs."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_zip
from tests.e2e.conftest import SquallServer
from tests.e2e.test_runtime_api import RUNTIME, package

pytestmark = pytest.mark.e2e

# A bash bootstrap whose handler streams ten lines, 0.3 s apart, with curl's chunked upload (-T -).
BASH_STREAMING = r"""#!/bin/bash
set -euo pipefail
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  HEADERS="$(mktemp)"
  curl -sS -LD "$HEADERS" -o /tmp/event "$API/invocation/next"
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  for i in $(seq 1 "${CHUNKS:-10}"); do echo "line $i"; sleep "${PAUSE:-0.3}"; done |
    curl -sS -X POST -T - -o /dev/null \
      -H "Lambda-Runtime-Function-Response-Mode: streaming" -H "Content-Type: text/plain" \
      "$API/invocation/$ID/response"
done
"""


def events_of(response: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
    """Every event of the response's EventStream, with the time it arrived."""
    return [(time.monotonic(), event) for event in response["EventStream"]]


def body_and_completion(events: list[tuple[float, dict[str, Any]]]) -> tuple[bytes, dict[str, Any]]:
    chunks = [event["PayloadChunk"]["Payload"] for _, event in events if "PayloadChunk" in event]
    completes = [event["InvokeComplete"] for _, event in events if "InvokeComplete" in event]
    assert len(completes) == 1 and "InvokeComplete" in events[-1][1]
    return b"".join(chunks), completes[0]


@pytest.mark.slow
def test_bash_stream_arrives_chunk_by_chunk(lam: Any, make_function: Any) -> None:
    make_function("stream-bash", package({"bootstrap": BASH_STREAMING}), handler="x", Runtime=RUNTIME, Timeout=30)
    lam.invoke(FunctionName="stream-bash")  # warm it up, so the cold start does not count
    started = time.monotonic()
    response = lam.invoke_with_response_stream(FunctionName="stream-bash", Payload=b"{}")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseStreamContentType"] == "application/vnd.amazon.eventstream"
    events = events_of(response)
    body, complete = body_and_completion(events)
    assert body == b"".join(f"line {i}\n".encode() for i in range(1, 11))
    assert complete == {}
    chunk_times = [at for at, event in events if "PayloadChunk" in event]
    assert len(chunk_times) >= 5  # one per line, or near it (curl may join lines read together)
    first, total = chunk_times[0] - started, events[-1][0] - started
    # The function takes ~3 s; the first line comes right away, not with the last one.
    assert total > 2.5
    assert first < total / 2, (first, total)


@pytest.mark.slow
def test_plain_invoke_of_a_streaming_function_gets_it_whole(lam: Any, make_function: Any) -> None:
    code = package({"bootstrap": BASH_STREAMING})
    make_function("stream-bash-whole", code, handler="x", Runtime=RUNTIME, Environment={"Variables": {"PAUSE": "0"}})
    response = lam.invoke(FunctionName="stream-bash-whole")
    assert "FunctionError" not in response
    assert response["Payload"].read() == b"".join(f"line {i}\n".encode() for i in range(1, 11))


# A Node handler module that runs unmodified on Lambda: streamifyResponse, HttpResponseStream.
NODE_HANDLERS = r"""
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const lines = awslambda.streamifyResponse(async (input, responseStream, context) => {
  const event = input.requestContext ? JSON.parse(input.body) : input;  // called through a URL
  responseStream.setContentType("text/plain");
  for (let i = 1; i <= (event.chunks ?? 10); i++) {
    responseStream.write(`line ${i}\n`);
    await sleep(event.pause ?? 300);
  }
  if (event.fail) throw new Error("mid-stream failure");
  responseStream.end();
});

export const page = awslambda.streamifyResponse(async (event, responseStream) => {
  const stream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201,
    headers: { "content-type": "text/html", "x-served-by": "node" },
    cookies: ["a=1"],
  });
  stream.write("<p>first</p>");
  await sleep(event.pause ?? 1000);
  stream.write("<p>second</p>");
  stream.end();
});

export const whole = async (event) => ({ whole: event });

export const boom = async () => {
  throw new TypeError("kaboom");
};
"""
NODE_RUNTIME = "nodejs20.x"


def node_files() -> dict[str, str | bytes]:
    return {"app.mjs": NODE_HANDLERS}


def stream_invoke(lam: Any, name: str, event: Any, **kwargs: Any) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
    response = lam.invoke_with_response_stream(FunctionName=name, Payload=json.dumps(event).encode(), **kwargs)
    body, complete = body_and_completion(events_of(response))
    return response, body, complete


@pytest.fixture
def node_function(make_function: Any) -> Any:
    def create(name: str, handler: str, **kwargs: Any) -> str:
        if shutil.which("node") is None:
            if os.environ.get("CI"):
                pytest.fail("node is not installed")
            pytest.skip("node is not installed")
        make_function(name, package(node_files()), handler=handler, Runtime=NODE_RUNTIME, Timeout=30, **kwargs)
        return name

    return create


@pytest.mark.slow
def test_node_streamify_response(lam: Any, node_function: Any) -> None:
    name = node_function("stream-node", "app.lines")
    started = time.monotonic()
    response = lam.invoke_with_response_stream(FunctionName=name, Payload=b'{"chunks": 10, "pause": 300}')
    events = events_of(response)
    body, complete = body_and_completion(events)
    assert body == b"".join(f"line {i}\n".encode() for i in range(1, 11))
    assert complete == {}
    chunk_times = [at - started for at, event in events if "PayloadChunk" in event]
    assert len(chunk_times) >= 5
    assert chunk_times[0] < (events[-1][0] - started) / 2

    # A failure mid-stream: the chunks sent before it, then InvokeComplete with the error.
    _, body, complete = stream_invoke(lam, name, {"chunks": 2, "pause": 0, "fail": True})
    assert body == b"line 1\nline 2\n"
    assert complete["ErrorCode"] == "Error"
    assert complete["ErrorDetails"] == "mid-stream failure"
    # The runtime goes on after a failed stream.
    _, body, complete = stream_invoke(lam, name, {"chunks": 1, "pause": 0})
    assert (body, complete) == (b"line 1\n", {})
    # Plain Invoke of the same handler gets the whole stream as its payload.
    whole = lam.invoke(FunctionName=name, Payload=b'{"chunks": 3, "pause": 0}')
    assert whole["Payload"].read() == b"line 1\nline 2\nline 3\n"


@pytest.mark.slow
def test_timeout_mid_stream(lam: Any, node_function: Any, make_function: Any) -> None:
    make_function("stream-node-slow", package(node_files()), handler="app.lines", Runtime=NODE_RUNTIME, Timeout=2)
    _, body, complete = stream_invoke(lam, "stream-node-slow", {"chunks": 10, "pause": 500})
    assert body.startswith(b"line 1\n") and b"line 10" not in body
    assert complete["ErrorCode"] == "Sandbox.Timedout"
    assert re.search(r"Error: Task timed out after 2\.\d\d seconds$", complete["ErrorDetails"])


@pytest.mark.slow
def test_buffered_functions_arrive_as_one_chunk(lam: Any, node_function: Any, make_function: Any) -> None:
    name = node_function("stream-node-whole", "app.whole")
    response, body, complete = stream_invoke(lam, name, {"a": 1}, LogType="Tail")
    assert json.loads(body) == {"whole": {"a": 1}}
    assert "START RequestId" in base64.b64decode(complete["LogResult"]).decode()
    assert response["ExecutedVersion"] == "$LATEST"

    make_function("stream-python", PYTHON_CODE, handler="app.handler")
    events = events_of(lam.invoke_with_response_stream(FunctionName="stream-python", Payload=b'{"n": 2}'))
    assert [event for _, event in events][:-1] == [{"PayloadChunk": {"Payload": b'{"doubled": 4}'}}]
    _, _, complete = stream_invoke(lam, "stream-python", {"fail": True})
    assert complete["ErrorCode"] == "ValueError"
    assert complete["ErrorDetails"] == "no good"


def test_errors_before_the_stream_starts(lam: Any, make_function: Any) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as missing:
        lam.invoke_with_response_stream(FunctionName="stream-nobody", Payload=b"{}")
    assert missing.value.response["Error"]["Message"].startswith("Function not found: ")
    make_function("stream-python-dry", PYTHON_CODE, handler="app.handler")
    dry = lam.invoke_with_response_stream(FunctionName="stream-python-dry", Payload=b"{}", InvocationType="DryRun")
    assert dry["StatusCode"] == 204
    assert list(dry["EventStream"]) == []
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke_with_response_stream(FunctionName="stream-python-dry", Payload=b"{not json")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke_with_response_stream(FunctionName="stream-python-dry", Qualifier="7", Payload=b"{}")


PYTHON_CODE = make_zip(
    {
        "app.py": "def handler(event, context):\n"
        "    if event.get('fail'):\n"
        "        raise ValueError('no good')\n"
        "    return {'doubled': event['n'] * 2}\n"
    }
)


def url_of(lam: Any, squall: SquallServer, name: str) -> str:
    created = lam.create_function_url_config(FunctionName=name, AuthType="NONE", InvokeMode="RESPONSE_STREAM")
    url_id = re.match(r"http://([a-z0-9]+)\.lambda-url\.", created["FunctionUrl"])
    assert url_id is not None
    return f"http://127.0.0.1:{squall.gateway_port}/_lambda-url/{url_id.group(1)}/"


def read_timed(url: str) -> tuple[httpx.Response, list[tuple[float, bytes]]]:
    """The response and each body piece with the time it arrived."""
    pieces = []
    started = time.monotonic()
    with httpx.stream("GET", url, timeout=30) as response:
        for piece in response.iter_raw():
            pieces.append((time.monotonic() - started, piece))
    return response, pieces


@pytest.mark.slow
def test_function_url_streams_with_the_prelude(lam: Any, squall: SquallServer, node_function: Any) -> None:
    url = url_of(lam, squall, node_function("stream-url-page", "app.page"))
    response, pieces = read_timed(url + "?q=1")
    assert response.status_code == 201
    assert response.headers["content-type"] == "text/html"
    assert response.headers["x-served-by"] == "node"
    assert response.headers["set-cookie"] == "a=1"
    assert response.headers["transfer-encoding"] == "chunked"
    assert b"".join(piece for _, piece in pieces) == b"<p>first</p><p>second</p>"
    # The first part is on the wire a second before the second one.
    first = next(at for at, piece in pieces if b"first" in piece)
    second = next(at for at, piece in pieces if b"second" in piece)
    assert second - first > 0.5


@pytest.mark.slow
def test_function_url_streams_a_plain_stream(lam: Any, squall: SquallServer, node_function: Any) -> None:
    url = url_of(lam, squall, node_function("stream-url-lines", "app.lines"))
    with httpx.stream("POST", url, json={"chunks": 3, "pause": 0}, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain"
        assert response.read() == b"line 1\nline 2\nline 3\n"
    # A failure mid-stream ends the body after what was sent.
    answer = httpx.post(url, json={"chunks": 2, "pause": 0, "fail": True}, timeout=30)
    assert answer.content == b"line 1\nline 2\n"


def test_function_url_of_a_buffered_function_in_stream_mode(lam: Any, squall: SquallServer, make_function: Any) -> None:
    make_function("stream-url-python", PYTHON_CODE, handler="app.handler")
    url = url_of(lam, squall, "stream-url-python")
    answer = httpx.post(url, content=b"{}", timeout=30)
    # The Python handler reads the URL event (no "n" at its top level): a function error, Lambda's 502.
    assert answer.status_code == 502


# --- AWS's Node runtime interface client -------------------------------------------------------------
RIC_VERSION = "3.3.0"
RIC_CACHE = Path(__file__).resolve().parents[2] / ".cache" / f"aws-lambda-ric-{RIC_VERSION}"
#: What building aws-lambda-ric's native client needs (Debian: autoconf automake libtool cmake g++).
RIC_BUILD_TOOLS = ("node", "npm", "autoreconf", "automake", "libtoolize", "cmake", "g++", "make")
RIC_BOOTSTRAP = '#!/bin/sh\ncd "$LAMBDA_TASK_ROOT"\nexec node node_modules/aws-lambda-ric/bin/index.mjs "$_HANDLER"\n'


def _build_ric(target: Path) -> None:
    """npm install aws-lambda-ric (its install scripts approved, so its native client is built)."""
    work = target.with_name(target.name + f".building-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    steps = [
        ["npm", "init", "-y"],
        ["npm", "install", "--no-audit", "--no-fund", f"aws-lambda-ric@{RIC_VERSION}"],
        ["npm", "install-scripts", "approve", "aws-lambda-ric"],
        ["npm", "rebuild", "aws-lambda-ric", "--foreground-scripts"],
    ]
    for step in steps:
        if step[1] == "install-scripts" and not _npm_has_install_scripts():
            continue  # an npm that runs install scripts without approval (before npm 11)
        done = subprocess.run(step, cwd=work, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    if not (work / "node_modules/aws-lambda-ric/dist/rapid-client.node").is_file():
        raise RuntimeError("aws-lambda-ric was installed without its native client")
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)


def _npm_has_install_scripts() -> bool:
    return subprocess.run(["npm", "install-scripts", "--help"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def ric_files() -> dict[str, str | bytes]:
    """The files of aws-lambda-ric a function ships (bin, dist with the native client, package.json),
    built once into a git-ignored cache and reused while it is there."""
    missing = [tool for tool in RIC_BUILD_TOOLS if shutil.which(tool) is None]
    module = RIC_CACHE / "node_modules" / "aws-lambda-ric"
    if not (module / "dist" / "rapid-client.node").is_file():
        if missing:
            message = f"building aws-lambda-ric needs {', '.join(missing)}"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        _build_ric(RIC_CACHE)
    files: dict[str, str | bytes] = {}
    for path in [module / "package.json", *(module / "bin").rglob("*"), *(module / "dist").rglob("*")]:
        if path.is_file():
            files[f"node_modules/aws-lambda-ric/{path.relative_to(module)}"] = path.read_bytes()
    return files


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first run on a machine builds aws-lambda-ric's native client (minutes)
def test_aws_lambda_ric(lam: Any, make_function: Any, ric_files: dict[str, str | bytes]) -> None:
    files = {**ric_files, "app.mjs": NODE_HANDLERS, "bootstrap": RIC_BOOTSTRAP}
    code = package(files, executable=("bootstrap",))

    # Success, as a whole (buffered) answer.
    make_function("ric-whole", code, handler="app.whole", Runtime=RUNTIME, Timeout=30)
    response = lam.invoke(FunctionName="ric-whole", Payload=b'{"a": 1}', LogType="Tail")
    assert "FunctionError" not in response, base64.b64decode(response["LogResult"]).decode()
    assert json.loads(response["Payload"].read()) == {"whole": {"a": 1}}

    # A handler error, with the payload shape of AWS's Node runtime.
    make_function("ric-boom", code, handler="app.boom", Runtime=RUNTIME, Timeout=30)
    failed = lam.invoke(FunctionName="ric-boom", Payload=b"{}")
    assert failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert (error["errorType"], error["errorMessage"]) == ("TypeError", "kaboom")
    assert error["trace"][0] == "TypeError: kaboom"
    _, _, complete = stream_invoke(lam, "ric-boom", {})
    assert (complete["ErrorCode"], complete["ErrorDetails"]) == ("TypeError", "kaboom")

    # A stream, chunk by chunk; then one that fails mid-way.
    make_function("ric-stream", code, handler="app.lines", Runtime=RUNTIME, Timeout=30)
    started = time.monotonic()
    events = events_of(
        lam.invoke_with_response_stream(FunctionName="ric-stream", Payload=b'{"chunks": 5, "pause": 400}')
    )
    body, complete = body_and_completion(events)
    assert body == b"".join(f"line {i}\n".encode() for i in range(1, 6))
    assert complete == {}
    first = next(at for at, event in events if "PayloadChunk" in event) - started
    assert first < (events[-1][0] - started) / 2
    _, body, complete = stream_invoke(lam, "ric-stream", {"chunks": 2, "pause": 0, "fail": True})
    assert body == b"line 1\nline 2\n"
    assert (complete["ErrorCode"], complete["ErrorDetails"]) == ("Error", "mid-stream failure")
    _, body, complete = stream_invoke(lam, "ric-stream", {"chunks": 1, "pause": 0})
    assert (body, complete) == (b"line 1\n", {})


@pytest.mark.slow
def test_docs_example(squall: SquallServer, node_function: Any, tmp_path: Path) -> None:
    section = (
        (Path(__file__).resolve().parents[2] / "docs" / "runtimes.md").read_text().split("## Streamed responses")[1]
    )
    handler = re.findall(r"```js\n(.*?)```", section, re.S)[0]
    reader = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    lam = squall.client("lambda")
    lam.create_function(
        FunctionName="countdown",
        Runtime=NODE_RUNTIME,
        Role="arn:aws:iam::000000000000:role/any",
        Handler="index.handler",
        Code={"ZipFile": package({"index.mjs": handler})},
    )
    try:
        lam.get_waiter("function_active_v2").wait(FunctionName="countdown", WaiterConfig={"Delay": 0.05})
        env = {**squall.cli_env(), "AWS_ENDPOINT_URL": squall.url}
        started = time.monotonic()
        with subprocess.Popen(
            [sys.executable, "-u", "-c", reader.replace("http://127.0.0.1:8990", squall.url)],
            stdout=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        ) as process:
            assert process.stdout is not None
            first = process.stdout.readline()
            first_at = time.monotonic() - started
            rest = process.stdout.read()
            total = time.monotonic() - started
            assert process.wait(timeout=60) == 0
        assert first + rest == b"3...\n2...\n1...\nliftoff\ndone: no error\n"
        assert total - first_at > 1.0  # the first line came well before the end
    finally:
        lam.delete_function(FunctionName="countdown")
