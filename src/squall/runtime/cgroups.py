"""Memory and CPU cgroups for sandboxes (v2 where the host lets us write it, else v1).

Each sandbox gets its own cgroup with a hard memory limit. The cgroup also tracks every process
a function starts, so killing a sandbox kills all of them, daemonised or not.

CPU follows memory as on Lambda: a hard CFS quota of ``memory / 1,769 MB`` CPUs per period (1,769 MB
is one full CPU, 128 MB about 7%, 10,240 MB 5.79 CPUs), plus a proportional weight so that an
oversubscribed host also shares in that ratio. On v2 the memory cgroup carries ``cpu.max`` and
``cpu.weight`` too; on v1 the ``cpu`` controller is a hierarchy of its own, so each sandbox has a
second directory there, with the same name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: Lambda's ratio: a function gets one vCPU-second of CPU time per second at 1,769 MB, linearly.
MB_PER_VCPU = 1769
CPU_PERIOD_US = 100_000


def cpus_for(memory_mb: int) -> float:
    """The CPUs (a fraction above 0) Lambda gives a function of ``memory_mb``."""
    return memory_mb / MB_PER_VCPU


class SandboxCgroup:
    """One sandbox's cgroup: its limit, its processes, and whether the OOM killer struck."""

    def __init__(self, path: Path, version: int, cpu_path: Path | None = None) -> None:
        self.path = path
        self.version = version
        #: The v1 ``cpu`` hierarchy's directory of the sandbox (None on v2 or without it).
        self.cpu_path = cpu_path

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def oom_killed(self) -> bool:
        """True when the kernel killed a process here for exceeding the limit."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            text = (self.path / name).read_text()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and int(value) > 0:
                return True
        return False

    def peak_mb(self) -> int | None:
        """The highest memory use of the cgroup, when the kernel reports it."""
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return -(-int((self.path / name).read_text()) // (1024 * 1024))
        except (OSError, ValueError):
            return None

    def anon_mb(self) -> int | None:
        """Anonymous memory of the cgroup (its processes' own memory, without tmpfs or page cache)."""
        key = "anon" if self.version == 2 else "rss"
        try:
            with open(self.path / "memory.stat") as fh:
                for line in fh:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value) // (1024 * 1024)
        except (OSError, ValueError):
            return None
        return None

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in Path(self.procs_file).read_text().split()]
        except OSError:
            return []

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup, including ones that escaped the session."""
        if self.version == 2 and (self.path / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (self.path / "cgroup.kill").write_text("1")
            return
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.002)

    def remove(self) -> None:
        """Delete the cgroup once its processes are gone (retrying briefly while they exit)."""
        _remove_when_empty(self.path, self.kill_all)
        if self.cpu_path is not None:
            _remove_when_empty(self.cpu_path)


def _remove_when_empty(path: Path, meanwhile: Callable[[], None] | None = None) -> None:
    """Delete a cgroup directory once its processes have left, calling ``meanwhile`` between tries
    (a v1 ``cpu`` directory needs no killing: its memory twin's processes are the same)."""
    for _ in range(100):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if meanwhile is not None:
                meanwhile()
            time.sleep(0.01)
    log.warning("could not remove cgroup %s", path)


def _remove_tree(base: Path) -> None:
    """Delete a v1 ``cpu`` directory of Squall's and its sandboxes' directories in it."""
    for child in base.iterdir() if base.exists() else []:
        if child.is_dir():
            _remove_when_empty(child)
    with contextlib.suppress(OSError):
        base.rmdir()


class CgroupManager:
    """Squall's own cgroup directory: each spare sandbox creates and joins ``spare-<pid>`` in it
    (see ``bootstrap/isolate.py``), and the claim sets the limits.

    ``cpu`` says whether CPU limits apply; ``cpu_base`` is the v1 ``cpu`` hierarchy's directory
    (on v2 the CPU files live beside the memory ones, in ``base``).
    """

    def __init__(self, base: Path, version: int, cpu: bool = False, cpu_base: Path | None = None) -> None:
        self.base = base
        self.version = version
        self.cpu = cpu
        self.cpu_base = cpu_base

    @classmethod
    def detect(cls, name: str) -> CgroupManager | None:
        """A manager for the first memory cgroup hierarchy we can write, or None."""
        for finder in (_v2_base, _v1_base):
            base = finder(name)
            if base is None:
                continue
            _remove_abandoned(base[0].parent, base[1])
            if base[1] == 2:
                return cls(base[0], 2, cpu=_v2_cpu(base[0]))
            cpu_base = _v1_cpu_base(name)
            return cls(base[0], 1, cpu=cpu_base is not None, cpu_base=cpu_base)
        return None

    def spare_setup(self, cpu: bool = True) -> dict[str, Any]:
        """What a zygote's spares need to join their cgroups before they are claimed (the v1 cpu
        hierarchy only when ``cpu``: a group there also changes how the host shares its CPU)."""
        return {
            "cgroup_base": str(self.base),
            "cgroup_version": self.version,
            "cpu_cgroup_base": None if self.cpu_base is None or not cpu else str(self.cpu_base),
        }

    def cpus(self, memory_mb: int) -> float | None:
        """The CPU limit of a sandbox of ``memory_mb`` (None when no CPU cgroup is writable)."""
        return cpus_for(memory_mb) if self.cpu else None

    def adopt(self, pid: int) -> SandboxCgroup:
        """The cgroup a spare sandbox created for itself (``spare-<pid>``) before it was claimed."""
        cpu_path = None if self.cpu_base is None else self.cpu_base / f"spare-{pid}"
        return SandboxCgroup(self.base / f"spare-{pid}", self.version, cpu_path)

    def close(self) -> None:
        """Remove Squall's directories (sandbox cgroups must be gone already)."""
        for child in self.base.iterdir() if self.base.exists() else []:
            if child.is_dir():
                SandboxCgroup(child, self.version).remove()
        with contextlib.suppress(OSError):
            self.base.rmdir()
        if self.cpu_base is not None:
            _remove_tree(self.cpu_base)


def _remove_abandoned(parent: Path, version: int) -> None:
    """Remove the cgroups of Squall servers that died without cleaning up (``squall-<dead pid>``)."""
    for stale in parent.glob("squall-*"):
        pid = stale.name.removeprefix("squall-")
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        with contextlib.suppress(OSError):
            CgroupManager(stale, version).close()


def _own_path(controller: str) -> str | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


def _v1_cpu_base(name: str) -> Path | None:
    """Squall's directory in the v1 ``cpu`` hierarchy, when there is one we can write."""
    mount = CGROUP_ROOT / "cpu"
    own = _own_path("cpu")
    if own is None or not (mount / "cpu.cfs_quota_us").exists():
        return None
    base = mount / own.lstrip("/") / name
    for stale in base.parent.glob("squall-*"):
        pid = stale.name.removeprefix("squall-")
        if pid.isdigit() and stale != base and not Path(f"/proc/{pid}").exists():
            _remove_tree(stale)
    try:
        base.mkdir(exist_ok=True)
    except OSError:
        return None
    return base


def _v2_cpu(base: Path) -> bool:
    """Delegate the v2 ``cpu`` controller to the sandboxes under ``base``, if the host allows it."""
    try:
        if "cpu" not in (base.parent / "cgroup.subtree_control").read_text().split():
            (base.parent / "cgroup.subtree_control").write_text("+cpu")
        (base / "cgroup.subtree_control").write_text("+cpu")
    except OSError:
        return False
    return True


def _v1_base(name: str) -> tuple[Path, int] | None:
    mount = CGROUP_ROOT / "memory"
    own = _own_path("memory")
    if own is None or not (mount / "memory.limit_in_bytes").exists():
        return None
    base = mount / own.lstrip("/") / name
    try:
        base.mkdir(exist_ok=True)
        if (base / "memory.use_hierarchy").exists():
            (base / "memory.use_hierarchy").write_text("1")
    except OSError:
        return None
    return base, 1


def _v2_base(name: str) -> tuple[Path, int] | None:
    # Only a pure v2 hierarchy with the memory controller delegated to us counts.
    root = CGROUP_ROOT
    controllers = root / "cgroup.controllers"
    if not controllers.exists() or "memory" not in controllers.read_text().split():
        return None
    own = _own_path("")
    if own is None:
        return None
    parent = root / own.lstrip("/")
    try:
        if "memory" not in (parent / "cgroup.subtree_control").read_text().split():
            (parent / "cgroup.subtree_control").write_text("+memory")
        base = parent / name
        base.mkdir(exist_ok=True)
        (base / "cgroup.subtree_control").write_text("+memory")
    except OSError:
        return None
    return base, 2
