"""The server's life: restart keeps state, shutdown is graceful and leaves no process behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import function_zip, make_zip

from .conftest import ROLE, SquallServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MARKER_FN = make_zip({"app.py": "def handler(event, context):\n    print('ran', event['n'])\n    return event\n"})


def processes_of(server_pid: int) -> list[int]:
    """Live processes a server started: its children (zygotes) and whatever runs in its sandbox cgroups."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            cgroups = Path(f"/proc/{entry}/cgroup").read_text()
        except OSError:
            continue
        ppid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        if ppid == server_pid or f"/squall-{server_pid}/" in cgroups:
            found.append(int(entry))
    return found


def squall_logs(server: SquallServer, name: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "squall", "logs", name, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_restart_keeps_functions_and_queued_events(new_server: Any) -> None:
    server = new_server("--concurrency-limit", "1")
    lam = server.client()
    lam.create_function(
        FunctionName="keeper",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": MARKER_FN},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="keeper", WaiterConfig={"Delay": 0.05})
    lam.create_function(
        FunctionName="hog",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": function_zip("probe", "app")},
        Timeout=30,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="hog", WaiterConfig={"Delay": 0.05})

    # The only concurrency slot is busy, so the events wait in the queue...
    def occupy() -> None:
        with contextlib.suppress(Exception):  # the server dies under it
            lam.invoke(FunctionName="hog", Payload=b'{"action": "sleep", "seconds": 20}')

    hog = threading.Thread(target=occupy)
    hog.start()
    time.sleep(1.0)
    for n in range(3):
        assert (
            lam.invoke(FunctionName="keeper", InvocationType="Event", Payload=json.dumps({"n": n}).encode())[
                "StatusCode"
            ]
            == 202
        )
    # ...when the server dies hard.
    server.stop(signal.SIGKILL)
    hog.join()
    server.start()
    lam = server.client()
    assert lam.get_function(FunctionName="keeper")["Configuration"]["State"] == "Active"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log = squall_logs(server, "keeper")
        if all(f"ran {n}" in log for n in range(3)):
            break
        time.sleep(0.2)
    assert all(f"ran {n}" in log for n in range(3)), log
    server.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown_finishes_in_flight_and_leaves_no_process(new_server: Any, sig: int) -> None:
    server = new_server()
    lam = server.client()
    assert server.proc is not None
    server_pid = server.proc.pid
    lam.create_function(
        FunctionName="lingering",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": function_zip("probe", "app")},
        Timeout=30,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="lingering", WaiterConfig={"Delay": 0.05})
    # A daemonised grandchild that tries to outlive everything.
    lam.invoke(FunctionName="lingering", Payload=b'{"action": "daemon", "seconds": 300}')["Payload"].read()
    results: list[Any] = []

    def in_flight() -> None:
        response = lam.invoke(FunctionName="lingering", Payload=b'{"action": "sleep", "seconds": 1}')
        results.append(json.loads(response["Payload"].read()))

    worker = threading.Thread(target=in_flight)
    worker.start()
    time.sleep(0.3)
    running = processes_of(server_pid)
    assert len(running) >= 3, f"the zygote, the sandbox and its daemon should be running: {running}"
    server.stop(sig)
    worker.join()
    assert results == ["slept"], "the in-flight invocation finishes during shutdown"
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{pid}").exists() for pid in running) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in running if Path(f"/proc/{pid}").exists()] == []


def test_shutdown_kills_invocations_past_the_grace_period(new_server: Any) -> None:
    server = new_server()  # --shutdown-grace 3
    lam = server.client()
    lam.create_function(
        FunctionName="stubborn",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": function_zip("probe", "app")},
        Timeout=60,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="stubborn", WaiterConfig={"Delay": 0.05})
    results: list[Any] = []

    def in_flight() -> None:
        response = lam.invoke(FunctionName="stubborn", Payload=b'{"action": "ignore_sigterm", "seconds": 60}')
        results.append((response.get("FunctionError"), json.loads(response["Payload"].read())))

    worker = threading.Thread(target=in_flight)
    worker.start()
    time.sleep(0.5)
    assert server.proc is not None
    running = processes_of(server.proc.pid)
    started = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 15
    worker.join()
    assert results and results[0][0] == "Unhandled"
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{pid}").exists() for pid in running) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {pid: Path(f"/proc/{pid}/status").read_text()[:300] for pid in running if Path(f"/proc/{pid}").exists()}
    assert left == {}


def test_no_auth_mode_accepts_unsigned_requests(new_server: Any) -> None:
    import urllib.request

    server = new_server("--no-auth")
    body = json.dumps(
        {
            "FunctionName": "open-fn",
            "Runtime": "python3.11",
            "Role": ROLE,
            "Handler": "app.handler",
            "Code": {"ZipFile": __import__("base64").b64encode(MARKER_FN).decode()},
        }
    ).encode()
    request = urllib.request.Request(
        f"{server.url}/2015-03-31/functions", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 201
    server.client().get_waiter("function_active_v2").wait(FunctionName="open-fn", WaiterConfig={"Delay": 0.05})
    invoke = urllib.request.Request(
        f"{server.url}/2015-03-31/functions/open-fn/invocations", data=b'{"n": 7}', method="POST"
    )
    with urllib.request.urlopen(invoke) as response:
        assert json.loads(response.read()) == {"n": 7}
    assert "NOT authenticated" in server.log_path.read_text()
