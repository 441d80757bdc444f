"""The Python runtime inside a sandbox: load the handler once, then serve invocations.

It behaves like AWS's Python runtime client (awslambdaric): the same handler-string rules, the
same ``context`` object, the same error payloads and log format. It talks to Squall over a
socket with :mod:`frames` instead of HTTP, which is what makes warm invokes cheap.
Standard library only.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from decimal import Decimal
from typing import Any, BinaryIO, TextIO

from squall.runtime.bootstrap import batch_events, frames

Handler = Callable[[Any, Any], Any]


class FaultError(Exception):
    """A runtime-level failure with Lambda's ``Runtime.*`` error type."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


class CognitoIdentity:
    """``context.identity``: set when the caller came through Amazon Cognito."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, data: dict[str, Any]) -> None:
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")


class Client:
    """``context.client_context.client``: the mobile app that called."""

    __slots__ = ("app_package_name", "app_title", "app_version_code", "app_version_name", "installation_id")

    def __init__(self, data: dict[str, Any]) -> None:
        self.installation_id = data.get("installation_id")
        self.app_title = data.get("app_title")
        self.app_version_name = data.get("app_version_name")
        self.app_version_code = data.get("app_version_code")
        self.app_package_name = data.get("app_package_name")


class ClientContext:
    """``context.client_context``, decoded from the caller's X-Amz-Client-Context."""

    __slots__ = ("client", "custom", "env")

    def __init__(self, data: dict[str, Any]) -> None:
        client = data.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = data.get("custom")
        self.env = data.get("env")


class LambdaContext:
    """The ``context`` argument of a handler, with every attribute of Lambda's Python runtime."""

    def __init__(
        self,
        request_id: str,
        deadline_ms: int,
        invoked_arn: str,
        client_context: str | None,
        cognito_identity: str | None,
        tenant_id: str | None,
    ) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.tenant_id = tenant_id
        self.identity = CognitoIdentity(json.loads(cognito_identity)) if cognito_identity else None
        self.client_context = ClientContext(json.loads(client_context)) if client_context else None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, msg: str) -> None:
        sys.stdout.write(str(msg))
        sys.stdout.flush()

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},client_context={self.client_context},"
            f"identity={self.identity},tenant_id={self.tenant_id}])"
        )


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


_request_id_filter = _RequestIdFilter()


def prepare() -> None:
    """In the zygote, before forking: the sandbox's ``sys.stdout`` and ``sys.stderr`` (on fds 1 and
    2, which each sandbox points at its own log) and Lambda's root logger on that stdout, built once
    and shared by every sandbox. Built in each sandbox instead, they cost it half a megabyte of
    private memory (configuring the root logger visits every logger boto3 has made)."""
    global _stdio
    _stdio = _open_stdio()
    _install_logging(_stdio[0])


_stdio: tuple[TextIO, TextIO] | None = None


def _open_stdio() -> tuple[TextIO, TextIO]:
    return (
        open(1, "w", buffering=1, encoding="utf-8", closefd=False),
        open(2, "w", buffering=1, encoding="utf-8", closefd=False),
    )


def _install_logging(stream: TextIO) -> None:
    """Lambda's root logger: ``[LEVEL]\\t<UTC time>\\t<request id>\\t<message>`` on ``stream``."""
    handler = logging.StreamHandler(stream)
    handler.terminator = ""  # the format ends with the newline, as in Lambda's runtime
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_request_id_filter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def setup_stdio() -> None:
    """Line-buffered UTF-8 ``sys.stdout`` and ``sys.stderr`` on fds 1 and 2 (the function's log), and
    Lambda's root logger on that stdout at ``AWS_LAMBDA_LOG_LEVEL`` (WARNING by default)."""
    if _stdio is None:
        sys.stdout, sys.stderr = _open_stdio()
        _install_logging(sys.stdout)
    else:
        sys.stdout, sys.stderr = _stdio
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level:
        logging.getLogger().setLevel(getattr(logging, level, logging.WARNING))


