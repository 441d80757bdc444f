"""Squall's Node.js shim (``squall/runtime/bootstrap/node/index.mjs``) against the real Runtime API:
CommonJS and ES module handlers, async/promise/callback styles, context, errors and log lines.

Functions run on ``nodejs20.x`` (served by the machine's node, 20 or newer); the docs' example also
runs the shim as a ``provided.al2023`` function's ``bootstrap``."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

import squall.runtime.bootstrap

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "runtimes.md"
SHIM = Path(squall.runtime.bootstrap.__file__).parent / "node" / "index.mjs"
NODE = shutil.which("node")
#: Served by any node 20 or newer (Squall runs nodejs<N>.x on an installed node of major >= N).
RUNTIME = "nodejs20.x"


@pytest.fixture(autouse=True)
def _node_installed() -> None:
    """These tests need Node.js 18+ on the machine; CI installs it, so there they fail instead."""
    if NODE is None:
        if os.environ.get("CI"):
            pytest.fail("node is not installed")
        pytest.skip("node is not installed: Node.js 18+ is needed for these tests")


def package(files: dict[str, str]) -> bytes:
    """A zip of ``files``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def invoke(lam: Any, name: str, event: Any = None) -> tuple[dict[str, Any], Any, str]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail")
    body = response["Payload"].read()
    return response, json.loads(body) if body else None, base64.b64decode(response["LogResult"]).decode()


def deploy(make_function: Any, name: str, files: dict[str, str], handler: str) -> None:
    make_function(name, package(files), handler=handler, Runtime=RUNTIME)


CJS = "exports.handler = async (event, context) => ({ cjs: event.x, id: context.awsRequestId });\n"
ESM = "const base = await Promise.resolve(40);\nexport const handler = async (event) => ({ esm: base + event.x });\n"


def test_commonjs_and_esm_handlers(lam: Any, make_function: Any) -> None:
    deploy(make_function, "node-cjs", {"index.js": CJS}, "index.handler")
    response, body, log = invoke(lam, "node-cjs", {"x": 1})
    assert body == {"cjs": 1, "id": response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]}, log
    deploy(make_function, "node-mjs", {"src/app.mjs": ESM}, "src/app.handler")
    assert invoke(lam, "node-mjs", {"x": 2})[1] == {"esm": 42}
    deploy(make_function, "node-typemodule", {"app.js": ESM, "package.json": '{"type": "module"}'}, "app.handler")
    assert invoke(lam, "node-typemodule", {"x": 1})[1] == {"esm": 41}
    deploy(
        make_function,
        "node-cjsext",
        {"app.cjs": "module.exports.nested = { fn: (e) => Promise.resolve(e.x * 3) };"},
        "app.nested.fn",
    )
    assert invoke(lam, "node-cjsext", {"x": 3})[1] == 9


def test_callback_context_and_node_modules(lam: Any, make_function: Any) -> None:
    code = """
const helper = require("helper");
exports.handler = (event, context, callback) => {
  setTimeout(() => console.log("late timer ran"), 50);
  callback(null, {
    helped: helper.twice(event.x),
    functionName: context.functionName,
    memory: context.memoryLimitInMB,
    arn: context.invokedFunctionArn,
    group: context.logGroupName,
    remaining: context.getRemainingTimeInMillis() > 0,
    waits: context.callbackWaitsForEmptyEventLoop,
  });
};
"""
    files = {"index.js": code, "node_modules/helper/index.js": "exports.twice = (x) => 2 * x;"}
    deploy(make_function, "node-cb", files, "index.handler")
    response, body, log = invoke(lam, "node-cb", {"x": 5})
    assert "FunctionError" not in response
    assert body["helped"] == 10 and body["functionName"] == "node-cb" and body["waits"] is True
    assert body["memory"] == "128" and body["group"] == "/aws/lambda/node-cb" and body["remaining"] is True
    assert body["arn"].endswith(":function:node-cb")
    assert "late timer ran" in log  # the callback waited for the event loop to empty


