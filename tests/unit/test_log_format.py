"""Lambda's own log lines, byte for byte, and how log chunks become events and tails."""

from __future__ import annotations

import base64
import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from squall.logs.format import (
    MAX_EVENT_BYTES,
    end_line,
    init_report_line,
    init_start_line,
    log_group_name,
    log_stream_name,
    report_line,
    runtime_exit_line,
    runtime_version,
    split_lines,
    start_line,
    tail_base64,
    timeout_line,
)

RID = "8f507cfc-xmpl-4697-b07a-ac58fc914c95"
HEX = "10681b291d2547ae90e38612e90b0aeb"


def test_start_and_end_lines() -> None:
    assert start_line(RID, "$LATEST") == f"START RequestId: {RID} Version: $LATEST"
    assert start_line(RID, "7") == f"START RequestId: {RID} Version: 7"
    assert end_line(RID) == f"END RequestId: {RID}"


def test_report_line_warm() -> None:
    line = report_line(RID, 15.74, 16, 128, 56, None)
    assert line == (
        f"REPORT RequestId: {RID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 56 MB\t"
    )


def test_report_line_cold_puts_init_after_max_memory() -> None:
    line = report_line(RID, 15.74, 16, 128, 56, 130.49)
    assert line == (
        f"REPORT RequestId: {RID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms\t"
    )
    assert line.split("\t")[1:] == [
        "Duration: 15.74 ms",
        "Billed Duration: 16 ms",
        "Memory Size: 128 MB",
        "Max Memory Used: 56 MB",
        "Init Duration: 130.49 ms",
        "",
    ]


def test_report_line_timeout_ends_with_status() -> None:
    # As observed from the service: no TAB after the status.
    line = report_line(RID, 3000.0, 3000, 1024, 64, None, status="timeout")
    assert line == (
        f"REPORT RequestId: {RID}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\t"
        "Memory Size: 1024 MB\tMax Memory Used: 64 MB\tStatus: timeout"
    )


def test_report_line_error_with_init_and_error_type() -> None:
    line = report_line(RID, 8948.73, 8949, 2048, 2048, 495.04, status="error", error_type="Runtime.OutOfMemory")
    assert line == (
        f"REPORT RequestId: {RID}\tDuration: 8948.73 ms\tBilled Duration: 8949 ms\t"
        "Memory Size: 2048 MB\tMax Memory Used: 2048 MB\tInit Duration: 495.04 ms\t"
        "Status: error\tError Type: Runtime.OutOfMemory"
    )
    with pytest.raises(ValueError, match="status"):
        report_line(RID, 1.0, 1, 128, 10, None, error_type="Runtime.ExitError")


def test_report_line_rounds_duration_to_two_decimals() -> None:
    line = report_line(RID, 0.014999, 1, 128, 30, 1.005)
    assert "\tDuration: 0.01 ms\t" in line
    assert "\tBilled Duration: 1 ms\t" in line
    assert re.search(r"\tInit Duration: 1\.\d\d ms\t$", line)


@pytest.mark.parametrize(
    ("runtime", "version"),
    [
        ("python3.12", "python:3.12.v1"),
        ("python3.9", "python:3.9.v1"),
        ("nodejs20.x", "nodejs:20.v1"),
        ("java21", "java:21.v1"),
        ("ruby3.3", "ruby:3.3.v1"),
        ("dotnet8", "dotnet:8.v1"),
        ("provided.al2023", "provided:al2023.v1"),
        ("provided.al2", "provided:al2.v1"),
    ],
)
def test_runtime_version_names(runtime: str, version: str) -> None:
    assert runtime_version(runtime) == version


def test_init_start_line() -> None:
    line = init_start_line("python3.12", revision=18)
    match = re.fullmatch(
        r"INIT_START Runtime Version: python:3\.12\.v18\tRuntime Version ARN: "
        r"arn:aws:lambda:us-east-1::runtime:([0-9a-f]{64})",
        line,
    )
    assert match is not None
    assert init_start_line("python3.12", revision=18) == line  # stable
    assert init_start_line("python3.12", revision=19) != line
    assert "arn:aws:lambda:eu-west-1::runtime:" in init_start_line("nodejs20.x", region="eu-west-1")


def test_init_report_line() -> None:
    assert init_report_line(4490.14, "invoke", "error", "Runtime.ExitError") == (
        "INIT_REPORT Init Duration: 4490.14 ms\tPhase: invoke\tStatus: error\tError Type: Runtime.ExitError"
    )
    assert init_report_line(10000.0, "init", "timeout") == (
        "INIT_REPORT Init Duration: 10000.00 ms\tPhase: init\tStatus: timeout"
    )


def test_timeout_line() -> None:
    at = datetime(2024, 5, 1, 10, 0, 3, 12_000, tzinfo=UTC).timestamp()
    assert timeout_line(RID, 3.0, at) == f"2024-05-01T10:00:03.012Z {RID} Task timed out after 3.00 seconds"
    assert timeout_line(RID, 18.0213, at).endswith("Task timed out after 18.02 seconds")
    now = timeout_line(RID, 3.0)
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {RID} Task timed out after 3\.00 seconds", now)


