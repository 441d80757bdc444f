"""Streamed responses end to end: custom runtimes and Node functions that stream through the Runtime
API, read back with boto3's ``invoke_with_response_stream`` and over streaming function URLs."""

from __future__ import annotations

import time
from typing import Any

import pytest

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
