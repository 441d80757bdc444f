"""The Lambda Runtime API (``/2018-06-01/runtime/...``) of one sandbox, served inside it.

``RuntimeApi`` holds the runtime's state machine (started, waiting, running, response sent, init
error) and turns the runtime's HTTP calls into Squall's frames: the first ``GET .../next`` is the
end of init (a ``ready`` frame), a posted response or error is a ``result`` frame, and
``init/error`` is a failed ``ready``. A streamed response (``Lambda-Runtime-Function-Response-Mode:
streaming``) is a ``stream`` frame (its content type), one ``chunk`` frame per chunk as it is read,
then the ``result`` frame, carrying the error a runtime reports in the HTTP trailers
(``Lambda-Runtime-Function-Error-Type``, ``Lambda-Runtime-Function-Error-Body`` in base64).
Squall's invocations arrive as frames and wait in a queue until the runtime asks for them, with no
timeout. The HTTP server is the standard library's, speaking keep-alive HTTP/1.1; request bodies
are read here, by Content-Length or chunked with their trailers. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import resource
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO

from squall.runtime.bootstrap import batch_events, frames

PREFIX = "/2018-06-01/runtime/"
_INVOCATION_RE = re.compile(r"/2018-06-01/runtime/invocation/([^/]+)/(response|error)")
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"
RESPONSE_MODE_HEADER = "Lambda-Runtime-Function-Response-Mode"
_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found"}
_REASONS |= {405: "Method Not Allowed", 413: "Request Entity Too Large", 500: "Internal Server Error"}
_CHUNK = 1 << 16

# The runtime's states, named as AWS's emulator names them in its 403 messages.
# unverified: the state names (RIE internal/lambda/core, runtime_state_names.go was not readable).
STARTED = "Started"
READY = "Ready"
RUNNING = "Running"
RESPONSE_SENT = "ResponseSent"
INIT_ERROR = "InitError"
_TARGETS = {"response": "InvocationResponse", "error": "InvocationErrorResponse", "init": "InitError"}


class Reply:
    """One HTTP answer: status, body and extra headers."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers or []
        self.content_type = content_type


ACCEPTED = Reply(202, b'{"status":"OK"}\n')
NOT_FOUND = Reply(404, b"404 page not found\n", content_type="text/plain; charset=utf-8")
NOT_ALLOWED = Reply(405, content_type="text/plain; charset=utf-8")


def _error_reply(status: int, error_type: str, message: str) -> Reply:
    return Reply(status, json.dumps({"errorMessage": message, "errorType": error_type}).encode())


INVALID_REQUEST_ID = _error_reply(400, "InvalidRequestID", "Invalid request ID")


