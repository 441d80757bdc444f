"""The API port's front door, driven over real HTTP by boto3 and httpx against uvicorn."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import uvicorn
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from starlette.types import ASGIApp, Receive, Scope, Send

from squall.api.app import build_api_app
from squall.api.credentials import credentials_path, load_or_create_credentials, usage_hint
from squall.api.sigv4 import SigV4Verifier
from squall.errors import TooManyRequests

KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:my-fn"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class Recorder:
    """A tiny service app: records what it was given and echoes it back as JSON.

    Functions named ``boom`` raise a plain exception, ``throttled`` a ``TooManyRequests``."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        record = {
            "service": scope["squall.service"],
            "method": scope["method"],
            "raw_path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
            "body": message["body"],
            "buffered": scope["squall.body"],
            "access_key": scope["squall.access_key"],
            "request_id": scope["squall.request_id"],
        }
        self.seen.append(record)
        if "/boom/" in scope["path"]:
            raise RuntimeError("the service fell over")
        if "/throttled/" in scope["path"]:
            raise TooManyRequests("ReservedFunctionConcurrentInvocationLimitExceeded", retry_after=7)
        body = json.dumps({k: v for k, v in record.items() if k not in ("body", "buffered")}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def client(service: str, url: str, key: str = KEY, secret: str = SECRET) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}),
    )


def signed_request(url: str, method: str, path: str, body: bytes = b"") -> tuple[str, dict[str, str]]:
    """The URL and headers of a request botocore signed, to send (or tamper with) over httpx."""
    request = AWSRequest(method=method, url=url + path, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(KEY, SECRET), "lambda", REGION).add_auth(request)
    return url + path, dict(request.headers.items())


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def shared_api() -> Iterator[tuple[str, Recorder]]:
    """One authenticating server for the module (starting uvicorn per test is slow)."""
    shared = Recorder()
    verifier = SigV4Verifier({KEY: SECRET}, REGION)
    with serve(build_api_app({"lambda": shared, "kinesis": shared}, verifier, lambda: True)) as url:
        yield url, shared


@pytest.fixture
def api(shared_api: tuple[str, Recorder], recorder: Recorder) -> str:
    """The shared server's URL; its requests are recorded in this test's ``recorder``."""
    url, shared = shared_api
    shared.seen = recorder.seen = []
    return url


