"""Warm invokes of a custom-runtime (``provided.al2023``) function: a bash bootstrap speaking the
Runtime API with curl, next to the native Python path (``warm-http``)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from benchmarks.harness import ROLE, ServerProcess
from benchmarks.scenarios import warm_http

BASH_FUNCTION = "bench-warm-bash"
CLIENT_FUNCTION = "bench-warm-rapi-client"
#: The loop of docs/runtimes.md, answering ``{"ok": true}`` like the Python function does.
BASH_BOOTSTRAP = """#!/bin/bash
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
headers="$(mktemp)"
while true; do
  curl -sS -D "$headers" -o /dev/null "$api/invocation/next"
  id="$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$headers" | cut -d: -f2 | tr -d '[:space:]')"
  curl -sS -o /dev/null -X POST "$api/invocation/$id/response" --data-binary '{"ok": true}'
done
"""


#: A runtime client that keeps one connection and spawns nothing: what the Runtime API itself costs.
CLIENT_BOOTSTRAP = """#!/usr/bin/env python3
import http.client, os
conn = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    response = conn.getresponse()
    response.read()
    request_id = response.getheader("Lambda-Runtime-Aws-Request-Id")
    conn.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/response", b'{"ok": true}')
    conn.getresponse().read()
"""


def create_bash_function(lam: Any, name: str = BASH_FUNCTION, bootstrap: str = BASH_BOOTSTRAP) -> None:
    """CreateFunction (``provided.al2023``, an executable ``bootstrap``), then wait until Active."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o100755 << 16
        archive.writestr(info, bootstrap)
    lam.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="function.handler",
        Code={"ZipFile": buffer.getvalue()},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.02, "MaxAttempts": 1500})


def create_client_function(lam: Any) -> None:
    """The keep-alive Python client above as a ``provided.al2023`` function."""
    create_bash_function(lam, CLIENT_FUNCTION, CLIENT_BOOTSTRAP)


def warm_provided(server: ServerProcess, calls: int, warmup: int, name: str = BASH_FUNCTION) -> dict[str, Any]:
    """``warm_http`` against a custom-runtime function (bash: the Runtime API round trip plus the
    processes bash starts for each event)."""
    return warm_http(server, name, calls, warmup)
