"""An isolated sandbox is one process: PID 1 of its own PID namespace, alone in its cgroup.

The zygote forks each sandbox straight into a new PID namespace, so nothing stands in for it
outside: the zygote, and so Squall, see its own exit status, and a sandbox killed by a signal is
reported as Lambda reports it.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_zip

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="Squall isolates sandboxes only when it runs as root"),
]

SOURCE = """
import ctypes
import os
import time


def handler(event, context):
    if event.get("action") == "segfault":
        ctypes.string_at(0)
    if event.get("action") == "sleep":
        time.sleep(event["seconds"])
    with open("/proc/self/status") as fh:
        nspid = next(line.split()[1:] for line in fh if line.startswith("NSpid:"))
    cgroup = None
    for line in open("/proc/self/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            cgroup = "/sys/fs/cgroup/memory" + path
        elif controllers == "" and path != "/" and cgroup is None:
            cgroup = "/sys/fs/cgroup" + path
    return {"pid": os.getpid(), "nspid": nspid, "uid": os.getuid(), "cgroup": cgroup}
"""


def call(lam: Any, name: str, event: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return response, json.loads(response["Payload"].read())


def status_field(pid: int, field: str) -> list[str]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return line.split()[1:]
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_warm_sandbox_is_pid_one_alone_in_its_cgroup(lam: Any, make_function: Any) -> None:
    make_function("pidns-alone", make_zip({"app.py": SOURCE}))
    _, first = call(lam, "pidns-alone", {})
    _, inside = call(lam, "pidns-alone", {})  # warm: the same sandbox
    assert inside["cgroup"] == first["cgroup"]
    assert inside["pid"] == 1
    assert inside["nspid"] == ["1"]  # its own /proc shows its own namespace only
    if inside["cgroup"] is None or "/spare-" not in inside["cgroup"]:
        pytest.skip("Squall found no writable memory cgroup on this host")
    procs = [int(p) for p in (Path(inside["cgroup"]) / "cgroup.procs").read_text().split()]
    assert len(procs) == 1, f"more than the sandbox itself in its cgroup: {procs}"
    (host_pid,) = procs
    assert inside["cgroup"].endswith(f"/spare-{host_pid}")  # named by the pid Squall knows it by
    host_nspid = status_field(host_pid, "NSpid")
    assert host_nspid[-1] == "1" and host_nspid[-2] == str(host_pid), host_nspid
    assert status_field(host_pid, "Uid")[0] == str(inside["uid"])  # the sandbox itself, not a root stand-in
    # Its parent is the zygote, in the host's namespace.
    parent = int(status_field(host_pid, "PPid")[0])
    assert status_field(parent, "NSpid")[-1] == str(parent)


def test_a_segfault_is_reported_as_lambda_does(lam: Any, make_function: Any) -> None:
    make_function("pidns-segfault", make_zip({"app.py": SOURCE}))
    response, payload = call(lam, "pidns-segfault", {"action": "segfault"})
    rid = response["ResponseMetadata"]["RequestId"]
    assert response["FunctionError"] == "Unhandled"
    assert payload == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: signal: segmentation fault",
    }
    _, again = call(lam, "pidns-segfault", {})  # a fresh sandbox
    assert again["pid"] == 1


def test_a_sandbox_killed_from_outside_is_reported_as_lambda_does(lam: Any, make_function: Any) -> None:
    """SIGKILL to the sandbox's host pid mid-call (what the OOM killer sends, too)."""
    make_function("pidns-killed", make_zip({"app.py": SOURCE}), Timeout=60)
    _, inside = call(lam, "pidns-killed", {})
    if inside["cgroup"] is None or "/spare-" not in inside["cgroup"]:
        pytest.skip("Squall found no writable memory cgroup on this host")
    host_pid = int(inside["cgroup"].rsplit("/spare-", 1)[1])
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(call, lam, "pidns-killed", {"action": "sleep", "seconds": 50})
        deadline = time.monotonic() + 30
        while not _sleeping_in_handler(host_pid):
            assert time.monotonic() < deadline, "the sandbox never started the call"
            time.sleep(0.05)
        os.kill(host_pid, 9)
        response, payload = future.result(timeout=30)
    rid = response["ResponseMetadata"]["RequestId"]
    assert response["FunctionError"] == "Unhandled"
    assert payload == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: signal: killed",
    }


def _sleeping_in_handler(pid: int) -> bool:
    """Whether ``pid`` sleeps in the handler's ``time.sleep`` (not waiting for its next event)."""
    try:
        return "nanosleep" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False
