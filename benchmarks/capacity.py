"""Memory per idle warm sandbox and how many warm sandboxes this machine holds.

Both warm sandboxes the same way: N synchronous invokes of a new function sent at once (as in the
burst), each handler holding its sandbox for a moment so that all N run side by side and N distinct
sandboxes stay warm afterwards. Each handler answers with its memory cgroup (``/proc/self/cgroup``),
whose ``cgroup.procs`` lists every host process of that sandbox. Once all are idle:

* **USS** (unique set size: Private_Clean + Private_Dirty + Private_Hugetlb) and **PSS** (Pss) of a
  sandbox, summed over its processes' ``/proc/<pid>/smaps_rollup``; median and spread over N; also the
  cgroup's own charge (``memory.usage_in_bytes`` / ``memory.current``: page tables, its tmpfs, ...);
* **capacity**: MemAvailable (``/proc/meminfo``) just before and after warming N sandboxes gives
  the whole machine's cost of one (kernel included); the machine holds N plus what MemAvailable still
  has room for at that cost. The server's own USS (the server and its zygotes) is shown beside it.

Needs the sandbox cgroups, so Squall running as root.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.burst import invoke_all
from benchmarks.harness import HANDLER, ROLE, RUNTIME, BenchError, ServerProcess, build_zip
from benchmarks.stats import Summary

#: The per-sandbox goal of the issue.
GOAL_USS_MB = 5.0
HOLD_S = 2.0
SOURCE = """import time
{imports}

def handler(event, context):
    time.sleep(event["hold_s"])
    found = None
    for line in open("/proc/self/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return {{"cgroup": "/sys/fs/cgroup/memory" + path}}
        if controllers == "" and path != "/":
            found = "/sys/fs/cgroup" + path
    return {{"cgroup": found}}
"""
VARIANTS = {"plain": "", "boto3": "import boto3\n"}


def _kb_fields(path: str, names: tuple[str, ...]) -> dict[str, int]:
    values = dict.fromkeys(names, 0)
    with open(path) as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0])
    return values


def process_memory_kb(pid: int) -> tuple[int, int]:
    """USS and PSS of one process, in KiB (0, 0 when it is gone)."""
    try:
        f = _kb_fields(f"/proc/{pid}/smaps_rollup", ("Pss", "Private_Clean", "Private_Dirty", "Private_Hugetlb"))
    except (OSError, ValueError):
        return 0, 0
    return f["Private_Clean"] + f["Private_Dirty"] + f["Private_Hugetlb"], f["Pss"]


def mem_available_kb() -> int:
    return _kb_fields("/proc/meminfo", ("MemAvailable",))["MemAvailable"]


def sandbox_memory(cgroup: Path) -> dict[str, float]:
    """USS, PSS and the cgroup's charge of one sandbox, in MiB."""
    pids = [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
    uss = pss = 0
    for pid in pids:
        u, p = process_memory_kb(pid)
        uss, pss = uss + u, pss + p
    charge_file = cgroup / "memory.usage_in_bytes"  # v1; v2 calls it memory.current
    if not charge_file.exists():
        charge_file = cgroup / "memory.current"
    return {
        "uss_mb": uss / 1024,
        "pss_mb": pss / 1024,
        "cgroup_mb": int(charge_file.read_text()) / 2**20,
        "processes": len(pids),
    }


def server_overhead_mb(server: ServerProcess) -> dict[str, float]:
    """USS and PSS of the server process and its direct children (the zygotes), in MiB."""
    assert server.proc is not None
    pids = [server.proc.pid]
    for task in Path(f"/proc/{server.proc.pid}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    totals = [process_memory_kb(pid) for pid in pids]
    return {
        "uss_mb": round(sum(t[0] for t in totals) / 1024, 1),
        "pss_mb": round(sum(t[1] for t in totals) / 1024, 1),
        "processes": len(pids),
    }


def warm(server: ServerProcess, lam: Any, variant: str, count: int) -> tuple[str, list[Path]]:
    """A new function with ``count`` distinct warm, idle sandboxes: its name and their cgroups."""
    name = f"bench-mem-{variant}-{uuid.uuid4().hex[:6]}"
    lam.create_function(
        FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler=HANDLER, Timeout=60,
        Code={"ZipFile": build_zip(SOURCE.format(imports=VARIANTS[variant]), salt=name)},
    )  # fmt: skip
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 1200})
    hold_s = max(HOLD_S, count / 50)
    _, answers, errors = invoke_all(server, name, count, json.dumps({"hold_s": hold_s}).encode())
    cgroups = sorted({a["cgroup"] for a in answers if a.get("cgroup")})
    if errors or len(cgroups) != count:
        lam.delete_function(FunctionName=name)
        raise BenchError(f"warming {count} sandboxes: {len(cgroups)} distinct cgroups, errors {errors[:2]}")
    time.sleep(1.0)  # let the answers' bookkeeping finish: the sandboxes are idle now
    return name, [Path(c) for c in cgroups]


def idle_memory(server: ServerProcess, lam: Any, variant: str, count: int) -> dict[str, Any]:
    """USS, PSS and cgroup charge of ``count`` idle warm sandboxes of one function."""
    name, cgroups = warm(server, lam, variant, count)
    try:
        samples = [sandbox_memory(c) for c in cgroups]
    finally:
        lam.delete_function(FunctionName=name)
    return {
        "variant": variant,
        "sandboxes": count,
        "uss_mb": Summary.of([s["uss_mb"] for s in samples]).as_dict(),
        "pss_mb": Summary.of([s["pss_mb"] for s in samples]).as_dict(),
        "cgroup_mb": Summary.of([s["cgroup_mb"] for s in samples]).as_dict(),
        "processes": statistics.median(s["processes"] for s in samples),
        "goal_uss_mb": GOAL_USS_MB,
    }


def capacity(server: ServerProcess, lam: Any, count: int) -> dict[str, Any]:
    """Warm ``count`` no-import sandboxes and extrapolate from MemAvailable what the machine holds."""
    before = mem_available_kb()
    name, cgroups = warm(server, lam, "plain", count)
    try:
        after = mem_available_kb()
        samples = [sandbox_memory(c) for c in cgroups]
        overhead = server_overhead_mb(server)
    finally:
        lam.delete_function(FunctionName=name)
    per_sandbox_mb = (before - after) / 1024 / count
    uss_mb = statistics.median(s["uss_mb"] for s in samples)
    if per_sandbox_mb <= 0:
        raise BenchError(f"MemAvailable grew while {count} sandboxes warmed: the machine is too busy to measure")
    return {
        "method": f"warmed {count}, extrapolated from MemAvailable",
        "warmed": count,
        "mem_available_before_mb": round(before / 1024),
        "mem_available_after_mb": round(after / 1024),
        "per_sandbox_mb": round(per_sandbox_mb, 2),
        "uss_mb_p50": round(uss_mb, 2),
        "server_overhead": overhead,
        "sandboxes": int(count + after / 1024 / per_sandbox_mb),
        "sandboxes_by_uss": int(count + after / 1024 / uss_mb),
    }