def load_handler(handler: str) -> Handler:
    """Resolve ``module.function`` (``dir/module.function`` too), raising Lambda's init errors."""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as exc:
        raise FaultError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {exc}") from None
    if not modname or not fname:
        raise FaultError(
            "Runtime.MalformedHandlerName",
            f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)",
        )
    modname = modname.replace("/", ".")
    try:
        module = importlib.import_module(modname)
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n        {(exc.text or "").strip()}\n']
        raise FaultError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {exc}", trace) from None
    except ImportError as exc:
        raise FaultError("Runtime.ImportModuleError", f"Unable to import module '{modname}': {exc}") from None
    except Exception as exc:
        raise FaultError(type(exc).__name__, str(exc), _user_trace(exc)) from None
    func = getattr(module, fname, None)
    if func is None:
        raise FaultError("Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'")
    return func  # type: ignore[no-any-return]


def _user_trace(exc: BaseException) -> list[str]:
    frames_ = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_OWN_DIR)]
    return traceback.format_list(frames_)


_OWN_DIR = os.path.dirname(os.path.abspath(__file__))


def _to_json(value: Any) -> bytes:
    def default(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return int(obj) if obj == obj.to_integral_value() else float(obj)
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    return json.dumps(value, default=default).encode()


def _error_payload(error_type: str, message: str, request_id: str, trace: list[str]) -> bytes:
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": trace}
    ).encode()


def _log_error(error_type: str, message: str, trace: list[str], exc: BaseException | None) -> None:
    lines = [f"[ERROR] {error_type}: {message}"]
    if exc is not None:
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in trace)
    sys.stdout.write("\n".join(lines) + "\n")


def _max_rss_mb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + 0.999)


def serve(channel: BinaryIO, out: BinaryIO, handler_name: str) -> None:
    """Initialise the function, tell Squall it is ready, then answer invocations until EOF."""
    setup_stdio()
    started = time.monotonic()
    handler: Handler | None = None
    init_error: bytes | None = None
    init_type: str | None = None
    try:
        handler = load_handler(handler_name)
    except FaultError as fault:
        _log_error(fault.error_type, fault.message, fault.trace, None)
        init_error = _error_payload(fault.error_type, fault.message, "", fault.trace)
        init_type = fault.error_type
    except BaseException as exc:  # a module that raises SystemExit or the like at import
        trace = _user_trace(exc)
        _log_error(type(exc).__name__, str(exc), trace, exc)
        init_error = _error_payload(type(exc).__name__, str(exc), "", trace)
        init_type = type(exc).__name__
    sys.stdout.flush()
    sys.stderr.flush()
    init_ms = (time.monotonic() - started) * 1000
    ready = {"t": "ready", "init_ms": init_ms, "error_type": init_type}
    out.write(frames.encode(ready, init_error or b""))
    out.flush()
    if handler is None:
        os._exit(1)
    while True:
        frame = frames.read(channel)
        if frame is None:
            return
        header, body = frame
        payload, error_type = _invoke(handler, header, body)
        sys.stdout.flush()
        sys.stderr.flush()
        out.write(frames.encode({"t": "result", "error_type": error_type, "max_rss_mb": _max_rss_mb()}, payload))
        out.flush()


def _invoke(handler: Handler, header: dict[str, Any], body: bytes) -> tuple[bytes, str | None]:
    request_id = header["id"]
    _request_id_filter.request_id = request_id
    if header.get("trace"):
        os.environ["_X_AMZN_TRACE_ID"] = header["trace"]
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    try:
        event = batch_events.event_of(header.get("shape"), body)
    except ValueError as exc:
        message = f"Unable to unmarshal input: {exc}"
        _log_error("Runtime.UnmarshalError", message, [], None)
        return _error_payload("Runtime.UnmarshalError", message, request_id, []), "Runtime.UnmarshalError"
    context = LambdaContext(
        request_id,
        header["deadline_ms"],
        header["arn"],
        header.get("cc"),
        header.get("ci"),
        header.get("tenant"),
    )
    try:
        result = handler(event, context)
    except Exception as exc:
        trace = _user_trace(exc)
        error_type = type(exc).__name__
        _log_error(error_type, str(exc), trace, exc)
        return _error_payload(error_type, str(exc), request_id, trace), error_type
    try:
        return _to_json(result), None
    except (TypeError, ValueError, OverflowError) as exc:
        message = f"Unable to marshal response: {exc}"
        _log_error("Runtime.MarshalError", message, [], None)
        return _error_payload("Runtime.MarshalError", message, request_id, []), "Runtime.MarshalError"
