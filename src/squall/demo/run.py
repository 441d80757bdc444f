"""``squall demo`` (and ``make demo``): start a server, show the sample function, then run every
pipeline of ``examples/`` at once and say, per pipeline, what went in, what came out, and what it
cost. Exits 0 only if every pipeline produced its expected output.

It uses the settings a user's ``squall server`` would (ports 8990/8991 and ``.squall`` unless
``SQUALL_*`` variables say otherwise) and stops the server when done.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from configparser import ConfigParser
from pathlib import Path

from squall.config import Settings
from squall.demo.hello import run_hello
from squall.demo.pipelines import EXAMPLES, PipelineReport, Server, discover, run_pipeline

_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(
                "squall server exited: is its port in use? (see the lines above; SQUALL_PORT and "
                "SQUALL_GATEWAY_PORT choose others)"
            )
        try:
            with urllib.request.urlopen(f"{url}/_squall/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("squall server did not become healthy within 60 s")


def _check_free(host: str, port: int, variable: str) -> None:
    """Refuse to start when something already listens there: the demo would talk to it instead."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise SystemExit(
                f"port {port} on {host} is in use (another squall server?): stop it, or set {variable} to a free port"
            ) from None


def _server_of(settings: Settings, data_dir: Path) -> Server:
    creds = ConfigParser()
    creds.read(data_dir / "credentials")
    return Server(
        endpoint_url=settings.endpoint_url,
        gateway_url=f"http://127.0.0.1:{settings.gateway_port}",
        data_dir=data_dir,
        region=settings.region,
        account_id=settings.account_id,
        access_key=creds["squall"]["aws_access_key_id"],
        secret_key=creds["squall"]["aws_secret_access_key"],
    )


def run_all(server: Server, folders: Sequence[Path]) -> list[PipelineReport]:
    """Every pipeline at the same time (the schedule's one waits for its minute), with progress."""

    def one(folder: Path) -> PipelineReport:
        return run_pipeline(server, folder, lambda line: say(f"  [{folder.name}] {line}"))

    with ThreadPoolExecutor(max_workers=max(1, len(folders))) as pool:
        return list(pool.map(one, folders))


def report(results: Sequence[PipelineReport]) -> None:
    for result in results:
        say(f"==> {result.name}: {result.title}")
        if result.outcome is not None:
            for line in result.outcome.went_in:
                say(f"    in:  {line}")
            for line in result.outcome.came_out:
                say(f"    out: {line}")
        if result.failure:
            say(f"    FAILED: {result.failure}")
        bill = result.bill
        say(
            f"    {bill.invocations} invocations ({bill.errors} errors), {bill.gb_seconds:.4f} GB-s, "
            f"${bill.dollars:.8f} at Lambda's list prices; deployed {result.deployed} resources in "
            f"{result.deploy_s:.1f} s, ran in {result.run_s:.1f} s -> {'PASS' if result.ok else 'FAIL'}"
        )


def main(only: Sequence[str] = ()) -> int:
    """Run the demo; the exit status: 0 when every pipeline passed."""
    settings = Settings.load()  # the same SQUALL_* variables the server reads
    folders = [f for f in discover(EXAMPLES) if not only or f.name in only]
    unknown = set(only) - {f.name for f in folders}
    if unknown:
        raise SystemExit(f"no such pipeline: {', '.join(sorted(unknown))} (see examples/)")
    _check_free(settings.host, settings.port, "SQUALL_PORT")
    _check_free(settings.host, settings.gateway_port, "SQUALL_GATEWAY_PORT")
    say(f"==> starting squall server on {settings.endpoint_url} (data in {settings.data_dir}/)")
    server = subprocess.Popen([sys.executable, "-m", "squall", "server", "--log-level", "warning"], env=os.environ)
    began = time.monotonic()
    try:
        _wait_healthy(settings.endpoint_url, server)
        target = _server_of(settings, settings.data_dir)
        if not only:
            run_hello(target)
        say(f"==> running {len(folders)} pipelines: {', '.join(f.name for f in folders)}")
        results = run_all(target, folders)
        report(results)
    finally:
        server.terminate()
        server.wait(30)
    passed = sum(r.ok for r in results)
    say(f"==> {passed} of {len(results)} pipelines passed in {time.monotonic() - began:.0f} s")
    say("==> done: the server stopped and left no process behind")
    return 0 if passed == len(results) else 1
