"""What the scenarios drive: a ``squall server`` subprocess, function packages, boto3 clients and a
raw keep-alive HTTP connection that POSTs SigV4-signed invocations."""

from __future__ import annotations

import base64
import http.client
import io
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Sequence
from configparser import ConfigParser
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/r"
RUNTIME = "python3.11"
HANDLER = "app.handler"

PLAIN_SOURCE = 'def handler(event, context):\n    return {"ok": True}\n'
BOTO3_SOURCE = 'import boto3\n\n\ndef handler(event, context):\n    return {"ok": True, "boto3": boto3.__version__}\n'


class BenchError(RuntimeError):
    """Squall did not do what a scenario needs (the message says what it answered instead)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_zip(source: str, salt: str = "") -> bytes:
    """An in-memory deployment package with ``app.py``; ``salt`` makes its hash (and code) unique."""
    if salt:
        source = f"# {salt}\n{source}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def parse_report(log: str) -> dict[str, float]:
    """The numbers of the last ``REPORT`` line of a log tail: ``{"Duration": 0.41, ...}`` (ms, MB)."""
    fields: dict[str, float] = {}
    for line in log.splitlines():
        if not line.startswith("REPORT "):
            continue
        fields = {}
        for part in line.split("\t")[1:]:
            key, _, value = part.partition(": ")
            number = value.split(" ", 1)[0]
            try:
                fields[key] = float(number)
            except ValueError:
                continue
    return fields


class ServerProcess:
    """A ``squall server`` of our own on free loopback ports, with a temporary data dir."""

    def __init__(self, data_dir: Path, extra_args: Sequence[str] = ()) -> None:
        self.data_dir = data_dir
        #: More ``squall server`` options (the ray tier's ``--tier ray --ray-address ...``).
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.gateway_port = free_port()
        self.log_path = data_dir.parent / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> float:
        """Start it and wait until ``/_squall/health`` says ok; returns how long that took (s)."""
        argv = [
            sys.executable, "-m", "squall", "server", "--port", str(self.port),
            "--gateway-port", str(self.gateway_port), "--data-dir", str(self.data_dir),
            "--log-level", "warning", *self.extra_args,
        ]  # fmt: skip
        began = time.perf_counter()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = began + timeout_s
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"squall server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_squall/health", timeout=1) as response:
                    if json.loads(response.read()) == {"status": "ok"}:
                        return time.perf_counter() - began
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"squall server was not healthy after {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then wait; SIGKILL only if it does not stop in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise BenchError(f"squall server ignored SIGTERM for {timeout_s:.0f} s") from None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def credentials(self) -> Credentials:
        parser = ConfigParser()
        parser.read(self.data_dir / "credentials")
        profile = parser["squall"]
        return Credentials(profile["aws_access_key_id"], profile["aws_secret_access_key"])

    def lambda_client(self) -> Any:
        import boto3
        from botocore.config import Config

        creds = self.credentials()
        return boto3.client(
            "lambda",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key,
            config=Config(retries={"max_attempts": 0}, read_timeout=120, connect_timeout=10),
        )


def create_function(lam: Any, name: str, zip_bytes: bytes) -> None:
    """CreateFunction through boto3, then wait (``function_active_v2``) until it is Active."""
    lam.create_function(FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler=HANDLER, Code={"ZipFile": zip_bytes})
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.02, "MaxAttempts": 1500})


@dataclass(frozen=True)
class Reply:
    status: int
    payload: bytes
    log_result: str | None  # X-Amz-Log-Result (base64), only with LogType=Tail
    function_error: str | None

    @property
    def log(self) -> str:
        """The decoded log tail, "" without one (decoded lazily: not inside anyone's clock)."""
        return base64.b64decode(self.log_result).decode(errors="replace") if self.log_result else ""


class SignedConnection:
    """One keep-alive ``http.client`` connection that POSTs SigV4-signed Invoke requests."""

    def __init__(self, host: str, port: int, credentials: Credentials, timeout_s: float = 60.0) -> None:
        self.host = host
        self.port = port
        self.auth = SigV4Auth(credentials, "lambda", REGION)
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        self._cache: dict[tuple[str, bytes, bool], tuple[int, dict[str, str]]] = {}

    @staticmethod
    def path(name: str) -> str:
        return f"/2015-03-31/functions/{name}/invocations"

    def sign(self, name: str, body: bytes, tail: bool = False) -> dict[str, str]:
        """Fresh SigV4 headers for one Invoke of ``name`` with ``body``."""
        headers = {"Content-Type": "application/json"}
        if tail:
            headers["X-Amz-Log-Type"] = "Tail"
        request = AWSRequest(
            method="POST", url=f"http://{self.host}:{self.port}{self.path(name)}", data=body, headers=headers
        )
        self.auth.add_auth(request)
        return dict(request.headers.items())

    def post(self, name: str, body: bytes, headers: dict[str, str]) -> Reply:
        """Send one signed Invoke and read the whole response."""
        self.conn.request("POST", self.path(name), body=body, headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        return Reply(
            status=response.status,
            payload=payload,
            log_result=response.getheader("X-Amz-Log-Result"),
            function_error=response.getheader("X-Amz-Function-Error"),
        )

    def invoke_ok(self, name: str, body: bytes, headers: dict[str, str]) -> Reply:
        """``post``, raising unless Squall answered 200 without a function error."""
        reply = self.post(name, body, headers)
        if reply.status != 200 or reply.function_error:
            raise BenchError(f"Invoke {name}: HTTP {reply.status} {reply.function_error or ''} {reply.payload[:300]!r}")
        return reply

    def close(self) -> None:
        self.conn.close()