def test_console_format(lam: Any, make_function: Any) -> None:
    code = 'exports.handler = async () => { console.log("hello %s", "world"); console.error("bad"); return 1; };'
    deploy(make_function, "node-log", {"index.js": code}, "index.handler")
    response, _, log = invoke(lam, "node-log")
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert re.search(rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{request_id}\tINFO\thello world$", log, re.M)
    assert re.search(rf"Z\t{request_id}\tERROR\tbad$", log, re.M)


def test_handler_error_payload(lam: Any, make_function: Any) -> None:
    code = 'exports.handler = async () => { throw new TypeError("no luck"); };'
    deploy(make_function, "node-err", {"index.js": code}, "index.handler")
    response, body, _ = invoke(lam, "node-err")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "TypeError" and body["errorMessage"] == "no luck"
    assert body["trace"][0] == "TypeError: no luck" and body["trace"][1].startswith("    at ")
    assert invoke(lam, "node-err")[1]["errorMessage"] == "no luck"  # the runtime stays usable


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (
            {"other.js": ""},
            "index.handler",
            "Runtime.ImportModuleError",
            "Error: Cannot find module 'index'\nRequire stack:\n- /var/runtime/index.mjs",
        ),
        (
            {"index.js": "exports.other = 1;"},
            "index.handler",
            "Runtime.HandlerNotFound",
            "index.handler is undefined or not exported",
        ),
        (
            {"index.js": "exports.handler = ;"},
            "index.handler",
            "Runtime.UserCodeSyntaxError",
            "SyntaxError: Unexpected token ';'",
        ),
    ],
)
def test_init_errors(
    lam: Any, make_function: Any, files: dict[str, str], handler: str, error_type: str, message: str
) -> None:
    name = "node-init-" + error_type.split(".")[1].lower()
    deploy(make_function, name, files, handler)
    response, body, log = invoke(lam, name)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == error_type
    assert body["errorMessage"].startswith(message)
    assert body["trace"][0] == f"{error_type}: {body['errorMessage'].splitlines()[0]}"
    assert "\tundefined\tERROR\tUncaught Exception \t{" in log  # logged before any request, as on Lambda


def test_unhandled_rejection(lam: Any, make_function: Any) -> None:
    code = """exports.handler = async () => {
  Promise.reject(new Error("lost"));
  await new Promise((r) => setTimeout(r, 100));
  return 1;
};"""
    deploy(make_function, "node-reject", {"index.js": code}, "index.handler")
    response, body, _ = invoke(lam, "node-reject")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert body["errorMessage"] == "Error: lost"
    assert body["trace"][0] == "Runtime.UnhandledPromiseRejection: Error: lost"


def test_docs_example(lam: Any, make_function: Any) -> None:
    section = DOCS.read_text().split("## Node.js", 1)[1]
    handler = re.findall(r"```js\n(.*?)```", section, re.S)[0]
    bootstrap = re.findall(r"```sh\n(.*?)```", section, re.S)[0]
    make_function("node-docs", package({"index.mjs": handler}), handler="index.handler", Runtime="nodejs20.x")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o100755 << 16
        archive.writestr(info, bootstrap)
        archive.writestr("squall-runtime/index.mjs", SHIM.read_text())
        archive.writestr("index.mjs", handler)
    make_function("node-docs-provided", buffer.getvalue(), handler="index.handler", Runtime="provided.al2023")
    for name in ("node-docs", "node-docs-provided"):
        _, body, log = invoke(lam, name, {"name": "Squall"})
        assert body == {"greeting": "Hello, Squall!"}
        assert f"\tINFO\thello from {name}\n" in log


def test_promise_handler_and_context_details(lam: Any, make_function: Any) -> None:
    code = """
exports.handler = (event, context) => Promise.resolve({
  version: context.functionVersion,
  id: context.awsRequestId,
  stream: context.logStreamName,
  client: context.clientContext,
  identity: context.identity ?? null,
});
"""
    deploy(make_function, "node-promise", {"index.js": code}, "index.handler")
    client = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    response = lam.invoke(FunctionName="node-promise", Payload=b"{}", ClientContext=client)
    body = json.loads(response["Payload"].read())
    assert body["version"] == "$LATEST"
    assert body["id"] == response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", body["stream"])
    assert body["client"]["custom"] == {"k": "v"}
    assert body["identity"] is None


def test_callback_without_waiting(lam: Any, make_function: Any) -> None:
    code = """
let calls = 0;
exports.handler = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  calls += 1;
  if (calls === 1) setTimeout(() => console.log("timer from the first call"), 1500);
  callback(null, { calls });
};
"""
    deploy(make_function, "node-nowait", {"index.js": code}, "index.handler")
    _, body, log = invoke(lam, "node-nowait")
    assert body == {"calls": 1}
    assert "timer from the first call" not in log  # answered without waiting for the timer
    _, body, _ = invoke(lam, "node-nowait")
    assert body == {"calls": 2}  # the same (frozen, then thawed) process


