"""Node.js runtimes (``nodejs18.x``-``nodejs22.x``): Squall's Node shim
(``squall/runtime/bootstrap/node/index.mjs``) run by this machine's ``node`` against the Runtime API."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from squall.errors import InvalidParameterValue
from squall.runtime.interpreters import Interpreter
from squall.runtime.runtimes.base import Runtime

#: The shim every Node.js sandbox runs (shipped in the package).
SHIM = Path(__file__).resolve().parent.parent / "bootstrap" / "node" / "index.mjs"
#: The lowest Node.js major the shim runs on (``process.getActiveResourcesInfo``, top-level await).
MIN_MAJOR = 18


@functools.cache
def _node_major(executable: str) -> int | None:
    """The major version of the ``node`` at ``executable``; None when it does not run."""
    try:
        run = subprocess.run([executable, "--version"], capture_output=True, text=True, check=False, timeout=30)
    except OSError:
        return None
    version = run.stdout.strip().removeprefix("v")
    return int(version.split(".")[0]) if run.returncode == 0 and version[:1].isdigit() else None


def find_node(runtime: str) -> str:
    """The ``node`` that runs ``runtime`` (``SQUALL_NODE`` or PATH); InvalidParameterValue when none fits.

    Lambda's ``nodejs<N>.x`` runs Node N; Squall runs all of them on one installed node whose
    major version is at least N and at least the shim's minimum."""
    wanted = int(runtime.removeprefix("nodejs").removesuffix(".x"))
    node = os.environ.get("SQUALL_NODE") or shutil.which("node")
    major = None if node is None else _node_major(node)
    if node is None or major is None or major < max(wanted, MIN_MAJOR):
        found = "no working node found" if major is None else f"node {major} at {node}"
        raise InvalidParameterValue(
            f"The runtime {runtime} is not available on this Squall server: it needs Node.js {wanted} "
            f"or newer ({found}); install it or point SQUALL_NODE at one, or choose another runtime."
        )
    return os.path.realpath(node)


class NodeRuntime(Runtime):
    """A ``nodejs<N>.x`` runtime: the sandbox execs ``node <shim>``, which serves the handler over
    the Runtime API like a custom runtime's bootstrap."""

    entry = "runtime-api"
    zygote_key = "nodejs"

    def __init__(self, name: str) -> None:
        self.name = name

    def command(self) -> list[str]:
        """What the sandbox runs in place of a ``bootstrap`` file."""
        return [find_node(self.name), str(SHIM)]

    def interpreter(self) -> Interpreter:
        node = find_node(self.name)
        # The zygote is Squall's base Python; its extra dirs are exposed in confined sandboxes,
        # which makes the shim and node's own directory visible there.
        executable = getattr(sys, "_base_executable", None) or sys.executable
        return Interpreter(self.zygote_key, executable, [str(SHIM.parent), os.path.dirname(node)])

    def zygote_setup(self) -> dict[str, Any]:
        # Nothing to pre-import for a program that is exec'd.
        return {"preload": False}


RUNTIMES = tuple(NodeRuntime(name) for name in ("nodejs18.x", "nodejs20.x", "nodejs22.x"))
