"""The log lines Lambda itself writes around an invocation, and how a log chunk becomes events.

Formats follow the real service as observed in CloudWatch (spec section 6.4): fields of ``REPORT``
are TAB-separated, ``Duration`` has two decimals, ``Billed Duration`` is whole milliseconds,
``Init Duration`` comes after ``Max Memory Used`` (the Runtime Interface Emulator puts it first; the
service does not), and a ``Status`` (``timeout``, ``error``) closes the line when present, with no
trailing TAB after it. Functions return single lines without the trailing newline unless they say
otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, date, datetime
from typing import Final

from squall.models import LogEvent

TAIL_BYTES: Final = 4096
# CloudWatch Logs caps an event at 256 KiB including 26 bytes of per-event overhead.
MAX_EVENT_BYTES: Final = 262_144 - 26

_HEX32 = re.compile(r"[0-9a-f]{32}")
_RUNTIME = re.compile(r"([a-z]+)([0-9][0-9.]*?)(\.x)?$")


def start_line(request_id: str, version: str) -> str:
    """``START RequestId: <id> Version: <version>``."""
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    """``END RequestId: <id>``."""
    return f"END RequestId: {request_id}"


def report_line(
    request_id: str,
    duration_ms: float,
    billed_ms: int,
    memory_mb: int,
    max_memory_mb: int,
    init_ms: float | None,
    status: str | None = None,
    error_type: str | None = None,
) -> str:
    """The ``REPORT`` line, e.g. ``REPORT RequestId: <id>\\tDuration: 15.74 ms\\tBilled Duration: 16 ms
    \\tMemory Size: 128 MB\\tMax Memory Used: 56 MB\\tInit Duration: 130.49 ms\\t``.

    ``init_ms`` only on an environment's first invocation. ``status`` (``timeout``, ``error``) and
    ``error_type`` (``Runtime.ExitError``...) end the line: ``...\\tStatus: error\\tError Type: X``.
    """
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed_ms} ms\t"
        f"Memory Size: {memory_mb} MB\tMax Memory Used: {max_memory_mb} MB\t"
    )
    if init_ms is not None:
        line += f"Init Duration: {init_ms:.2f} ms\t"
    if status is not None:
        line += f"Status: {status}"
        if error_type is not None:
            line += f"\tError Type: {error_type}"
    elif error_type is not None:
        raise ValueError("error_type needs a status")
    return line


def runtime_version(runtime: str, revision: int = 1) -> str:
    """Lambda's runtime version name for a runtime identifier: ``python3.12`` -> ``python:3.12.v1``,
    ``nodejs20.x`` -> ``nodejs:20.v1``, ``provided.al2023`` -> ``provided:al2023.v1``."""
    if runtime.startswith("provided"):
        family, _, flavour = runtime.partition(".")
        return f"{family}:{flavour or 'al1'}.v{revision}"
    match = _RUNTIME.match(runtime)
    if match is None:
        return f"{runtime}.v{revision}"
    return f"{match.group(1)}:{match.group(2)}.v{revision}"


def init_start_line(runtime: str, *, revision: int = 1, region: str = "us-east-1") -> str:
    """``INIT_START Runtime Version: python:3.12.v1\\tRuntime Version ARN: arn:aws:lambda:...``.

    Lambda's ARN ends in a 64-hex digest of the runtime build; Squall uses the SHA-256 of the runtime
    version name, so the ARN keeps its shape and stays stable for one runtime revision.
    """
    version = runtime_version(runtime, revision)
    digest = hashlib.sha256(version.encode()).hexdigest()
    arn = f"arn:aws:lambda:{region}::runtime:{digest}"
    return f"INIT_START Runtime Version: {version}\tRuntime Version ARN: {arn}"


def init_report_line(init_ms: float, phase: str, status: str, error_type: str | None = None) -> str:
    """A failed INIT: ``INIT_REPORT Init Duration: 4490.14 ms\\tPhase: invoke\\tStatus: error\\t
    Error Type: Runtime.ExitError``. ``phase`` is ``init`` or ``invoke`` (init retried on invoke)."""
    line = f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: {phase}\tStatus: {status}"
    if error_type is not None:
        line += f"\tError Type: {error_type}"
    return line


def _iso_ms(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def timeout_line(request_id: str, seconds: float, at: float | None = None) -> str:
    """``2024-05-01T10:00:03.012Z <id> Task timed out after 3.00 seconds``.

    ``seconds`` is the elapsed time (two decimals); ``at`` the epoch seconds of the line (now if None).
    """
    if at is None:
        at = datetime.now(UTC).timestamp()
    return f"{_iso_ms(at)} {request_id} Task timed out after {seconds:.2f} seconds"


def runtime_exit_line(request_id: str, reason: str, error_type: str = "Runtime.ExitError") -> str:
    """Two lines for a runtime that died: ``RequestId: <id> Error: Runtime exited with error: exit
    status 1`` then the error type on its own line."""
    return f"RequestId: {request_id} Error: Runtime exited with error: {reason}\n{error_type}"


def log_group_name(function: str) -> str:
    """``/aws/lambda/<name>``; a qualified name (``fn:3``) or function ARN is reduced to the name."""
    if function.startswith("arn:"):
        parts = function.split(":")
        if len(parts) < 7 or parts[5] != "function":
            raise ValueError(f"not a function ARN: {function!r}")
        function = parts[6]
    return f"/aws/lambda/{function.split(':', 1)[0]}"


def log_stream_name(version: str, sandbox_hex: str, day: date) -> str:
    """``YYYY/MM/DD/[<version>]<hex32>``: one stream per execution environment, dated in UTC.

    ``day`` may be a ``date`` or a ``datetime`` (an aware one is converted to UTC first).
    """
    if not _HEX32.fullmatch(sandbox_hex):
        raise ValueError(f"sandbox id must be 32 lowercase hex digits, got {sandbox_hex!r}")
    if isinstance(day, datetime) and day.tzinfo is not None:
        day = day.astimezone(UTC)
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}/[{version}]{sandbox_hex}"


def _lead_continuations(data: bytes) -> int:
    """How many UTF-8 continuation bytes (at most 3) open ``data``: the rest of a cut character."""
    count = 0
    while count < min(3, len(data)) and data[count] & 0xC0 == 0x80:
        count += 1
    return count


def _cut_tail(data: bytes, limit: int) -> bytes:
    """The last ``limit`` bytes of ``data``, starting on a character boundary."""
    if len(data) <= limit:
        return data
    tail = data[len(data) - limit :]
    return tail[_lead_continuations(tail) :]


def tail_base64(log: bytes, limit: int = TAIL_BYTES) -> str:
    """``LogResult``: base64 of the log's last ``limit`` bytes (4 KB, as Lambda documents).

    When the cut falls inside a multi-byte UTF-8 character, its orphaned continuation bytes are
    dropped, so the tail is at most ``limit`` bytes and decodes as UTF-8 whenever the log did.
    (Lambda documents only "the last 4 KB"; what it does mid-character is not documented.)
    """
    if limit < 0:
        raise ValueError("limit cannot be negative")
    return base64.b64encode(_cut_tail(log, limit)).decode("ascii")


def _chunks(line: bytes, size: int) -> list[bytes]:
    """``line`` in pieces of at most ``size`` bytes, never splitting a UTF-8 character."""
    pieces: list[bytes] = []
    while len(line) > size:
        cut = size
        while cut > size - 3 and line[cut] & 0xC0 == 0x80:
            cut -= 1
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces


def split_lines(log: bytes, ts_ms: int) -> list[LogEvent]:
    """A chunk of log output as CloudWatch events, one per line, all stamped ``ts_ms``.

    As in Lambda's text log format, each event keeps its line's trailing ``\\n`` (a final partial
    line has none); a traceback printed line by line becomes one event per line, and a record whose
    lines are joined by ``\\r`` (the Python runtime's own logging) stays one event. Invalid UTF-8 is
    replaced with U+FFFD; lines over CloudWatch's event limit are split into several events.
    """
    events: list[LogEvent] = []
    start = 0
    while start < len(log):
        newline = log.find(b"\n", start)
        end = len(log) if newline < 0 else newline + 1
        for piece in _chunks(log[start:end], MAX_EVENT_BYTES):
            events.append(LogEvent(timestamp=ts_ms, message=piece.decode("utf-8", errors="replace")))
        start = end
    return events
