"""The Runtime API server of a custom-runtime sandbox, case by case against the contract table of
AWS's Runtime Interface Emulator (../shared/spec/runtime-api-traces/runtime-api-contract-from-RIE.md).

The server runs for real on a loopback port; the test plays Squall on the sandbox's channel (frames
over a socketpair) and the runtime over HTTP (``http.client``, one keep-alive connection).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from squall.config import RESPONSE_PAYLOAD_LIMIT
from squall.runtime.bootstrap import frames
from squall.runtime.bootstrap.runtime_api import RuntimeApi
from squall.services.streams.events import kinesis_batch, kinesis_event, shape
from squall.services.streams.service import StoredRecord

BASE = "/2018-06-01/runtime"


class Harness:
    """A RuntimeApi with Squall's end of its channel and a runtime's HTTP connection."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self.channel = ours.makefile("rb")
        self._out = theirs.makefile("wb")
        self._keep = (ours, theirs)
        self.api = RuntimeApi(self._out, RESPONSE_PAYLOAD_LIMIT)
        self.port = self.api.listen()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        # Squall reads its channel all the time (a 6 MB frame does not fit in the socket buffer).
        self.frames: queue.Queue[tuple[dict[str, Any], bytes] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read_frames, daemon=True)
        self._reader.start()

    def _read_frames(self) -> None:
        while True:
            frame = frames.read(self.channel)
            self.frames.put(frame)
            if frame is None:
                return

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        self.conn.request(method, BASE + path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        return response.status, response.read(), response

    def frame(self) -> tuple[dict[str, Any], bytes]:
        frame = self.frames.get(timeout=10)
        assert frame is not None
        return frame

    def event(self, request_id: str, body: bytes = b"{}", **extra: Any) -> None:
        header = {"id": request_id, "arn": "arn:aws:lambda:us-east-1:000000000000:function:f", "deadline_ms": 42}
        self.api.push({**header, **extra}, body)

    def close(self) -> None:
        self.conn.close()
        assert self.api.server is not None
        self.api.server.shutdown()
        self.api.server.server_close()
        self._out.close()
        self._keep[1].close()
        self._reader.join(timeout=10)
        self.channel.close()
        self._keep[0].close()


@pytest.fixture
def rapi() -> Iterator[Harness]:
    harness = Harness()
    yield harness
    harness.close()


def next_ok(rapi: Harness, request_id: str) -> http.client.HTTPResponse:
    rapi.event(request_id)
    status, _, response = rapi.request("GET", "/invocation/next")
    assert status == 200
    return response


def error_type(body: bytes) -> str:
    return str(json.loads(body)["errorType"])


def test_next_blocks_until_an_event_and_sends_every_header(rapi: Harness) -> None:
    threading.Timer(0.3, rapi.event, ("id-1", b'{"a":1}'), {"trace": "Root=1-abc", "cc": '{"custom":{}}'}).start()
    started = time.monotonic()
    status, body, response = rapi.request("GET", "/invocation/next")
    assert time.monotonic() - started >= 0.25
    assert status == 200
    assert body == b'{"a":1}'
    assert response.getheader("Lambda-Runtime-Aws-Request-Id") == "id-1"
    assert response.getheader("Lambda-Runtime-Deadline-Ms") == "42"
    assert (
        response.getheader("Lambda-Runtime-Invoked-Function-Arn") == "arn:aws:lambda:us-east-1:000000000000:function:f"
    )
    assert response.getheader("Lambda-Runtime-Trace-Id") == "Root=1-abc"
    assert response.getheader("Lambda-Runtime-Client-Context") == '{"custom":{}}'
    assert response.getheader("Lambda-Runtime-Cognito-Identity") is None  # only when set
    assert response.getheader("Content-Type") == "application/json"
    ready, _ = rapi.frame()  # the first next ends init
    assert ready["t"] == "ready" and ready["error_type"] is None and ready["init_ms"] >= 0


def test_a_batch_sent_as_rows_is_served_as_its_whole_event(rapi: Harness) -> None:
    records = [StoredRecord(seq=7, partition_key="k", data=b"\x00hi", arrival=1700000000.1234)]
    arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s"
    rapi.event("id-1", kinesis_batch(records), shape=shape("shardId-000000000000", arn, "us-east-1", "arn:r"))
    status, body, _ = rapi.request("GET", "/invocation/next")
    assert status == 200
    assert json.loads(body) == kinesis_event(records, "shardId-000000000000", arn, "us-east-1", "arn:r")


def test_response_is_accepted_and_forwarded(rapi: Harness) -> None:
    next_ok(rapi, "id-1")
    status, body, _ = rapi.request("POST", "/invocation/id-1/response", b'{"ok":true}')
    assert (status, json.loads(body)) == (202, {"status": "OK"})
    rapi.frame()  # ready
    result, payload = rapi.frame()
    assert result["t"] == "result" and result["error_type"] is None
    assert payload == b'{"ok":true}'


def test_error_is_accepted_with_its_type(rapi: Harness) -> None:
    next_ok(rapi, "id-1")
    error = b'{"errorMessage":"bad","errorType":"MyError","stackTrace":[]}'
    headers = {"Lambda-Runtime-Function-Error-Type": "Function.Bad"}
    status, _, _ = rapi.request("POST", "/invocation/id-1/error", error, headers)
    assert status == 202
    rapi.frame()
    result, payload = rapi.frame()
    assert (result["error_type"], payload) == ("Function.Bad", error)


def test_error_type_from_the_body_without_the_header(rapi: Harness) -> None:
    # awslambdaric sends no Lambda-Runtime-Function-Error-Type on invocation errors.
    next_ok(rapi, "id-1")
    assert rapi.request("POST", "/invocation/id-1/error", b'{"errorType":"ValueError"}')[0] == 202
    rapi.frame()
    assert rapi.frame()[0]["error_type"] == "ValueError"


def test_init_error_before_next_is_accepted(rapi: Harness) -> None:
    body = b'{"errorMessage":"Handler \'missing\' missing on module \'app\'","errorType":"Runtime.HandlerNotFound"}'
    headers = {"Lambda-Runtime-Function-Error-Type": "Runtime.HandlerNotFound"}
    status, _, _ = rapi.request("POST", "/init/error", body, headers)
    assert status == 202
    ready, payload = rapi.frame()
    assert (ready["t"], ready["error_type"], payload) == ("ready", "Runtime.HandlerNotFound", body)
    status, body, _ = rapi.request("POST", "/init/error", b"{}", headers)  # only once
    assert status == 403


def test_init_error_after_next_is_forbidden(rapi: Harness) -> None:
    next_ok(rapi, "id-1")
    status, body, _ = rapi.request("POST", "/init/error", b"{}")
    assert status == 403
    assert error_type(body) == "InvalidStateTransition"


def test_next_twice(rapi: Harness) -> None:
    next_ok(rapi, "id-1")
    next_ok(rapi, "id-2")
    assert rapi.request("POST", "/invocation/id-2/response", b"1")[0] == 202


def test_unknown_request_id_is_400(rapi: Harness) -> None:
    next_ok(rapi, "id-1")
    for kind in ("response", "error"):
        status, body, _ = rapi.request("POST", f"/invocation/other/{kind}", b"{}")
        assert status == 400
        assert json.loads(body) == {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}
    assert rapi.request("POST", "/invocation/id-1/response", b"{}")[0] == 202  # still answerable


@pytest.mark.parametrize(("first", "second"), [("response", "response"), ("error", "error"), ("error", "response")])
def test_second_answer_is_403(rapi: Harness, first: str, second: str) -> None:
    next_ok(rapi, "id-1")
    assert rapi.request("POST", f"/invocation/id-1/{first}", b"{}")[0] == 202
    status, body, _ = rapi.request("POST", f"/invocation/id-1/{second}", b"{}")
    assert status == 403
    assert error_type(body) == "InvalidStateTransition"


def test_response_before_any_next_is_403(rapi: Harness) -> None:
    status, body, _ = rapi.request("POST", "/invocation/id-1/response", b"{}")
    assert status == 403
    assert error_type(body) == "InvalidStateTransition"


def test_oversized_response_is_413(rapi: Harness) -> None:
    next_ok(rapi, "id-1")
    status, body, _ = rapi.request("POST", "/invocation/id-1/response", b"a" * (RESPONSE_PAYLOAD_LIMIT + 1))
    assert status == 413
    assert json.loads(body) == {
        "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "RequestEntityTooLarge",
    }
    rapi.frame()
    result, payload = rapi.frame()
    assert (result["error_type"], result["oversize"], payload) == (
        "Function.ResponseSizeTooLarge",
        RESPONSE_PAYLOAD_LIMIT + 1,
        b"",
    )
    next_ok(rapi, "id-2")  # the same connection goes on


def test_a_response_of_exactly_the_limit_is_accepted(rapi: Harness) -> None:
    next_ok(rapi, "id-1")
    assert rapi.request("POST", "/invocation/id-1/response", b"a" * RESPONSE_PAYLOAD_LIMIT)[0] == 202


def test_unknown_path_is_404_and_wrong_method_405(rapi: Harness) -> None:
    status, body, _ = rapi.request("POST", "/unsupported", b"{}")
    assert (status, body) == (404, b"404 page not found\n")
    assert rapi.request("DELETE", "/invocation/ABC/error")[0] == 405
    assert rapi.request("POST", "/invocation/next", b"{}")[0] == 405
    assert rapi.request("GET", "/init/error")[0] == 405


STREAM_HEAD = (
    "POST {base}/invocation/{rid}/response HTTP/1.1\r\nHost: x\r\n"
    "Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n"
    "Content-Type: text/plain\r\nTrailer: Lambda-Runtime-Function-Error-Type\r\n\r\n"
)


def open_stream(rapi: Harness, request_id: str) -> socket.socket:
    """A streamed response's request line and headers, sent as Node's runtime client sends them."""
    sock = socket.create_connection(("127.0.0.1", rapi.port), timeout=10)
    sock.sendall(STREAM_HEAD.format(base=BASE, rid=request_id).encode())
    return sock


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_streamed_chunks_are_forwarded_as_they_arrive(rapi: Harness) -> None:
    next_ok(rapi, "id-1")
    rapi.frame()  # ready
    sock = open_stream(rapi, "id-1")
    opened, _ = rapi.frame()
    assert opened == {"t": "stream", "content_type": "text/plain"}
    sock.sendall(chunk(b"hello "))
    # The chunk reaches Squall while the response is still open (no end sent yet).
    assert rapi.frame() == ({"t": "chunk"}, b"hello ")
    sock.sendall(chunk(b"world"))
    assert rapi.frame() == ({"t": "chunk"}, b"world")
    sock.sendall(b"0\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 202 ")
    result, payload = rapi.frame()
    assert (result["t"], result["error_type"], result["streamed"], payload) == ("result", None, 11, b"")
    sock.close()
    next_ok(rapi, "id-2")  # the runtime goes on


def test_streamed_response_with_an_error_trailer(rapi: Harness) -> None:
    """A streamed response that fails midway reports the failure in trailers only (Node's client)."""
    next_ok(rapi, "id-1")
    rapi.frame()
    sock = open_stream(rapi, "id-1")
    error = b'{"errorMessage":"mid","errorType":"Error"}'
    sock.sendall(
        chunk(b"hello") + b"0\r\nLambda-Runtime-Function-Error-Type: Error\r\n"
        b"Lambda-Runtime-Function-Error-Body: " + base64.b64encode(error) + b"\r\n\r\n"
    )
    assert sock.recv(4096).startswith(b"HTTP/1.1 202 ")
    sock.close()
    assert rapi.frame()[0]["t"] == "stream"
    assert rapi.frame() == ({"t": "chunk"}, b"hello")
    result, payload = rapi.frame()
    assert (result["error_type"], payload) == ("Error", error)


def test_streamed_response_by_content_length(rapi: Harness) -> None:
    next_ok(rapi, "id-1")
    rapi.frame()
    status, _, _ = rapi.request(
        "POST", "/invocation/id-1/response", b"whole", {"Lambda-Runtime-Function-Response-Mode": "streaming"}
    )
    assert status == 202
    assert rapi.frame()[0] == {"t": "stream", "content_type": "application/octet-stream"}
    assert rapi.frame() == ({"t": "chunk"}, b"whole")
    assert rapi.frame()[0]["error_type"] is None


def test_streamed_response_past_its_limit_fails(rapi: Harness) -> None:
    rapi.api.stream_limit = 8
    next_ok(rapi, "id-1")
    rapi.frame()
    sock = open_stream(rapi, "id-1")
    sock.sendall(chunk(b"12345") + chunk(b"67890") + b"0\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")
    sock.close()
    assert rapi.frame()[0]["t"] == "stream"
    assert rapi.frame() == ({"t": "chunk"}, b"12345")  # the chunk past the limit is dropped
    result, _ = rapi.frame()
    assert (result["error_type"], result["oversize"]) == ("Function.ResponseSizeTooLarge", 10)


@pytest.mark.parametrize(("request_id", "status", "kind"), [("id-9", 400, "InvalidRequestID"), ("id-1", 403, "")])
def test_streamed_response_refusals(rapi: Harness, request_id: str, status: int, kind: str) -> None:
    next_ok(rapi, "id-1")
    if status == 403:
        assert rapi.request("POST", "/invocation/id-1/response", b"{}")[0] == 202
    sock = open_stream(rapi, request_id)
    sock.sendall(chunk(b"late") + b"0\r\n\r\n")
    answer = sock.recv(4096)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert error_type(answer.split(b"\r\n\r\n", 1)[1]) == (kind or "InvalidStateTransition")
    sock.close()


def test_a_big_chunk_is_forwarded_in_pieces(rapi: Harness) -> None:
    """Frames (and event-stream messages after them) stay small whatever chunk size a runtime uses."""
    next_ok(rapi, "id-1")
    rapi.frame()
    sock = open_stream(rapi, "id-1")
    big = os.urandom(300_000)
    sock.sendall(chunk(big) + b"0\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 202 ")
    sock.close()
    assert rapi.frame()[0]["t"] == "stream"
    pieces = []
    while True:
        header, body = rapi.frame()
        if header["t"] == "result":
            break
        pieces.append(body)
    assert b"".join(pieces) == big
    assert max(map(len, pieces)) <= 1 << 16
    assert header["error_type"] is None


def test_a_stream_cut_short_is_a_truncated_response(rapi: Harness) -> None:
    next_ok(rapi, "id-1")
    rapi.frame()
    sock = open_stream(rapi, "id-1")
    sock.sendall(chunk(b"partial") + b"20\r\nonly a few")
    sock.shutdown(socket.SHUT_WR)  # the runtime went away mid-chunk
    assert rapi.frame()[0]["t"] == "stream"
    assert rapi.frame() == ({"t": "chunk"}, b"partial")
    assert rapi.frame() == ({"t": "chunk"}, b"only a few")
    result, payload = rapi.frame()
    assert result["error_type"] == "Runtime.TruncatedResponse"
    assert json.loads(payload)["errorType"] == "Runtime.TruncatedResponse"
    sock.close()


def test_any_other_response_mode_is_refused(rapi: Harness) -> None:
    next_ok(rapi, "id-1")
    rapi.frame()
    headers = {"Lambda-Runtime-Function-Response-Mode": "buffered"}
    status, body, _ = rapi.request("POST", "/invocation/id-1/response", b"{}", headers)
    assert (status, error_type(body)) == (400, "InvalidFunctionResponseMode")
    result, _ = rapi.frame()
    assert result["error_type"] == "Runtime.InvalidResponseModeHeader"


def test_keep_alive_one_connection_for_many_invocations(rapi: Harness) -> None:
    for i in range(20):
        next_ok(rapi, f"id-{i}")
        assert rapi.request("POST", f"/invocation/id-{i}/response", str(i).encode())[0] == 202
    rapi.frame()
    assert [rapi.frame()[1] for _ in range(20)] == [str(i).encode() for i in range(20)]


def test_platform_failure_during_init_is_a_failed_ready(rapi: Harness) -> None:
    rapi.api.fail("Runtime.ExitError", "Runtime exited with error: exit status 1")
    ready, _ = rapi.frame()
    assert (ready["t"], ready["error_type"], ready["fault"]) == (
        "ready",
        "Runtime.ExitError",
        "Runtime exited with error: exit status 1",
    )


def test_connections_from_other_users_are_refused() -> None:
    ours, theirs = socket.socketpair()
    out = theirs.makefile("wb")
    api = RuntimeApi(out, RESPONSE_PAYLOAD_LIMIT)
    try:
        port = api.listen(allowed_uid=os.getuid() + 1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            conn.request("POST", BASE + "/init/error", b"{}")
            conn.getresponse()
        conn.close()
    finally:
        assert api.server is not None
        api.server.shutdown()
        api.server.server_close()
        out.close()
        ours.close()
        theirs.close()


def test_connections_from_the_sandbox_user_are_served() -> None:
    ours, theirs = socket.socketpair()
    out = theirs.makefile("wb")
    api = RuntimeApi(out, RESPONSE_PAYLOAD_LIMIT)
    try:
        port = api.listen(allowed_uid=os.getuid())
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("POST", BASE + "/unsupported", b"{}")
        assert conn.getresponse().status == 404
        conn.close()
    finally:
        assert api.server is not None
        api.server.shutdown()
        api.server.server_close()
        out.close()
        ours.close()
        theirs.close()


def test_dual_stack_client_sockets_are_recognised() -> None:
    """Java connects to 127.0.0.1 from an IPv6 socket (a v4-mapped address, listed in tcp6)."""
    ours, theirs = socket.socketpair()
    out = theirs.makefile("wb")
    api = RuntimeApi(out, RESPONSE_PAYLOAD_LIMIT)
    try:
        port = api.listen(allowed_uid=os.getuid())
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(("::ffff:127.0.0.1", port))
            client.sendall(b"POST /2018-06-01/runtime/unsupported HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 404 ")
    finally:
        assert api.server is not None
        api.server.shutdown()
        api.server.server_close()
        out.close()
        ours.close()
        theirs.close()