def test_runtime_exit_line() -> None:
    assert runtime_exit_line(RID, "exit status 1") == (
        f"RequestId: {RID} Error: Runtime exited with error: exit status 1\nRuntime.ExitError"
    )


def test_log_group_name() -> None:
    assert log_group_name("hello") == "/aws/lambda/hello"
    assert log_group_name("hello:3") == "/aws/lambda/hello"
    assert log_group_name("arn:aws:lambda:us-east-1:123456789012:function:hello:prod") == "/aws/lambda/hello"
    with pytest.raises(ValueError):
        log_group_name("arn:aws:s3:::bucket")


def test_log_stream_name() -> None:
    assert log_stream_name("$LATEST", HEX, date(2025, 9, 2)) == f"2025/09/02/[$LATEST]{HEX}"
    assert log_stream_name("12", HEX, date(2024, 1, 9)) == f"2024/01/09/[12]{HEX}"
    # An aware datetime is dated in UTC: 05:00 on 2 May in UTC+10 is still 1 May in UTC.
    sydney = datetime(2024, 5, 2, 5, 0, tzinfo=timezone(timedelta(hours=10)))
    assert log_stream_name("$LATEST", HEX, sydney).startswith("2024/05/01/")
    for bad in ["abc", HEX.upper(), HEX + "0", "g" * 32]:
        with pytest.raises(ValueError):
            log_stream_name("$LATEST", bad, date(2024, 1, 1))


def decode(tail: str) -> bytes:
    return base64.b64decode(tail, validate=True)


def test_tail_base64_short_log_is_whole() -> None:
    log = b"START RequestId: x Version: $LATEST\nhello\n"
    assert decode(tail_base64(log)) == log
    assert tail_base64(b"") == ""


def test_tail_base64_keeps_the_last_4096_bytes() -> None:
    log = b"".join(b"line %05d\n" % i for i in range(2000))
    tail = decode(tail_base64(log))
    assert len(tail) == 4096
    assert log.endswith(tail)


@pytest.mark.parametrize("char", ["é", "€", "😀"])
@pytest.mark.parametrize("shift", [0, 1, 2, 3])
def test_tail_base64_never_starts_mid_character(char: str, shift: int) -> None:
    log = ("x" * shift + char * 3000 + "\nend\n").encode()
    tail = decode(tail_base64(log))
    assert log.endswith(tail)
    assert 4096 - 3 <= len(tail) <= 4096
    assert tail.decode("utf-8").endswith("\nend\n")  # decodes cleanly: no orphaned bytes


def test_tail_base64_cut_drops_only_the_broken_character() -> None:
    log = "😀".encode() + b"a" * 4095  # 4 + 4095 bytes: the cut lands inside the emoji
    assert decode(tail_base64(log)) == b"a" * 4095
    assert decode(tail_base64(log, limit=4)) == b"aaaa"
    assert tail_base64(log, limit=0) == ""
    with pytest.raises(ValueError):
        tail_base64(log, limit=-1)


def test_tail_base64_is_valid_base64_even_for_binary_garbage() -> None:
    log = bytes(range(256)) * 40
    tail = tail_base64(log)
    assert re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", tail) and len(tail) % 4 == 0
    assert log.endswith(decode(tail))


def test_split_lines_one_event_per_line_keeping_newlines() -> None:
    chunk = f"{start_line(RID, '$LATEST')}\nhello\n\nworld\n".encode()
    events = split_lines(chunk, 1_714_557_600_123)
    assert [e.message for e in events] == [
        f"START RequestId: {RID} Version: $LATEST\n",
        "hello\n",
        "\n",
        "world\n",
    ]
    assert {e.timestamp for e in events} == {1_714_557_600_123}


def test_split_lines_partial_last_line_and_empty_chunk() -> None:
    assert [e.message for e in split_lines(b"a\nno newline yet", 1)] == ["a\n", "no newline yet"]
    assert split_lines(b"", 1) == []


def test_split_lines_traceback_is_one_event_per_line() -> None:
    traceback = (
        b"Traceback (most recent call last):\n"
        b'  File "/var/task/app.py", line 3, in handler\n'
        b"    raise ValueError('boom')\n"
        b"ValueError: boom\n"
    )
    events = split_lines(traceback, 5)
    assert len(events) == 4
    assert events[-1].message == "ValueError: boom\n"


def test_split_lines_carriage_return_keeps_a_record_together() -> None:
    record = b"[ERROR] ValueError: boom\rTraceback (most recent call last):\r  File x\n"
    events = split_lines(record, 5)
    assert len(events) == 1
    assert events[0].message == record.decode()


def test_split_lines_replaces_invalid_utf8() -> None:
    events = split_lines(b"caf\xc3\xa9 \xff\xfe ok\n", 1)
    assert events[0].message == "café \ufffd\ufffd ok\n"


def test_split_lines_splits_oversized_lines_on_character_boundaries() -> None:
    line = ("€" * (MAX_EVENT_BYTES // 3 + 10)).encode() + b"\n"  # over the limit, 3-byte characters
    events = split_lines(line, 1)
    assert len(events) == 2
    assert all(len(e.message.encode()) <= MAX_EVENT_BYTES for e in events)
    assert "\ufffd" not in "".join(e.message for e in events)
    assert "".join(e.message for e in events).encode() == line
