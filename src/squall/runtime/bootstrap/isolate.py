"""Confinement of a freshly forked sandbox, applied by the sandbox to itself before user code runs.

With root privileges a sandbox gets: its own mount and IPC namespaces, a new root filesystem that
holds only the system directories (read-only), the interpreter, its function's code at
``/var/task`` (read-only) and its own ``/tmp``; resource limits; a memory cgroup and a CPU quota in
proportion to its memory; and finally an
unprivileged uid of its own. This is what bubblewrap does, done in-process after ``fork()`` so the
zygote's pre-imported modules survive (exec'ing bwrap would throw them away). Without root
privileges only the resource limits apply. Standard library only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_NOEXEC = 8
PR_SET_CHILD_SUBREAPER = 36
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
SYS_PIVOT_ROOT = 155  # x86_64
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)),
        f"mount {source} on {target}",
    )


def _b(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _bind(source: str, target: str, readonly: bool) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(source, target, None, MS_BIND | MS_REC)
    if readonly:
        _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_REC)


def set_parent_death_signal() -> None:
    """Die with SIGKILL when the parent (the zygote) dies, so no sandbox is ever orphaned."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def join_cgroup(directory: str) -> None:
    """Create this process's own cgroup and move into it (its children follow it).

    Moving a process between cgroups is slow (milliseconds, on v1), so spares do it before
    they are claimed; the claim only sets the limit.
    """
    os.mkdir(directory, 0o755)
    with open(os.path.join(directory, "cgroup.procs"), "w") as fh:
        fh.write("0")  # this very process (its pid may be 1 of a namespace of its own)


def limit_memory(directory: str, version: int, limit_bytes: int) -> None:
    """Set the hard memory limit of this process's cgroup, swap included (its memory plus its
    tmpfs ``/tmp``, whose pages the kernel charges to the cgroup too)."""
    files = (
        ("memory.max", "memory.swap.max") if version == 2 else ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
    )
    values = (limit_bytes, 0) if version == 2 else (limit_bytes, limit_bytes)
    for name, value in zip(files, values, strict=True):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            with open(path, "w") as fh:
                fh.write(str(value))


def limit_cpu(directory: str, version: int, cpus: float, quota: bool, period_us: int = 100_000) -> None:
    """Weigh this process's cgroup by ``cpus`` against its neighbours and, with ``quota``, also cap it
    at ``cpus`` CPUs of time per period (a hard CFS quota, as Lambda's CPU credits are)."""
    quota_us = max(1000, round(cpus * period_us))  # the kernel refuses quotas below 1 ms
    if version == 2:
        values = {
            "cpu.max": f"{quota_us if quota else 'max'} {period_us}",
            "cpu.weight": str(min(10_000, max(1, round(100 * cpus)))),
        }
    else:
        values = {
            "cpu.cfs_period_us": str(period_us),
            "cpu.cfs_quota_us": str(quota_us if quota else -1),
            "cpu.shares": str(max(2, round(1024 * cpus))),
        }
    for name, value in values.items():
        with open(os.path.join(directory, name), "w") as fh:
            fh.write(value)


def enter_namespaces(pid: bool = True) -> None:
    """New mount, IPC and UTS namespaces and, with ``pid``, a new PID namespace whose PID 1 is the
    next child forked (without it: the caller already is PID 1 of one, see ``PidNamespaceForker``)."""
    flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (CLONE_NEWPID if pid else 0)
    _check(_libc.unshare(flags), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)


