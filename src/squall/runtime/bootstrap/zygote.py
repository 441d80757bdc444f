"""The zygote: a warm interpreter that forks one sandbox per execution environment.

It pre-imports the runtime shim and heavy common modules (boto3 when installed), freezes the
heap so that children share it copy-on-write, then waits for spawn requests from Squall on a
SEQPACKET socket. Each request carries a sandbox spec and, as SCM_RIGHTS, the sandbox's end of
its channel. The zygote reports every child's pid and, later, its exit status. When Squall goes
away, the zygote and (through the parent-death signal) every sandbox go with it.

Forking is kept off the request path: the zygote always holds one *spare*, a child that has
already forked and built the generic part of its confinement, waiting to be claimed. A spawn
request hands the spare its spec and channel, and a new spare is forked right after.
Standard library only.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from squall.runtime.bootstrap import custom, isolate, shim

SPARE_DELAY_S = 0.02
PRELOAD = ("boto3", "botocore.session", "json", "decimal", "urllib.request", "logging", "uuid", "datetime")


def _preload(names: tuple[str, ...]) -> list[str]:
    loaded = []
    for name in names:
        try:
            __import__(name)
            loaded.append(name)
        except Exception:
            continue
    if "boto3" in loaded:
        import boto3

        # Build the data loaders and the endpoint resolver now, once, for every sandbox.
        boto3.session.Session()._session.get_component("endpoint_resolver")
    return loaded


def _expose_paths(own_path: str) -> list[str]:
    """Directories the interpreter needs to keep working inside a confined sandbox."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(p for p in sys.path if p and os.path.isdir(p) and p != own_path)
    return sorted(paths)


