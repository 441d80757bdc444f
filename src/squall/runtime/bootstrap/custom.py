"""A custom runtime inside a sandbox (``provided``, ``provided.al2``, ``provided.al2023``).

The sandbox's first process finds the function's ``bootstrap`` (``$LAMBDA_TASK_ROOT/bootstrap``,
then ``/opt/bootstrap`` from a layer), serves the Runtime API for it on a loopback port, and runs
it with no arguments, in the task root, with the function's environment plus
``AWS_LAMBDA_RUNTIME_API``. The bootstrap inherits the sandbox's confinement (root, uid, limits,
cgroup) and its stdout and stderr, which are the function's log. Invocations come from Squall over
the sandbox's channel; when the bootstrap exits, Squall is told how. Standard library only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from typing import Any

from squall.runtime.bootstrap import frames
from squall.runtime.bootstrap.runtime_api import RuntimeApi, describe_exit


def serve(channel: socket.socket, spec: dict[str, Any]) -> None:
    """Run the function's bootstrap against this sandbox's Runtime API until Squall goes away."""
    started = time.monotonic()
    reader = channel.makefile("rb")
    writer = channel.makefile("wb")
    api = RuntimeApi(writer, int(spec["payload_limit"]), started, spec.get("stream_limit"))
    env = dict(spec["env"])
    task_root = env["LAMBDA_TASK_ROOT"]
    command: list[str] | None = spec.get("command")  # a managed runtime's own program (Node.js)
    if command is None:
        candidates = [f"{task_root}/bootstrap", f"{spec.get('opt_root') or '/opt'}/bootstrap"]
        found = next((path for path in candidates if os.path.isfile(path)), None)
        if found is None:
            api.fail("Runtime.InvalidEntrypoint", f"Couldn't find valid bootstrap(s): [{' '.join(candidates)}]")
            os._exit(1)
        command = [found]
    port = api.listen(allowed_uid=os.getuid())
    env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{port}"
    try:
        runtime = subprocess.Popen(
            command, cwd=task_root, env=env, stdin=subprocess.DEVNULL, close_fds=True, pass_fds=(1, 2)
        )
    except OSError as exc:
        api.fail("Runtime.InvalidEntrypoint", f"fork/exec {command[0]}: {(exc.strerror or str(exc)).lower()}")
        os._exit(1)
    api.runtime_pid = runtime.pid
    threading.Thread(target=_watch, args=(runtime, api), name="runtime-exit", daemon=True).start()
    while True:
        frame = frames.read(reader)
        if frame is None:  # Squall has gone: so does the runtime
            runtime.kill()
            os._exit(0)
        api.push(*frame)


def _watch(runtime: subprocess.Popen[bytes], api: RuntimeApi) -> None:
    """When the bootstrap exits, report it as Lambda does, then end the sandbox."""
    code = runtime.wait()
    # unverified: that a clean exit (status 0) is worded this way; the wording itself is Lambda's
    # older message for a runtime that ends (seen in published Lambda logs).
    fault = (
        "Runtime exited without providing a reason"
        if code == 0
        else f"Runtime exited with error: {describe_exit(code)}"
    )
    try:
        api.fail("Runtime.ExitError", fault)
    finally:
        os._exit(code if code > 0 else 1)