def test_uncaught_exception(lam: Any, make_function: Any) -> None:
    code = """exports.handler = async () => {
  setTimeout(() => { throw new RangeError("too far"); }, 10);
  await new Promise((r) => setTimeout(r, 500));
  return "never";
};"""
    deploy(make_function, "node-uncaught", {"index.js": code}, "index.handler")
    response, body, log = invoke(lam, "node-uncaught")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "RangeError" and body["errorMessage"] == "too far"
    assert "\tERROR\tUncaught Exception \t{" in log


def test_call_after_uncaught_exception(lam: Any, make_function: Any) -> None:
    code = 'exports.handler = async () => { setTimeout(() => { throw new RangeError("too far"); }, 10); '
    code += "await new Promise((r) => setTimeout(r, 500)); };"
    deploy(make_function, "node-uncaught-next", {"index.js": code}, "index.handler")
    assert invoke(lam, "node-uncaught-next")[1]["errorType"] == "RangeError"
    assert invoke(lam, "node-uncaught-next")[1]["errorType"] == "RangeError"  # a fresh runtime


def test_runtime_names_map_to_the_installed_node(monkeypatch: pytest.MonkeyPatch) -> None:
    from squall.errors import InvalidParameterValue
    from squall.runtime.runtimes import node

    assert NODE is not None
    version = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=True).stdout
    major = int(version[1:].split(".")[0])
    assert node.find_node(f"nodejs{min(major, 18)}.x") == os.path.realpath(NODE)
    with pytest.raises(InvalidParameterValue, match=rf"needs Node.js {major + 2} or newer \(node {major} at "):
        node.find_node(f"nodejs{major + 2}.x")
    monkeypatch.setenv("SQUALL_NODE", "/nonexistent/node")
    with pytest.raises(InvalidParameterValue, match=r"needs Node.js 18 or newer \(no working node found\)"):
        node.find_node("nodejs18.x")


def test_a_kinesis_batch_reaches_a_node_handler_as_lambda_s_event(lam: Any, squall: Any, make_function: Any) -> None:
    """Squall sends a stream batch to the sandbox as rows; over the Runtime API a Node handler
    still gets Lambda's whole Kinesis event."""
    code = "exports.handler = async (event) => { console.log('EVENT ' + JSON.stringify(event)); };"
    deploy(make_function, "node-kinesis", {"index.js": code}, "index.handler")
    kinesis, logs = squall.client("kinesis"), squall.client("logs")
    kinesis.create_stream(StreamName="node-src", ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName="node-src")["StreamDescriptionSummary"]["StreamARN"]
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="node-kinesis", StartingPosition="TRIM_HORIZON", BatchSize=10
    )
    put = [kinesis.put_record(StreamName="node-src", Data=data, PartitionKey="pk") for data in (b"\x00one", b"two")]
    deadline = time.monotonic() + 30
    events: list[dict[str, Any]] = []
    while sum(len(e["Records"]) for e in events) < 2 and time.monotonic() < deadline:
        with contextlib.suppress(logs.exceptions.ResourceNotFoundException):
            found = logs.filter_log_events(logGroupName="/aws/lambda/node-kinesis", filterPattern="EVENT")["events"]
            events = [json.loads(e["message"].split("EVENT ", 1)[1]) for e in found]
        time.sleep(0.1)
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
    records = [record for event in events for record in event["Records"]]
    assert [base64.b64decode(r["kinesis"]["data"]) for r in records] == [b"\x00one", b"two"]
    assert [r["kinesis"]["sequenceNumber"] for r in records] == [p["SequenceNumber"] for p in put]
    first = records[0]
    assert first["eventID"] == f"{put[0]['ShardId']}:{put[0]['SequenceNumber']}"
    assert first["eventSourceARN"] == arn and first["eventSource"] == "aws:kinesis"
    assert first["kinesis"]["partitionKey"] == "pk" and first["kinesis"]["kinesisSchemaVersion"] == "1.0"
    assert set(first) == {
        "kinesis", "eventSource", "eventVersion", "eventID", "eventName", "invokeIdentityArn", "awsRegion",
        "eventSourceARN",
    }  # fmt: skip
