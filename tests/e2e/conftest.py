"""A real ``squall server`` on free loopback ports, driven by real boto3 clients."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from configparser import ConfigParser
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int, dict[str, Any]]:
    """(code, message, HTTP status, whole response) of the ClientError that ``call(**kwargs)`` must raise."""
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response = info.value.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SquallServer:
    """A ``squall server`` subprocess with its own data dir."""

    def __init__(self, data_dir: Path, extra_args: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.gateway_port = free_port()
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self._clients: list[Any] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "squall",
            "server",
            "--port",
            str(self.port),
            "--gateway-port",
            str(self.gateway_port),
            "--data-dir",
            str(self.data_dir),
            "--shutdown-grace",
            "3",
            *self.extra_args,
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"squall server exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_squall/health", timeout=1) as response:
                    if json.loads(response.read()) == {"status": "ok"}:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("squall server did not become healthy")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def credentials(self) -> tuple[str, str]:
        parser = ConfigParser()
        parser.read(self.data_dir / "credentials")
        return parser["squall"]["aws_access_key_id"], parser["squall"]["aws_secret_access_key"]

    def client(self, service: str = "lambda", **config: Any) -> Any:
        key, secret = self.credentials()
        client = boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 0}, read_timeout=120, **config),
        )
        self._clients.append(client)
        return client

    def cli_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "AWS_SHARED_CREDENTIALS_FILE": str(self.data_dir / "credentials"),
                "AWS_PROFILE": "squall",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_PAGER": "",
            }
        )
        return env


@pytest.fixture
def new_server(tmp_path: Path) -> Iterator[Any]:
    """Start extra servers for one test (``new_server(*args)``); all are stopped afterwards."""
    started: list[SquallServer] = []

    def start(*args: str, name: str = "data") -> SquallServer:
        server = SquallServer(tmp_path / f"{name}{len(started)}", list(args))
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


@pytest.fixture(scope="session")
def squall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    server = SquallServer(tmp_path_factory.mktemp("squall") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def lam(squall: SquallServer) -> Any:
    return squall.client("lambda")


@pytest.fixture
def make_function(lam: Any, request: pytest.FixtureRequest) -> Any:
    """Create a function from a package and wait until it is Active; deleted after the test."""
    created: list[str] = []

    def create(name: str, zip_bytes: bytes, handler: str = "app.handler", **kwargs: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": "python3.11",
            "Role": ROLE,
            "Handler": handler,
            "Code": {"ZipFile": zip_bytes},
        }
        params.update(kwargs)
        response: dict[str, Any] = lam.create_function(**params)
        created.append(name)
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
        return response

    yield create
    for name in created:
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            lam.delete_function(FunctionName=name)