def error_of(call: Callable[[], object]) -> tuple[int, str, str, dict[str, str]]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    meta = response["ResponseMetadata"]
    return (
        meta["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
        meta["HTTPHeaders"],
    )


# --- signed requests from boto3 --------------------------------------------------------------------


def test_boto3_invoke_by_arn_reaches_the_service_with_body_key_and_request_id(api: str, recorder: Recorder) -> None:
    response = client("lambda", api).invoke(FunctionName=ARN, Qualifier="prod", Payload=b'{"x": 1}')
    echoed = json.loads(response["Payload"].read())
    seen = recorder.seen[-1]
    assert seen["raw_path"] == "/2015-03-31/functions/" + ARN.replace(":", "%3A") + "/invocations"
    assert seen["query"] == "Qualifier=prod"
    assert seen["body"] == seen["buffered"] == b'{"x": 1}'
    assert seen["access_key"] == KEY
    assert seen["service"] == "lambda"
    assert UUID_RE.fullmatch(seen["request_id"])
    assert response["ResponseMetadata"]["RequestId"] == seen["request_id"] == echoed["request_id"]


def test_boto3_requests_with_several_query_parameters_are_accepted(api: str, recorder: Recorder) -> None:
    client("lambda", api).list_functions(
        MaxItems=5, Marker="a b/c+d~e", FunctionVersion="ALL", MasterRegion="us-east-1"
    )
    assert recorder.seen[-1]["query"] == "MaxItems=5&Marker=a%20b%2Fc%2Bd~e&FunctionVersion=ALL&MasterRegion=us-east-1"


@pytest.mark.parametrize("payload", [b"", bytes(range(256)) * 64], ids=["empty", "binary"])
def test_empty_and_binary_bodies_arrive_intact(api: str, recorder: Recorder, payload: bytes) -> None:
    client("lambda", api).invoke(FunctionName="my-fn", Payload=payload)
    assert recorder.seen[-1]["body"] == payload


def test_json_protocol_services_are_routed_by_their_credential_scope(api: str, recorder: Recorder) -> None:
    client("kinesis", api).list_streams()
    assert recorder.seen[-1]["service"] == "kinesis"


# --- refused requests, as boto3 reports them -----------------------------------------------------


def test_wrong_secret_is_an_invalid_signature(api: str, recorder: Recorder) -> None:
    status, code, message, headers = error_of(lambda: client("lambda", api, secret="nope").list_functions())
    assert (status, code, message) == (403, "InvalidSignatureException", MISMATCH)
    assert headers["x-amzn-errortype"] == "InvalidSignatureException"
    assert UUID_RE.fullmatch(headers["x-amzn-requestid"])
    assert recorder.seen == []


def test_unknown_key_is_an_unrecognized_client(api: str) -> None:
    status, code, message, _ = error_of(
        lambda: client("lambda", api, key="AKIANOTKNOWN00000000").invoke(FunctionName="f")
    )
    assert (status, code, message) == (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_json_protocol_clients_read_the_same_error_from_the_body(api: str) -> None:
    status, code, message, _ = error_of(lambda: client("kinesis", api, secret="nope").list_streams())
    assert (status, code, message) == (403, "InvalidSignatureException", MISMATCH)


@pytest.mark.parametrize(
    ("server_offset", "wording"),
    [
        (timedelta(minutes=6), r"Signature expired: (\w+) is now earlier than {low} \({now} - 5 min\.\)"),
        (
            -timedelta(minutes=6),
            r"Signature not yet current: (\w+) is still later than {high} \({now} \+ 5 min\.\)",
        ),
    ],
    ids=["client-behind", "client-ahead"],
)
def test_clock_skew_beyond_five_minutes_is_refused(server_offset: timedelta, wording: str, recorder: Recorder) -> None:
    server_now = (datetime.now(UTC) + server_offset).replace(microsecond=0)
    verifier = SigV4Verifier({KEY: SECRET}, REGION, clock=lambda: server_now)
    with serve(build_api_app({"lambda": recorder}, verifier, lambda: True)) as url:
        status, code, message, _ = error_of(lambda: client("lambda", url).list_functions())
    fmt = "%Y%m%dT%H%M%SZ"
    expected = wording.format(
        low=(server_now - timedelta(minutes=5)).strftime(fmt),
        high=(server_now + timedelta(minutes=5)).strftime(fmt),
        now=server_now.strftime(fmt),
    )
    assert (status, code) == (403, "InvalidSignatureException")
    match = re.fullmatch(expected, message)
    assert match, message
    signed_at = datetime.strptime(match.group(1), fmt).replace(tzinfo=UTC)
    assert abs(signed_at - (server_now - server_offset)) < timedelta(seconds=5)


def test_a_body_changed_after_signing_is_refused(api: str, recorder: Recorder) -> None:
    url, headers = signed_request(api, "POST", "/2015-03-31/functions/my-fn/invocations", b'{"amount": 1}')
    good = httpx.post(url, content=b'{"amount": 1}', headers=headers)
    assert good.status_code == 200
    bad = httpx.post(url, content=b'{"amount": 9}', headers=headers)
    assert bad.status_code == 403
    assert bad.headers["x-amzn-errortype"] == "InvalidSignatureException"
    assert bad.json() == {"Type": "User", "message": MISMATCH}
    assert len(recorder.seen) == 1


def test_a_signed_header_changed_after_signing_is_refused(api: str) -> None:
    url, headers = signed_request(api, "GET", "/2015-03-31/functions")
    assert httpx.get(url, headers=headers).status_code == 200
    headers["Content-Type"] = "text/plain"
    assert httpx.get(url, headers=headers).headers["x-amzn-errortype"] == "InvalidSignatureException"


def test_unsigned_requests_are_refused_when_auth_is_on(api: str, recorder: Recorder) -> None:
    response = httpx.get(api + "/2015-03-31/functions")
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert response.json() == {"Type": "User", "message": "Missing Authentication Token"}
    assert recorder.seen == []


# --- no-auth mode -------------------------------------------------------------------------------


@pytest.fixture
def open_api(recorder: Recorder) -> Iterator[str]:
    app = build_api_app({"lambda": recorder, "kinesis": recorder, "sqs": recorder}, None, lambda: True)
    with serve(app) as url:
        yield url


@pytest.mark.parametrize(
    ("path", "headers", "service"),
    [
        ("/2015-03-31/functions/", {}, "lambda"),
        ("/2019-09-25/functions/f/event-invoke-config", {}, "lambda"),
        ("/", {"X-Amz-Target": "Kinesis_20131202.ListStreams"}, "kinesis"),
        ("/", {"X-Amz-Target": "AmazonSQS.ListQueues"}, "sqs"),
    ],
)
def test_unsigned_requests_are_routed_by_path_or_target_without_auth(
    open_api: str, recorder: Recorder, path: str, headers: dict[str, str], service: str
) -> None:
    response = httpx.post(open_api + path, content=b"{}", headers=headers)
    assert response.status_code == 200
    assert recorder.seen[-1]["service"] == service
    assert recorder.seen[-1]["access_key"] is None


def test_without_auth_any_signature_is_accepted_and_routed_by_scope(open_api: str, recorder: Recorder) -> None:
    client("kinesis", open_api, key="AKIAANYTHING00000000", secret="whatever").list_streams()
    assert recorder.seen[-1]["service"] == "kinesis"
    assert recorder.seen[-1]["access_key"] == "AKIAANYTHING00000000"


def test_unsigned_requests_nothing_can_route_are_unknown_operations(open_api: str) -> None:
    response = httpx.get(open_api + "/what/is/this")
    assert response.status_code == 400
    assert response.headers["x-amzn-errortype"] == "UnknownOperationException"


# --- services that are not there ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "call"),
    [
        ("dynamodb", lambda c: c.list_tables()),
        ("logs", lambda c: c.describe_log_groups()),
        ("s3", lambda c: c.list_buckets()),
        ("sns", lambda c: c.list_topics()),
    ],
)
def test_a_service_this_server_does_not_offer_is_an_unknown_operation(
    api: str, service: str, call: Callable[[Any], object]
) -> None:
    status, code, message, headers = error_of(lambda: call(client(service, api)))
    assert (status, code) == (400, "UnknownOperationException")
    assert message == f"The '{service}' service is not offered here."
    assert UUID_RE.fullmatch(headers["x-amzn-requestid"])


# --- failures inside a service ------------------------------------------------------------------


def test_an_exception_in_a_service_becomes_a_500_service_exception(api: str, caplog: pytest.LogCaptureFixture) -> None:
    lam = client("lambda", api)
    with caplog.at_level(logging.ERROR, logger="squall.api.app"):
        status, code, message, headers = error_of(lambda: lam.invoke(FunctionName="boom"))
    assert (status, code, message) == (500, "ServiceException", "An internal error occurred.")
    assert headers["x-amzn-errortype"] == "ServiceException"
    assert any(r.exc_info and "the service fell over" in str(r.exc_info[1]) for r in caplog.records)
    assert lam.invoke(FunctionName="still-alive")["StatusCode"] == 200


def test_a_squall_error_from_a_service_keeps_its_code_status_and_retry_after(api: str) -> None:
    status, code, _, headers = error_of(lambda: client("lambda", api).invoke(FunctionName="throttled"))
    assert (status, code) == (429, "TooManyRequestsException")
    assert headers["retry-after"] == "7"


def test_every_response_carries_exactly_one_request_id(api: str) -> None:
    url, headers = signed_request(api, "GET", "/2015-03-31/functions")
    response = httpx.get(url, headers=headers)
    assert len(response.headers.get_list("x-amzn-requestid")) == 1


# --- health, admin, size limit ------------------------------------------------------------------


def test_health_needs_no_auth_and_follows_readiness() -> None:
    state: dict[str, Any] = {"ready": False, "why": "starting"}
    app = build_api_app(
        {},
        SigV4Verifier({KEY: SECRET}, REGION),
        lambda: state["ready"] is True,
        not_ready_status=lambda: state["why"],
    )
    with serve(app) as url:
        starting = httpx.get(url + "/_squall/health")
        state["ready"] = True
        ok = httpx.get(url + "/_squall/health")
        state.update(ready=False, why="draining")
        draining = httpx.get(url + "/_squall/health")
    assert (starting.status_code, starting.json()) == (503, {"status": "starting"})
    assert (ok.status_code, ok.json()) == (200, {"status": "ok"})
    assert (draining.status_code, draining.json()) == (503, {"status": "draining"})
    assert UUID_RE.fullmatch(ok.headers["x-amzn-requestid"])


def test_admin_paths_go_to_the_squall_service_without_auth(recorder: Recorder) -> None:
    verifier = SigV4Verifier({KEY: SECRET}, REGION)
    with serve(build_api_app({"squall": recorder}, verifier, lambda: True)) as url:
        response = httpx.post(url + "/_squall/reload", content=b"now")
    assert response.status_code == 200
    assert recorder.seen[-1]["service"] == "squall"
    assert recorder.seen[-1]["body"] == b"now"
    with serve(build_api_app({}, verifier, lambda: True)) as url:
        missing = httpx.get(url + "/_squall/reload")
    assert missing.status_code == 404
    assert missing.headers["x-amzn-errortype"] == "ResourceNotFoundException"


def test_bodies_over_the_cap_are_refused_with_413(recorder: Recorder) -> None:
    app = build_api_app({"lambda": recorder}, None, lambda: True, max_body_bytes=1024)
    with serve(app) as url:
        declared = httpx.post(url + "/2015-03-31/functions/f/invocations", content=b"x" * 1025)
        streamed = httpx.post(url + "/2015-03-31/functions/f/invocations", content=iter([b"x" * 600, b"x" * 600]))
        fits = httpx.post(url + "/2015-03-31/functions/f/invocations", content=b"x" * 1024)
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.headers["x-amzn-errortype"] == "RequestEntityTooLargeException"
    assert fits.status_code == 200
    assert [len(seen["body"]) for seen in recorder.seen] == [1024]


def test_without_auth_other_unsigned_paths_belong_to_s3_but_unknown_targets_do_not(
    recorder: Recorder,
) -> None:
    with serve(build_api_app({"s3": recorder, "lambda": recorder}, None, lambda: True)) as url:
        obj = httpx.get(url + "/my-bucket/photo%20one.jpg")
        unknown = httpx.post(url + "/", content=b"{}", headers={"X-Amz-Target": "Nope_20200101.Do"})
    assert obj.status_code == 200
    assert recorder.seen[-1]["service"] == "s3"
    assert recorder.seen[-1]["raw_path"] == "/my-bucket/photo%20one.jpg"
    assert unknown.status_code == 400
    assert unknown.json()["__type"] == "UnknownOperationException"
    assert len(recorder.seen) == 1


def test_the_first_start_hint_works_verbatim_with_the_aws_cli(tmp_path: Path) -> None:
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.skip("the AWS CLI (a dev dependency) is not installed")
    creds = load_or_create_credentials(tmp_path, None, None)

    async def list_functions(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"Functions": []}'})

    verifier = SigV4Verifier({creds.access_key_id: creds.secret_access_key}, REGION)
    with serve(build_api_app({"lambda": list_functions}, verifier, lambda: True)) as url:
        lines = [line.strip() for line in usage_hint(credentials_path(tmp_path), url, REGION).splitlines()]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["PATH"] = f"{aws.parent}{os.pathsep}{env.get('PATH', '')}"
        env["AWS_CONFIG_FILE"] = str(tmp_path / "no-config")
        export = next(line for line in lines if line.startswith("export "))
        env.update(word.partition("=")[::2] for word in shlex.split(export)[1:])
        command = next(line for line in lines if line.startswith("aws "))
        done = subprocess.run(shlex.split(command), env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"Functions": []}
