"""Invoke through boto3: payloads, errors in Lambda's shapes, logs, limits, cold and warm starts."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import function_zip, make_zip

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def probe(lam: Any) -> str:
    name = "invoke-probe"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role="arn:aws:iam::000000000000:role/r",
        Handler="app.handler",
        Code={"ZipFile": function_zip("probe", "app")},
        Timeout=2,
        Environment={"Variables": {"GREETING": "hi"}},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
    return name


def call(lam: Any, name: str, event: Any, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kwargs)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def test_request_response_echo(lam: Any, probe: str) -> None:
    response, payload = call(lam, probe, {"action": "echo", "x": [1, 2]})
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert payload["event"] == {"action": "echo", "x": [1, 2]}
    assert payload["request_id"] == response["ResponseMetadata"]["RequestId"]


def test_context_object(lam: Any, probe: str) -> None:
    client_context = base64.b64encode(
        json.dumps({"client": {"app_title": "squall-app"}, "custom": {"k": "v"}, "env": {}}).encode()
    ).decode()
    _, ctx = call(lam, probe, {"action": "context"}, ClientContext=client_context)
    assert ctx["function_name"] == probe
    assert ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{probe}"
    assert ctx["memory_limit_in_mb"] == "128"
    assert ctx["log_group_name"] == f"/aws/lambda/{probe}"
    assert ctx["log_stream_name"].count("/") == 3 and "[$LATEST]" in ctx["log_stream_name"]
    assert 0 < ctx["remaining_ms"] <= 2000
    assert ctx["client_custom"] == {"k": "v"} and ctx["client_app_title"] == "squall-app"


def test_environment_is_the_functions_plus_lambdas(lam: Any, probe: str) -> None:
    _, env = call(lam, probe, {"action": "env"})
    assert env["GREETING"] == "hi"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == probe
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert env["LAMBDA_TASK_ROOT"]
    assert "_X_AMZN_TRACE_ID" in env
    assert not any(key.startswith("SQUALL_") or key == "PYTEST_CURRENT_TEST" for key in env)


def test_function_error_shape(lam: Any, probe: str) -> None:
    response, payload = call(lam, probe, {"action": "raise", "message": "kaboom"})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ValueError" and payload["errorMessage"] == "kaboom"
    assert payload["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert any("in handler" in line for line in payload["stackTrace"])


def test_unserializable_result(lam: Any, probe: str) -> None:
    response, payload = call(lam, probe, {"action": "unserializable"})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.MarshalError"
    assert payload["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"


def test_timeout(lam: Any, probe: str) -> None:
    started = time.monotonic()
    response, payload = call(lam, probe, {"action": "sleep", "seconds": 30}, LogType="Tail")
    assert time.monotonic() - started < 10
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].startswith(
        f"RequestId: {response['ResponseMetadata']['RequestId']} Error: Task timed out after 2."
    )
    log = base64.b64decode(response["LogResult"]).decode()
    assert "Task timed out after 2." in log and "Status: timeout" in log
    # The function still works afterwards (a new sandbox).
    assert call(lam, probe, {"action": "echo"})[0]["StatusCode"] == 200


def test_crash_exit(lam: Any, probe: str) -> None:
    response, payload = call(lam, probe, {"action": "exit", "code": 3})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")


def test_out_of_memory(lam: Any, probe: str) -> None:
    response, payload = call(lam, probe, {"action": "memory", "mb": 400})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory"
    assert "Runtime exited with error: signal: killed" in payload["errorMessage"]


def test_log_tail_and_cold_then_warm(lam: Any, make_function: Any) -> None:
    make_function("tail-fn", function_zip("probe", "app"))
    cold, _ = call(lam, "tail-fn", {"action": "print", "text": "hello from the function"}, LogType="Tail")
    log = base64.b64decode(cold["LogResult"]).decode()
    rid = cold["ResponseMetadata"]["RequestId"]
    lines = log.splitlines()
    assert "probe module loaded" in lines
    assert f"START RequestId: {rid} Version: $LATEST" in lines
    assert "hello from the function" in lines and "to stderr" in lines
    assert any(line.startswith("[WARNING]\t") and line.endswith(f"\t{rid}\ta warning") for line in lines)
    assert f"END RequestId: {rid}" in lines
    report = next(line for line in lines if line.startswith("REPORT"))
    assert report.startswith(f"REPORT RequestId: {rid}\tDuration: ")
    assert "\tBilled Duration: " in report and "\tMemory Size: 128 MB\tMax Memory Used: " in report
    assert "\tInit Duration: " in report
    warm, _ = call(lam, "tail-fn", {"action": "echo"}, LogType="Tail")
    warm_log = base64.b64decode(warm["LogResult"]).decode()
    assert "Init Duration" not in warm_log and "probe module loaded" not in warm_log
    none, _ = call(lam, "tail-fn", {"action": "echo"})
    assert "LogResult" not in none


def test_init_errors(lam: Any, make_function: Any) -> None:
    cases = {
        "import-err": (
            {"app.py": "import no_such_module\n"},
            "app.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'no_such_module'",
        ),
        "syntax-err": ({"app.py": "def handler(:\n"}, "app.handler", "Runtime.UserCodeSyntaxError", None),
        "missing-handler": (
            {"app.py": "x = 1\n"},
            "app.handler",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'app'",
        ),
        "nested-handler": (
            {"pkg/mod.py": "def run(e, c):\n    return 'nested'\n"},
            "pkg/mod.run",
            None,
            None,
        ),
    }
    for name, (files, handler, error_type, message) in cases.items():
        make_function(name, make_zip(files), handler=handler)
        response, payload = call(lam, name, {})
        if error_type is None:
            assert payload == "nested"
            continue
        assert response["FunctionError"] == "Unhandled", name
        assert payload["errorType"] == error_type, payload
        if message:
            assert payload["errorMessage"] == message


def test_payload_limits(lam: Any, probe: str) -> None:
    limit = 6 * 1024 * 1024
    # A JSON string of exactly 6 MB is accepted; one byte more is refused.
    exact = b'"' + b"a" * (limit - 2) + b'"'
    response = lam.invoke(FunctionName=probe, Payload=exact)
    assert response["StatusCode"] == 200
    # The probe got the whole 6 MB string as its event (and fails on it, being a string).
    assert json.loads(response["Payload"].read())["errorMessage"] == "'str' object has no attribute 'get'"
    with pytest.raises(ClientError) as info:
        lam.invoke(FunctionName=probe, Payload=b'"' + b"a" * (limit - 1) + b'"')
    error = info.value.response
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Message"] == "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    with pytest.raises(ClientError) as info:
        lam.invoke(FunctionName=probe, InvocationType="Event", Payload=b'"' + b"a" * (1024 * 1024) + b'"')
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    response, payload = call(lam, probe, {"action": "size", "bytes": limit + 200})
    assert payload["errorType"] == "Function.ResponseSizeTooLarge"


def test_invalid_json_payload(lam: Any, probe: str) -> None:
    with pytest.raises(ClientError) as info:
        lam.invoke(FunctionName=probe, Payload=b"{not json")
    assert info.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_dry_run_and_event(lam: Any, probe: str, squall: Any) -> None:
    dry = lam.invoke(FunctionName=probe, InvocationType="DryRun")
    assert dry["StatusCode"] == 204
    assert dry["Payload"].read() == b""
    event = lam.invoke(FunctionName=probe, InvocationType="Event", Payload=b'{"action": "tmp", "value": "async"}')
    assert event["StatusCode"] == 202
    assert event["Payload"].read() == b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _, payload = call(lam, probe, {"action": "tmp", "value": "sync"})
        if payload["previous"] in ("async", "sync"):
            break
        time.sleep(0.1)
    assert payload["previous"] in ("async", "sync")


def test_client_context_validation(lam: Any, probe: str) -> None:
    with pytest.raises(ClientError) as info:
        lam.invoke(FunctionName=probe, ClientContext="!!!not base64", Payload=b"{}")
    assert info.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_concurrency_limit_throttles(new_server: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    server = new_server("--concurrency-limit", "1")
    client = server.client("lambda")
    client.create_function(
        FunctionName="slow",
        Runtime="python3.11",
        Role="arn:aws:iam::000000000000:role/r",
        Handler="app.handler",
        Code={"ZipFile": function_zip("probe", "app")},
        Timeout=5,
    )
    client.get_waiter("function_active_v2").wait(FunctionName="slow", WaiterConfig={"Delay": 0.05})

    def slow() -> Any:
        response = client.invoke(FunctionName="slow", Payload=b'{"action": "sleep", "seconds": 1.5}')
        response["Payload"].read()
        return response

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(slow)
        time.sleep(0.5)
        with pytest.raises(ClientError) as info:
            client.invoke(FunctionName="slow", Payload=b"{}")
        assert running.result()["StatusCode"] == 200
    error = info.value.response
    assert error["Error"]["Code"] == "TooManyRequestsException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["Reason"] == "ConcurrentInvocationLimitExceeded"


@pytest.mark.parametrize("runtime", ["python3.12", "python3.13"])
def test_other_python_runtimes(lam: Any, make_function: Any, runtime: str) -> None:
    source = "import sys, json\ndef handler(e, c):\n    return {'version': '%d.%d' % sys.version_info[:2]}\n"
    make_function(f"rt-{runtime.replace('.', '-')}", make_zip({"app.py": source}), Runtime=runtime)
    response, payload = call(lam, f"rt-{runtime.replace('.', '-')}", {})
    assert "FunctionError" not in response, payload
    assert payload == {"version": runtime.removeprefix("python")}


def test_unsupported_runtime_is_refused(lam: Any) -> None:
    with pytest.raises(ClientError) as info:
        lam.create_function(
            FunctionName="java-fn",
            Runtime="java21",
            Role="arn:aws:iam::000000000000:role/r",
            Handler="index.handler",
            Code={"ZipFile": make_zip({"Handler.java": ""})},
        )
    assert info.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_unsigned_and_tampered_requests_are_refused(squall: Any, probe: str) -> None:
    import urllib.error
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{squall.url}/2015-03-31/functions/{probe}/invocations"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"))
    assert info.value.code == 403
    assert info.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    info.value.close()

    key, secret = squall.credentials()
    signed = AWSRequest("POST", url, data=b'{"action": "echo"}')
    SigV4Auth(Credentials(key, secret), "lambda", "us-east-1").add_auth(signed)
    tampered = urllib.request.Request(url, data=b'{"action": "exit"}', headers=dict(signed.headers), method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(tampered)
    assert info.value.code == 403
    assert info.value.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    info.value.close()
    genuine = urllib.request.Request(url, data=b'{"action": "echo"}', headers=dict(signed.headers), method="POST")
    with urllib.request.urlopen(genuine) as response:
        assert response.status == 200


@pytest.mark.slow
def test_init_is_limited_to_ten_seconds(lam: Any, make_function: Any) -> None:
    source = "import time\ntime.sleep(30)\n\ndef handler(e, c):\n    return 'never'\n"
    make_function("slow-init", make_zip({"app.py": source}), Timeout=60)
    started = time.monotonic()
    response, payload = call(lam, "slow-init", {})
    assert 9.5 < time.monotonic() - started < 20
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "10.00 seconds" in payload["errorMessage"]


LOG_LEVEL_SOURCE = """import logging


def handler(event, context):
    logging.getLogger("app").debug("a debug line")
    return logging.getLogger().level
"""


def test_application_log_level_sets_the_root_logger(lam: Any, make_function: Any) -> None:
    """The root logger is built once in the zygote at WARNING; ApplicationLogLevel applies per sandbox."""
    make_function(
        "log-level-debug",
        make_zip({"app.py": LOG_LEVEL_SOURCE}),
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"},
    )
    make_function("log-level-default", make_zip({"app.py": LOG_LEVEL_SOURCE}))
    response, level = call(lam, "log-level-debug", {}, LogType="Tail")
    assert level == 10
    assert "a debug line" in base64.b64decode(response["LogResult"]).decode()
    response, level = call(lam, "log-level-default", {}, LogType="Tail")
    assert level == 30
    assert "a debug line" not in base64.b64decode(response["LogResult"]).decode()
