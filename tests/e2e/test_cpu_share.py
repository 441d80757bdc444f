"""CPU follows memory, as on Lambda: 1,769 MB is one full CPU, 128 MB about 7% of one.

A CPU-bound handler spins for about a second of wall time and reports the CPU time it got; at 128 MB
that must stay far below a core, at 1,769 MB it must be most of one. The handler also reads its own
cgroup's quota (``/sys`` is visible read-only inside the sandbox) to show which limit was set.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.conftest import SquallServer
from tests.e2e.test_cli import DOCS, code_blocks
from tests.e2e.test_docs_examples import run_python
from tests.e2e.test_hostile import create

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="Squall uses cgroups only when it runs as root"),
]

SOURCE = """import time


def _cpu_dir():
    for line in open("/proc/self/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            return f"/sys/fs/cgroup/cpu{path}", ("cpu.cfs_quota_us", "cpu.cfs_period_us")
        if controllers == "" and path != "/":
            return f"/sys/fs/cgroup{path}", ("cpu.max",)
    return None, ()


def _read(directory, name):
    with open(f"{directory}/{name}") as fh:
        return fh.read().strip()


def _throttled(directory):
    stat = dict(line.split() for line in _read(directory, "cpu.stat").splitlines())
    return int(stat["nr_periods"]), int(stat["nr_throttled"])


def handler(event, context):
    directory, quota_files = _cpu_dir()
    before = _throttled(directory)
    wall = time.perf_counter()
    cpu = time.process_time()
    while time.perf_counter() - wall < event["seconds"]:
        sum(range(1000))
    share = (time.process_time() - cpu) / (time.perf_counter() - wall)
    after = _throttled(directory)
    return {
        "share": share,
        "quota": " ".join(_read(directory, name) for name in quota_files),
        "periods": after[0] - before[0],
        "throttled": after[1] - before[1],
    }
"""


def cpu_cgroup_missing(server: SquallServer) -> bool:
    """True when the server said at start-up that it cannot limit CPU."""
    return "no writable CPU cgroup" in server.log_path.read_text(errors="replace")


def host_has_writable_cgroups() -> bool:
    """Whether this machine lets root write a CPU cgroup (v1 ``cpu`` hierarchy or v2 root)."""
    for probe in (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cgroup.subtree_control")):
        if probe.exists() and os.access(probe.parent, os.W_OK):
            return True
    return False


def spin(lam: Any, make_function: Any, memory_mb: int) -> dict[str, Any]:
    name = f"cpu-{memory_mb}-{uuid.uuid4().hex[:6]}"
    make_function(name, make_zip({"app.py": SOURCE}), MemorySize=memory_mb, Timeout=60)
    response = lam.invoke(FunctionName=name, Payload=json.dumps({"seconds": 1.5}).encode())
    assert "FunctionError" not in response, response["Payload"].read()
    result: dict[str, Any] = json.loads(response["Payload"].read())
    return result


def make_function_on(server: SquallServer) -> Any:
    """A ``make_function`` for a server of the test's own."""
    return functools.partial(create, server.client("lambda"))


def require_cpu_cgroup(server: SquallServer) -> None:
    """Skip when the server has no CPU cgroup, unless under CI on a host that has writable ones."""
    if cpu_cgroup_missing(server):
        if os.environ.get("CI") and host_has_writable_cgroups():
            pytest.fail("the server found no writable CPU cgroup on a host that has one")
        pytest.skip("the server reports no writable CPU cgroup")


def test_cpu_quota_follows_memory(new_server: Any) -> None:
    """``--cpu-limit quota``: each sandbox is capped at its share, as on Lambda."""
    server = new_server("--cpu-limit", "quota")
    require_cpu_cgroup(server)
    lam = server.client("lambda")
    small = spin(lam, make_function_on(server), 128)
    full = spin(lam, make_function_on(server), 1769)
    print(f"CPU share at 128 MB: {small}; at 1,769 MB: {full}")
    # The quota: 128 / 1769 of a CPU (7.2%), and one whole CPU.
    assert small["quota"] == "7236 100000", small
    assert full["quota"] == "100000 100000", full
    # At 128 MB the handler runs into the cap in most periods and gets far less than a core.
    assert small["share"] < 0.20, small
    assert small["throttled"] > small["periods"] / 2, small
    # At 1,769 MB one thread never exceeds its quota: what it gets is what the (shared, possibly
    # busy) machine gives it, so the share bound is generous and the throttle count is the proof.
    assert full["throttled"] <= max(2, full["periods"] // 4), full
    assert full["share"] > max(0.25, 2 * small["share"]), full


def test_cpu_is_not_capped_by_default(squall: SquallServer, lam: Any, make_function: Any) -> None:
    """The default, ``--cpu-limit none``: a 128 MB function may use whatever CPU is free."""
    small = spin(lam, make_function, 128)
    assert small["quota"] in ("-1 100000", "max 100000"), small
    assert small["throttled"] == 0, small


def test_docs_cpu_example(new_server: Any, tmp_path: Path) -> None:
    """docs/cpu.md's example, run as a reader would against ``squall server --cpu-limit quota``:
    a 128 MB spinning handler gets about 7%."""
    (command,) = [code for language, code in code_blocks((DOCS / "cpu.md").read_text()) if language == "bash"]
    assert command.split() == ["squall", "server", "--cpu-limit", "quota"]
    server = new_server(*command.split()[2:])
    require_cpu_cgroup(server)
    (code,) = [code for language, code in code_blocks((DOCS / "cpu.md").read_text()) if language == "python"]
    output = run_python(server, tmp_path, code).strip()
    prefix, _, rest = output.partition(": ")
    assert prefix == "128 MB" and rest.endswith("% of a CPU"), output
    assert 1 <= int(rest.removesuffix("% of a CPU")) < 20, output