class RuntimeApi:
    """The state of one sandbox's Runtime API, between the runtime (HTTP) and Squall (frames)."""

    def __init__(
        self, out: BinaryIO, payload_limit: int, started: float | None = None, stream_limit: int | None = None
    ) -> None:
        self._out = out
        self._out_lock = threading.Lock()
        self._cond = threading.Condition()
        self._events: deque[tuple[dict[str, Any], bytes]] = deque()
        self._state = STARTED
        self._current: str | None = None
        self._started = time.monotonic() if started is None else started
        self.payload_limit = payload_limit
        #: A streamed response's limit; past it, chunks are dropped and the invocation fails.
        self.stream_limit = payload_limit if stream_limit is None else stream_limit
        self._streamed = 0
        #: The runtime's process, whose peak memory goes into each result.
        self.runtime_pid = 0
        self.server: ThreadingHTTPServer | None = None

    # --- Squall's side ---------------------------------------------------------------------------
    def listen(self, host: str = "127.0.0.1", allowed_uid: int | None = None) -> int:
        """Serve HTTP on a free port of ``host`` from a background thread; returns the port.

        The port is on the host's loopback (sandboxes share its network namespace), so with
        ``allowed_uid`` only connections from sockets of that user (the sandbox's own) are served.
        """
        api = self

        class Handler(_Handler):
            runtime_api = api

        server = _Server((host, 0), Handler)
        server.allowed_uid = allowed_uid
        server.daemon_threads = True
        self.server = server
        threading.Thread(target=server.serve_forever, name="runtime-api", daemon=True).start()
        return int(server.server_address[1])

    def push(self, header: dict[str, Any], body: bytes) -> None:
        """An invocation from Squall, for the next ``GET .../next`` (a batch sent as rows becomes its event here)."""
        shape = header.get("shape")
        if shape:
            body = batch_events.event_json(shape, body)
        with self._cond:
            self._events.append((header, body))
            self._cond.notify()

    def send(self, header: dict[str, Any], body: bytes = b"") -> None:
        """One frame to Squall."""
        with self._out_lock:
            self._out.write(frames.encode(header, body))
            self._out.flush()

    def fail(self, error_type: str, fault: str) -> None:
        """A platform failure (no bootstrap, the runtime exited): Squall words it with the request id."""
        with self._cond:
            initialising = self._state in (STARTED, INIT_ERROR)
            # Between invocations (answered, none taken) the event Squall sends next never starts:
            # the frame waits in the channel for it, and Squall runs it on a fresh sandbox, as Lambda does.
            between = self._state in (READY, RESPONSE_SENT)
            self._state = INIT_ERROR
        kind = "ready" if initialising else "result"
        self.send(
            {"t": kind, "init_ms": self._elapsed_ms(), "error_type": error_type, "fault": fault, "unstarted": between}
        )

    def _elapsed_ms(self) -> float:
        return (time.monotonic() - self._started) * 1000

    # --- the runtime's side ----------------------------------------------------------------------
    def next_invocation(self) -> Reply:
        """``GET /runtime/invocation/next``: the next event, waiting as long as it takes."""
        with self._cond:
            if self._state == INIT_ERROR:
                return self._forbidden(READY)
            first = self._state == STARTED
            if self._state != RUNNING:
                self._state = READY
        if first:
            self.send({"t": "ready", "init_ms": self._elapsed_ms(), "error_type": None})
        with self._cond:
            while not self._events:
                self._cond.wait()
            header, body = self._events.popleft()
            self._current = header["id"]
            self._state = RUNNING
        headers = [
            ("Lambda-Runtime-Aws-Request-Id", header["id"]),
            ("Lambda-Runtime-Deadline-Ms", str(header["deadline_ms"])),
            ("Lambda-Runtime-Invoked-Function-Arn", header["arn"]),
        ]
        for name, key in (
            ("Lambda-Runtime-Trace-Id", "trace"),
            ("Lambda-Runtime-Client-Context", "cc"),
            ("Lambda-Runtime-Cognito-Identity", "ci"),
            ("Lambda-Runtime-Aws-Tenant-Id", "tenant"),
        ):
            if header.get(key):
                headers.append((name, header[key]))
        return Reply(200, body, headers)

    def _answer(self, request_id: str, kind: str) -> Reply | None:
        """Take the invocation's one answer (None), or the reason the runtime may not answer it."""
        with self._cond:
            if self._state != RUNNING:
                return self._forbidden(_TARGETS[kind])
            if request_id != self._current:
                return INVALID_REQUEST_ID
            self._state = RESPONSE_SENT
            self._current = None
        return None

    def post(self, request_id: str, kind: str, body: bytes, size: int, headers: dict[str, str]) -> Reply:
        """``POST /runtime/invocation/{id}/response`` or ``.../error`` (``size``: the body's, which is
        dropped when over the limit)."""
        refused = self._answer(request_id, kind)
        if refused is not None:
            return refused
        usage = {"t": "result", "max_rss_mb": self._max_rss_mb()}
        if kind == "error":
            error_type, payload = _error_of(headers, body)
            self.send({**usage, "error_type": error_type}, payload)
            return ACCEPTED
        if size > self.payload_limit:
            self.send({**usage, "error_type": "Function.ResponseSizeTooLarge", "oversize": size})
            return _error_reply(
                413, "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({self.payload_limit} bytes)."
            )
        mode = headers.get(RESPONSE_MODE_HEADER.lower())
        if mode is not None and mode != "streaming":
            self.send({**usage, "error_type": "Runtime.InvalidResponseModeHeader", "status": "error"}, b"")
            return _error_reply(400, "InvalidFunctionResponseMode", "Invalid function response mode")
        failure = _trailer_error(headers)
        if failure is not None:
            self.send({**usage, "error_type": failure[0]}, failure[1])
            return ACCEPTED
        self.send({**usage, "error_type": None}, body)
        return ACCEPTED

    # --- streamed responses ----------------------------------------------------------------------
    def open_stream(self, request_id: str, content_type: str) -> Reply | None:
        """A streamed ``POST .../response`` begins: None when it may, else the refusal."""
        refused = self._answer(request_id, "response")
        if refused is not None:
            return refused
        self._streamed = 0
        self.send({"t": "stream", "content_type": content_type})
        return None

    def stream_chunk(self, data: bytes) -> None:
        """One chunk, to Squall at once (dropped past the limit: the stream then fails at its end)."""
        self._streamed += len(data)
        if data and self._streamed <= self.stream_limit:
            self.send({"t": "chunk"}, data)

    def close_stream(self, headers: dict[str, str], truncated: bool = False) -> Reply:
        """The streamed response's end, with its trailers: the invocation's result. ``truncated``:
        the runtime's connection ended before the response did."""
        usage = {"t": "result", "max_rss_mb": self._max_rss_mb(), "streamed": self._streamed}
        if truncated:
            # unverified: the message; the error type is one of Lambda's runtime errors (spec 2.2).
            message = "The runtime closed its connection before the end of its streamed response."
            error = {"errorMessage": message, "errorType": "Runtime.TruncatedResponse"}
            self.send({**usage, "error_type": "Runtime.TruncatedResponse"}, json.dumps(error).encode())
            return _error_reply(400, "Runtime.TruncatedResponse", message)
        if self._streamed > self.stream_limit:
            self.send({**usage, "error_type": "Function.ResponseSizeTooLarge", "oversize": self._streamed})
            return _error_reply(
                413, "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({self.stream_limit} bytes)."
            )
        failure = _trailer_error(headers)
        if failure is not None:
            self.send({**usage, "error_type": failure[0]}, failure[1])
        else:
            self.send({**usage, "error_type": None})
        return ACCEPTED

    def init_error(self, body: bytes, headers: dict[str, str]) -> Reply:
        """``POST /runtime/init/error``: allowed once, before the first ``next``."""
        with self._cond:
            if self._state != STARTED:
                return self._forbidden(_TARGETS["init"])
            self._state = INIT_ERROR
        error_type, payload = _error_of(headers, body)
        self.send({"t": "ready", "init_ms": self._elapsed_ms(), "error_type": error_type}, payload)
        return ACCEPTED

    def _forbidden(self, target: str) -> Reply:
        # unverified: the message format, from RIE's StateTransitionFailedForRuntimeMessageFormat.
        message = (
            f"State transition from {self._state} to {target} failed for runtime. "
            "Error: State transition is not allowed"
        )
        return _error_reply(403, "InvalidStateTransition", message)

    def _max_rss_mb(self) -> int:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if self.runtime_pid:
            try:
                with open(f"/proc/{self.runtime_pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmHWM:"):
                            peak_kb = max(peak_kb, int(line.split()[1]))
                            break
            except (OSError, ValueError, IndexError):
                pass
        return int(peak_kb // 1024)


def _trailer_error(headers: dict[str, str]) -> tuple[str, bytes] | None:
    """The (type, payload) of an error reported in a streamed response's trailers, if any."""
    error_type = headers.get(ERROR_TYPE_HEADER.lower() + ":trailer")
    if not error_type:
        return None
    encoded = headers.get(ERROR_BODY_TRAILER.lower() + ":trailer", "")
    try:
        payload = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        payload = b""
    if not payload:
        payload = json.dumps({"errorMessage": "", "errorType": error_type}).encode()
    return error_type, payload


def _error_of(headers: dict[str, str], body: bytes) -> tuple[str, bytes]:
    """The error type (header first, then the body's ``errorType``) and the payload for the caller."""
    error_type = headers.get(ERROR_TYPE_HEADER.lower())
    if not error_type:
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        found = parsed.get("errorType") if isinstance(parsed, dict) else None
        error_type = found if isinstance(found, str) and found else "Unhandled"
    if not body:
        # unverified: Lambda builds the payload from the header when the runtime posts none
        # (RIE's OpenAPI notes); the exact shape is assumed.
        body = json.dumps({"errorMessage": "", "errorType": error_type}).encode()
    return error_type, body


class _Server(ThreadingHTTPServer):
    """The HTTP server, refusing connections from other users' sockets when asked to."""

    allowed_uid: int | None = None

    def verify_request(self, request: Any, client_address: Any) -> bool:
        if self.allowed_uid is None:
            return True
        host, port = self.server_address[:2]
        return socket_owner((client_address[0], client_address[1]), (str(host), int(port))) == self.allowed_uid


def _hex_address(address: tuple[str, int], mapped: bool) -> str:
    """An IPv4 address as ``/proc/net/tcp`` prints it, or ``/proc/net/tcp6`` (v4-mapped)."""
    ip, port = address
    packed = "".join(f"{int(part):02X}" for part in reversed(ip.split(".")))
    return ("0000000000000000FFFF0000" if mapped else "") + packed + f":{port:04X}"


def socket_owner(client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The uid owning the established TCP socket from ``client`` to ``server`` (IPv4), from
    ``/proc/net/tcp``, or ``tcp6`` for a dual-stack client socket (Java's). Both ends and the state
    must match: an old TIME_WAIT entry of the same client port belongs to nobody."""
    for table, mapped in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        local, remote = _hex_address(client, mapped), _hex_address(server, mapped)
        try:
            with open(table) as fh:
                next(fh, None)
                for line in fh:
                    fields = line.split()
                    if len(fields) > 7 and fields[1] == local and fields[2] == remote and fields[3] == "01":
                        return int(fields[7])
        except (OSError, ValueError):
            continue
    return None


class _Handler(BaseHTTPRequestHandler):
    """Routes one connection's requests to the sandbox's ``RuntimeApi``."""

    runtime_api: RuntimeApi
    protocol_version = "HTTP/1.1"
    #: Whether the body read last ended before its end (the runtime's connection went away).
    truncated = False
    disable_nagle_algorithm = True
    server_version = "squall-runtime-api"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the sandbox's stderr is the function's log."""

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def _route(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        api = self.runtime_api
        if path == PREFIX + "invocation/next":
            if method != "GET":
                self._drain_and_reply(NOT_ALLOWED)
                return
            self._drain()
            self._reply(api.next_invocation())
            return
        if path == PREFIX + "init/error":
            if method != "POST":
                self._drain_and_reply(NOT_ALLOWED)
                return
            body, _, headers = self._read_body(api.payload_limit)
            self._reply(api.init_error(body, headers))
            return
        match = _INVOCATION_RE.fullmatch(path)
        if match is None:
            self._drain_and_reply(NOT_FOUND)
            return
        if method != "POST":
            self._drain_and_reply(NOT_ALLOWED)
            return
        if match.group(2) == "response" and self.headers.get(RESPONSE_MODE_HEADER) == "streaming":
            self._reply(self._stream(match.group(1)))
            return
        body, size, headers = self._read_body(api.payload_limit)
        self._reply(api.post(match.group(1), match.group(2), body, size, headers))

    def _stream(self, request_id: str) -> Reply:
        """A streamed response: each chunk goes to Squall as soon as it is read."""
        api = self.runtime_api
        headers = {name.lower(): value for name, value in self.headers.items()}
        refused = api.open_stream(request_id, headers.get("content-type") or "application/octet-stream")
        if refused is not None:
            self._drain()
            return refused
        for chunk in self._chunks(headers):
            api.stream_chunk(chunk)
        return api.close_stream(headers, self.truncated)

    # --- bodies ----------------------------------------------------------------------------------
    def _drain(self) -> None:
        self._read_body(0)

    def _drain_and_reply(self, reply: Reply) -> None:
        self._drain()
        self._reply(reply)

    def _read_body(self, limit: int) -> tuple[bytes, int, dict[str, str]]:
        """(body, its size, headers in lower case plus trailers); a body over ``limit`` is read and
        dropped, so the connection stays usable."""
        headers = {name.lower(): value for name, value in self.headers.items()}
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = 0 if chunked else int(headers.get("content-length") or 0)
        if not chunked and length <= limit:
            return (self.rfile.read(length) if length else b""), length, headers
        parts: list[bytes] = []
        total = 0
        for chunk in self._chunks(headers):
            total += len(chunk)
            if total <= limit:
                parts.append(chunk)
        return (b"" if total > limit else b"".join(parts)), max(total, length), headers

    def _chunks(self, headers: dict[str, str]) -> Iterator[bytes]:
        """The body piece by piece as it arrives (at most 64 KiB each): chunked (trailers into
        ``headers``) or by length. ``truncated`` tells afterwards whether it ended early."""
        self.truncated = False
        if "chunked" in headers.get("transfer-encoding", "").lower():
            yield from self._chunked(headers)
            return
        yield from self._pieces(int(headers.get("content-length") or 0))

    def _pieces(self, remaining: int) -> Iterator[bytes]:
        """``remaining`` bytes as they arrive; a connection that ends first truncates them."""
        while remaining > 0:
            piece = self.rfile.read1(min(remaining, _CHUNK))
            if not piece:
                self.close_connection = self.truncated = True
                return
            remaining -= len(piece)
            yield piece

    def _chunked(self, headers: dict[str, str]) -> Iterator[bytes]:
        """A chunked body's chunks, then its trailers read into ``headers`` (``<name>:trailer``)."""
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = self.truncated = True
                return
            if size == 0:
                break
            yield from self._pieces(size)
            if self.truncated:
                return
            self.rfile.readline(8)  # the CRLF after each chunk
        while True:  # trailers, up to the empty line
            line = self.rfile.readline(65537)
            if not line or line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower() + ":trailer"] = value.strip()

    def _reply(self, reply: Reply) -> None:
        lines = [
            f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, '')}",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {len(reply.body)}",
            *(f"{name}: {value}" for name, value in reply.headers),
        ]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        self.wfile.write(head if self.command == "HEAD" else head + reply.body)


def describe_exit(returncode: int) -> str:
    """Lambda's words for how the runtime ended: ``exit status 1`` or ``signal: killed``."""
    if returncode < 0:
        names = {9: "killed", 15: "terminated", 11: "segmentation fault", 6: "aborted", 2: "interrupt"}
        return f"signal: {names.get(-returncode, str(-returncode))}"
    return f"exit status {returncode}"
