"""Memory cgroups for sandboxes (v2 where the host lets us write it, else v1).

Each sandbox gets its own cgroup with a hard memory limit. The cgroup also tracks every process
a function starts, so killing a sandbox kills all of them, daemonised or not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


class SandboxCgroup:
    """One sandbox's cgroup: its limit, its processes, and whether the OOM killer struck."""

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version

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
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                self.kill_all()
                time.sleep(0.01)
        log.warning("could not remove cgroup %s", self.path)


class CgroupManager:
    """Squall's own cgroup directory: each spare sandbox creates and joins ``spare-<pid>`` in it
    (see ``bootstrap/isolate.py``), and the claim sets the limits."""

    def __init__(self, base: Path, version: int) -> None:
        self.base = base
        self.version = version

    @classmethod
    def detect(cls, name: str) -> CgroupManager | None:
        """A manager for the first memory cgroup hierarchy we can write, or None."""
        for finder in (_v2_base, _v1_base):
            base = finder(name)
            if base is not None:
                _remove_abandoned(base[0].parent, base[1])
                return cls(base[0], base[1])
        return None

    def adopt(self, pid: int) -> SandboxCgroup:
        """The cgroup a spare sandbox created for itself (``spare-<pid>``) before it was claimed."""
        return SandboxCgroup(self.base / f"spare-{pid}", self.version)

    def close(self) -> None:
        """Remove Squall's directory (sandbox cgroups must be gone already)."""
        for child in self.base.iterdir() if self.base.exists() else []:
            if child.is_dir():
                SandboxCgroup(child, self.version).remove()
        with contextlib.suppress(OSError):
            self.base.rmdir()


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