class PidNamespaceForker:
    """Forks children that are each PID 1 of a PID namespace of their own, while the forking
    process (the zygote) stays in its own namespace.

    ``unshare(CLONE_NEWPID)`` moves only the caller's *children* into a new namespace, so the next
    fork is its PID 1; ``setns`` on the caller's own namespace then points its later children back
    at it (a second unshare would fail with EINVAL until then). The child thus needs no stand-in
    outside the namespace to be waited for: the zygote sees its exit status and signals directly.
    """

    def __init__(self) -> None:
        self._own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            # setns first: where it is refused (a user namespace that does not own ours), an
            # unshare already made could not be undone and every later fork would land in it.
            self._restore()
            self._new_namespace()
            self._restore()
        except OSError:
            os.close(self._own)
            raise

    def _new_namespace(self) -> None:
        _check(_libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")

    def _restore(self) -> None:
        _check(_libc.setns(self._own, CLONE_NEWPID), "setns(CLONE_NEWPID)")

    def fork(self) -> int:
        """``os.fork()``, the child being PID 1 of a new PID namespace; 0 in the child."""
        self._new_namespace()
        try:
            pid = os.fork()
        except BaseException:
            self._restore()
            raise
        if pid == 0:
            os.close(self._own)
        else:
            self._restore()
        return pid


def pid_outside() -> int:
    """The pid of this process, PID 1 of its own namespace, in its parent's namespace (the
    zygote's): the pid Squall knows it by, the next-to-last of ``NSpid`` in the host's /proc."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("NSpid:"):
                return int(line.split()[-2])
    raise OSError("no NSpid in /proc/self/status")


def become_subreaper() -> None:
    """Adopt orphaned descendants, so their exits are collected here and not by the host's init."""
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def prepare_root(new_root: str, expose: list[str]) -> None:
    """Build the sandbox's future root at ``new_root``, from inside its namespaces.

    This is the generic part of the confinement, done by a spare sandbox before it is claimed:
    system directories and the interpreter, read-only; a ``/proc`` of its own PID namespace, a few
    devices, a private ``/dev/shm``. ``enter_root`` adds the function's code and ``/tmp`` and
    switches to it.
    """
    _mount("tmpfs", new_root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m")
    # /tmp first: what is exposed below may live under the host's /tmp (a checkout, a venv), and
    # must stay visible through the sandbox's own /tmp. Its size and owner are set when claimed.
    os.makedirs(new_root + "/tmp")
    _mount("tmpfs", new_root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=1m")
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            os.symlink(os.readlink(path), new_root + path)
        elif os.path.isdir(path):
            _bind(path, new_root + path, readonly=True)
    for path in expose:
        if os.path.exists(path) and not os.path.exists(new_root + path):
            _bind(path, new_root + path, readonly=True)
    os.makedirs(new_root + "/proc")
    _mount("proc", new_root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(new_root + "/dev", exist_ok=True)
    for dev in DEVICES:
        if os.path.exists("/dev/" + dev):
            _bind("/dev/" + dev, new_root + "/dev/" + dev, readonly=False)
    os.makedirs(new_root + "/dev/shm")
    _mount("tmpfs", new_root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{new_root}/dev/{name}")
    for mount_point in ("/opt", "/var/task", "/.old-root"):
        os.makedirs(new_root + mount_point, exist_ok=True)


def enter_root(new_root: str, task_dir: str, tmp_mb: int, uid: int, opt_dir: str | None = None) -> None:
    """Add the function's code (read-only), its layers at ``/opt`` (read-only, ``opt_dir``: the
    merged tree of every layer) and its own ``/tmp``, then make ``new_root`` the root.

    ``/tmp`` is a tmpfs of the function's EphemeralStorage size, owned by the sandbox's user: it
    survives warm invocations, cannot fill the host's disk, and vanishes with the sandbox.
    """
    _bind(task_dir, new_root + "/var/task", readonly=True)
    if opt_dir:
        _bind(opt_dir, new_root + "/opt", readonly=True)
    _mount(None, new_root + "/tmp", None, MS_REMOUNT | MS_NOSUID | MS_NODEV, f"size={tmp_mb}m")
    os.chown(new_root + "/tmp", uid, uid)
    os.chmod(new_root + "/tmp", 0o700)
    _check(_libc.syscall(SYS_PIVOT_ROOT, _b(new_root), _b(new_root + "/.old-root")), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old-root", MNT_DETACH), "umount old root")
    os.rmdir("/.old-root")
    _mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)


def set_limits(max_files: int, max_procs: int, max_file_bytes: int) -> None:
    """File size, open files, processes (per uid: each sandbox has its own uid) and no core dumps."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))
    resource.setrlimit(resource.RLIMIT_NPROC, (max_procs, max_procs))
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def drop_privileges(uid: int, gid: int) -> None:
    """Become an unprivileged user for good; nothing can regain root after this."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def confine(spec: dict[str, Any], prepared_root: str | None) -> None:
    """Apply everything ``spec`` asks for, in the only order that works (uid last).

    ``prepared_root`` is the root a spare built ahead of time with ``prepare_root``.
    """
    if spec.get("cgroup_dir"):
        limit_memory(spec["cgroup_dir"], spec["cgroup_version"], spec["memory_bytes"] + spec["tmp_mb"] * 1024 * 1024)
    if spec.get("cpu_cgroup_dir") and spec.get("cpus"):
        limit_cpu(spec["cpu_cgroup_dir"], spec["cgroup_version"], spec["cpus"], bool(spec.get("cpu_quota")))
    if spec.get("isolate"):
        if prepared_root is None:
            raise RuntimeError("an isolated sandbox needs a prepared root")
        enter_root(prepared_root, spec["task_dir"], spec["tmp_mb"], spec["uid"], spec.get("opt_dir"))
    set_limits(spec["max_files"], spec["max_procs"], spec["max_file_bytes"])
    if spec.get("isolate"):
        drop_privileges(spec["uid"], spec["gid"])
    # Credentials changes clear the parent-death signal, so it is set last.
    set_parent_death_signal()
