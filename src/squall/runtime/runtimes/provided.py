"""OS-only runtimes (``provided``, ``provided.al2``, ``provided.al2023``): the function's own
``bootstrap`` speaks the Runtime API, served inside the sandbox by Squall."""

from __future__ import annotations

import sys
from typing import Any

from squall.runtime.interpreters import Interpreter
from squall.runtime.runtimes.base import Runtime


class ProvidedRuntime(Runtime):
    """A custom runtime: its sandboxes come from one shared zygote on Squall's base interpreter,
    which serves the Runtime API and execs ``bootstrap``."""

    entry = "runtime-api"
    zygote_key = "provided"
    sets_execution_env = False

    def __init__(self, name: str) -> None:
        self.name = name

    def interpreter(self) -> Interpreter:
        # The base interpreter, not a virtualenv's: the sandbox then sees no site-packages of ours.
        executable = getattr(sys, "_base_executable", None) or sys.executable
        return Interpreter(self.zygote_key, executable, [])

    def zygote_setup(self) -> dict[str, Any]:
        # Nothing to pre-import for a bootstrap that is exec'd.
        return {"preload": False}


RUNTIMES = tuple(ProvidedRuntime(name) for name in ("provided", "provided.al2", "provided.al2023"))
