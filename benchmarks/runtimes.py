"""Warm invokes of functions served over the Runtime API: a custom-runtime (``provided.al2023``)
bash bootstrap speaking it with curl, a keep-alive Python client, and a ``nodejs20.x`` function on
Squall's Node.js runtime, next to the native Python path (``warm-http``)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.harness import ROLE, ServerProcess
from benchmarks.scenarios import warm_http

BASH_FUNCTION = "bench-warm-bash"
CLIENT_FUNCTION = "bench-warm-rapi-client"
NODE_FUNCTION = "bench-warm-node"
NODE_RUNTIME = "nodejs20.x"
#: The Node.js twin of the Python function (``{"ok": true}``, nothing else).
NODE_HANDLER = "export const handler = async () => ({ ok: true });\n"
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


def _create(lam: Any, name: str, runtime: str, handler: str, filename: str, source: str) -> None:
    """CreateFunction with one file (mode 755), then wait until Active."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(filename)
        info.external_attr = 0o100755 << 16
        archive.writestr(info, source)
    lam.create_function(
        FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler, Code={"ZipFile": buffer.getvalue()}
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.02, "MaxAttempts": 1500})


def create_bash_function(lam: Any, name: str = BASH_FUNCTION, bootstrap: str = BASH_BOOTSTRAP) -> None:
    """CreateFunction (``provided.al2023``, an executable ``bootstrap``), then wait until Active."""
    _create(lam, name, "provided.al2023", "function.handler", "bootstrap", bootstrap)


def create_client_function(lam: Any) -> None:
    """The keep-alive Python client above as a ``provided.al2023`` function."""
    create_bash_function(lam, CLIENT_FUNCTION, CLIENT_BOOTSTRAP)


def create_node_function(lam: Any) -> None:
    """The ``{"ok": true}`` handler as a ``nodejs20.x`` function (``index.handler``)."""
    _create(lam, NODE_FUNCTION, NODE_RUNTIME, "index.handler", "index.mjs", NODE_HANDLER)


def warm_provided(server: ServerProcess, calls: int, warmup: int, name: str = BASH_FUNCTION) -> dict[str, Any]:
    """``warm_http`` against a function served over the Runtime API (bash: the Runtime API round trip
    plus the processes bash starts for each event; Node.js: the round trip plus the shim's work)."""
    return warm_http(server, name, calls, warmup)


@dataclass(frozen=True)
class Subject:
    """One function the warm-provided scenario measures."""

    step: str  #: the name of its creation step (an error row if it fails)
    result: str  #: the key of its figures in the results
    function: str
    label: str
    create: Callable[[Any], None]


SUBJECTS = (
    Subject("bash_function", "warm_provided", BASH_FUNCTION, "a bash provided.al2023 function", create_bash_function),
    Subject(
        "client_function",
        "warm_provided_client",
        CLIENT_FUNCTION,
        "a keep-alive Runtime API client",
        create_client_function,
    ),
    Subject("node_function", "warm_node", NODE_FUNCTION, f"a {NODE_RUNTIME} function", create_node_function),
)
