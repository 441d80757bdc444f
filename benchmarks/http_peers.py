"""HTTP targets for "requests/s at 1/16/64 connections": ``chalice local`` serving a hello-world route
(from its own venv) and the raw uvloop ceiling (``ceiling_http.py``), each started on a free loopback
port, loaded with ``httpload`` and stopped afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import httpload, peers
from benchmarks.harness import REGION, ServerProcess, build_zip, create_function, free_port

CHALICE_APP = """from chalice import Chalice

app = Chalice(app_name="bench")


@app.route("/")
def index():
    return {"hello": "world"}
"""
CHALICE_CONFIG = {"version": "2.0", "app_name": "bench", "stages": {"dev": {"api_gateway_stage": "api"}}}
EXPECT = b"world"
CEILING = Path(__file__).resolve().parent / "ceiling_http.py"


@contextmanager
def chalice_local(python: Path, workdir: Path) -> Iterator[int]:
    """``chalice local`` on a free port with a one-route app; yields the port."""
    project = workdir / "bench"
    (project / ".chalice").mkdir(parents=True, exist_ok=True)
    (project / "app.py").write_text(CHALICE_APP)
    (project / ".chalice" / "config.json").write_text(json.dumps(CHALICE_CONFIG))
    port = free_port()
    log = workdir / "chalice.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(python.absolute().parent / "chalice"), "local", "--host", "127.0.0.1", "--port", str(port)],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        peers.wait_http(f"http://127.0.0.1:{port}/", proc, 60.0, log)
        yield port
    finally:
        peers.stop(proc)


@contextmanager
def ceiling_server(workdir: Path) -> Iterator[int]:
    """The raw uvloop server forwarding to a warm worker; yields the port."""
    port = free_port()
    log = workdir / "ceiling.log"
    workdir.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-s", str(CEILING), str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        peers.wait_http(f"http://127.0.0.1:{port}/", proc, 30.0, log)
        yield port
    finally:
        peers.stop(proc)


def curve(
    port: int,
    path: str,
    connections: tuple[int, ...],
    seconds: float,
    progress: Callable[[str], None],
    label: str,
    virtual_host: str | None = None,
) -> dict[str, Any]:
    """Requests/s at each connection count; keyed by the count (as a string, for JSON)."""
    result: dict[str, Any] = {}
    for count in connections:
        run = httpload.load(
            "127.0.0.1", port, path, count, seconds, min(1.0, seconds / 2), EXPECT, virtual_host=virtual_host
        )
        progress(f"  {label}: {count} connections: {run['requests_per_s']['p50']:.0f} req/s")
        result[str(count)] = run
    return result


GATEWAY_SOURCE = (
    "import json\n\n\ndef handler(event, context):\n"
    '    return {"statusCode": 200, "headers": {"content-type": "application/json"},'
    ' "body": json.dumps({"hello": "world"})}\n'
)


def squall_gateway(
    server: ServerProcess,
    lam: Any,
    connections: tuple[int, ...],
    seconds: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Squall's gateway: an HTTP API quick-created (apigatewayv2 CreateApi with a Lambda target) in
    front of a function returning the same hello-world body, addressed by its ``execute-api`` Host."""
    import boto3

    create_function(lam, "bench-gateway", build_zip(GATEWAY_SOURCE))
    arn = lam.get_function(FunctionName="bench-gateway")["Configuration"]["FunctionArn"]
    creds = server.credentials()
    factory: Any = boto3.client
    apis = factory(
        "apigatewayv2",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
    )
    api = apis.create_api(Name="bench", ProtocolType="HTTP", Target=arn)
    host = api["ApiEndpoint"].split("//", 1)[1]
    return curve(server.gateway_port, "/", connections, seconds, progress, "squall gateway", virtual_host=host)