def _run_child(spec: dict[str, Any], channel_fd: int, prepared_root: str | None) -> None:
    """Become the sandbox described by ``spec`` (never returns)."""
    code = 1
    try:
        os.setsid()
        log_fd = os.open(spec["log_file"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.close(null_fd)
        isolate.confine(spec, prepared_root)
        os.environ.clear()
        os.environ.update(spec["env"])
        os.chdir(spec["env"]["LAMBDA_TASK_ROOT"])
        ENTRIES[spec.get("entry", "native")](socket.socket(fileno=channel_fd), spec)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(2, f"squall sandbox setup failed: {exc!r}\n".encode())
    finally:
        os._exit(code)


def _serve_native(channel: socket.socket, spec: dict[str, Any]) -> None:
    """Squall's own Python runtime: the handler runs in this very process."""
    task_root = spec["env"]["LAMBDA_TASK_ROOT"]
    sys.path.insert(0, task_root)
    opt_root = spec.get("opt_root")
    if opt_root:  # as on Lambda: the layers' Python dirs come right after the function's code
        version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        sys.path[1:1] = [f"{opt_root}/python/lib/{version}/site-packages", f"{opt_root}/python"]
    reader = channel.makefile("rb")
    writer = channel.makefile("wb")
    shim.serve(reader, writer, spec["handler"])


#: What a sandbox runs once confined, by the ``entry`` of its runtime (see ``squall.runtime.runtimes``).
ENTRIES: dict[str, Callable[[socket.socket, dict[str, Any]], None]] = {
    "native": _serve_native,
    "runtime-api": custom.serve,
}


class _Spare:
    """A forked child waiting for its spec on ``sock``."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock


def _become_spare(sock: socket.socket, setup: dict[str, Any], expose: list[str], pid_one: bool) -> None:
    """In a freshly forked child: prepare the confinement, wait to be claimed, then run (never returns).

    ``pid_one``: the child already is PID 1 of a PID namespace of its own (see
    ``isolate.PidNamespaceForker``); otherwise an isolated one forks that PID 1 and stays outside
    as its stand-in.
    """
    isolate.set_parent_death_signal()
    prepared = None
    root_dir = setup.get("root_dir")
    cgroup_dir = cpu_dir = None
    try:
        if setup.get("cgroup_base"):
            # Named by the pid Squall knows (the zygote's view), which a PID 1 must look up.
            name = f"spare-{isolate.pid_outside() if pid_one else os.getpid()}"
            cgroup_dir = os.path.join(setup["cgroup_base"], name)
            isolate.join_cgroup(cgroup_dir)
            cpu_dir = cgroup_dir
            if setup.get("cpu_cgroup_base"):  # v1: the cpu controller is a hierarchy of its own
                cpu_dir = os.path.join(setup["cpu_cgroup_base"], name)
                isolate.join_cgroup(cpu_dir)
        if root_dir:
            isolate.enter_namespaces(pid=not pid_one)
            if not pid_one:
                inner = os.fork()
                if inner:
                    sock.close()
                    _stand_in_for(inner)
                isolate.set_parent_death_signal()
            # PID 1 of the sandbox's own PID namespace: when it exits, everything it started dies.
            isolate.prepare_root(root_dir, expose)
            prepared = root_dir
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(2, f"squall: preparing a sandbox failed: {exc!r}\n".encode())
        os._exit(1)
    try:
        msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 1)
    except OSError:
        os._exit(0)
    if not msg or not fds:
        os._exit(0)
    sock.close()
    spec = json.loads(msg)
    spec["cgroup_dir"] = cgroup_dir
    spec["cpu_cgroup_dir"] = cpu_dir
    spec["cgroup_version"] = setup.get("cgroup_version")
    _run_child(spec, fds[0], prepared)


def _stand_in_for(pid: int) -> None:
    """Outside the sandbox's PID namespace: wait for its PID 1 and exit exactly as it did, so the
    zygote and Squall see the sandbox's own exit status (never returns)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def main() -> None:
    """Serve spawn requests on the inherited control socket (fd given as argv[1])."""
    control_fd = int(sys.argv[1])
    own_path = sys.argv[2]
    setup = json.loads(sys.argv[3])
    # No collections while preloading: freed cycles would leave holes in the heap's pages, which
    # each sandbox's first allocations would fill, copying those pages (gc.freeze's documented use).
    gc.disable()
    extra_site = sys.argv[4:]
    sys.path[:] = [p for p in sys.path if p != own_path] + extra_site
    os.setpgid(0, 0)
    isolate.set_parent_death_signal()
    isolate.become_subreaper()
    loaded = _preload(PRELOAD if setup.get("preload", True) else ())
    shim.prepare()
    expose = _expose_paths(own_path)
    control = socket.socket(fileno=control_fd)
    forker, no_forker = _pid_namespace_forker(setup)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    gc.freeze()
    gc.enable()  # for the zygote's own garbage from here on; what it holds now stays frozen

    def fork_spare() -> _Spare:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        gc.freeze()  # the sandbox's collections never visit (and so never copy) what the zygote holds
        pid = os.fork() if forker is None else forker.fork()
        if pid == 0:
            ours.close()
            control.close()
            os.close(wake_r)
            os.close(wake_w)
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            _become_spare(theirs, setup, expose, forker is not None)
        theirs.close()
        return _Spare(pid, ours)

    spare: _Spare | None = fork_spare()
    hello = {
        "t": "hello",
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "preloaded": loaded,
        "expose": expose,
        # Why isolated sandboxes need a stand-in process outside their PID namespace (None: they do not).
        "stand_in": no_forker,
    }
    control.send(json.dumps(hello).encode())
    import select

    spare_due: float | None = None
    while True:
        timeout = None if spare_due is None else max(0.0, spare_due - time.monotonic())
        readable, _, _ = select.select([control.fileno(), wake_r], [], [], timeout)
        if spare_due is not None and time.monotonic() >= spare_due:
            spare, spare_due = fork_spare(), None
        if wake_r in readable:
            os.read(wake_r, 4096)
            exited = _report_exits(control)
            if spare is not None and spare.pid in exited:
                spare.sock.close()
                spare = None
        if control.fileno() in readable:
            msg, fds, _flags, _addr = socket.recv_fds(control, 1 << 20, 1)
            if not msg:
                return  # Squall has gone: exit, and the parent-death signal takes the sandboxes
            request = json.loads(msg)
            started = time.monotonic()
            if spare is None:
                spare = fork_spare()
            claimed, spare = spare, None
            # If the spare died just now, its exit is reported and the caller sees EOF.
            with contextlib.suppress(OSError):
                socket.send_fds(claimed.sock, [json.dumps(request["spec"]).encode()], fds)
            claimed.sock.close()
            for fd in fds:
                os.close(fd)
            reply = {
                "t": "spawned",
                "token": request["token"],
                "pid": claimed.pid,
                "fork_ms": (time.monotonic() - started) * 1000,
            }
            control.send(json.dumps(reply).encode())
            # The next spare is forked a moment later, so it does not compete for the CPU with
            # the sandbox that was just claimed while that one initialises.
            spare_due = time.monotonic() + SPARE_DELAY_S


def _pid_namespace_forker(setup: dict[str, Any]) -> tuple[isolate.PidNamespaceForker | None, str | None]:
    """The forker of isolated sandboxes, or why there is none (None, None: sandboxes are not isolated)."""
    if not setup.get("root_dir"):
        return None, None
    try:
        return isolate.PidNamespaceForker(), None
    except OSError as exc:
        return None, str(exc)


def _report_exits(control: socket.socket) -> set[int]:
    exited: set[int] = set()
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return exited
        if pid == 0:
            return exited
        exited.add(pid)
        signaled = os.WIFSIGNALED(status)
        exit_info = {"signal": os.WTERMSIG(status)} if signaled else {"code": os.WEXITSTATUS(status)}
        control.send(json.dumps({"t": "exit", "pid": pid, **exit_info}).encode())


if __name__ == "__main__":
    main()
