"""Python runtimes (``python3.11``-``python3.13``): Squall's native shim in a forked interpreter."""

from __future__ import annotations

from squall.runtime.interpreters import Interpreter, find_interpreter
from squall.runtime.runtimes.base import Runtime


class PythonRuntime(Runtime):
    """A ``python3.x`` runtime: the handler runs in the sandbox's own (pre-warmed) interpreter."""

    entry = "native"

    def __init__(self, name: str) -> None:
        self.name = name
        self.zygote_key = name

    def interpreter(self) -> Interpreter:
        return find_interpreter(self.name)


RUNTIMES = tuple(PythonRuntime(name) for name in ("python3.11", "python3.12", "python3.13"))
