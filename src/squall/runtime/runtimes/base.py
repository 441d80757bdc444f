"""What Squall needs to know about one Lambda runtime to run it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from squall.runtime.interpreters import Interpreter


class Runtime(ABC):
    """One runtime identifier (``python3.12``, ``provided.al2023``) and how its sandboxes start.

    Every runtime's sandboxes are forked from a zygote and confined the same way; a runtime says
    which interpreter that zygote runs, which zygote it shares (``zygote_key``), and what the
    sandbox runs once confined (``entry``: ``native`` is Squall's own Python runtime,
    ``runtime-api`` execs a bootstrap against the Runtime API).
    """

    #: The runtime identifier, as CreateFunction's ``Runtime``.
    name: str
    #: Runtimes with the same key share one zygote.
    zygote_key: str
    #: The in-sandbox entry point (``squall.runtime.bootstrap.zygote.ENTRIES``).
    entry: str
    #: Whether Lambda sets ``AWS_EXECUTION_ENV`` (``AWS_Lambda_<runtime>``); custom runtimes get none.
    sets_execution_env: bool = True

    @abstractmethod
    def interpreter(self) -> Interpreter:
        """The Python that runs this runtime's zygote; raises InvalidParameterValue when missing."""

    def zygote_setup(self) -> dict[str, Any]:
        """Extra settings for this runtime's zygote (merged into its setup)."""
        return {}

    def command(self) -> list[str] | None:
        """The program the sandbox runs in place of the function's ``bootstrap`` file (None: the bootstrap)."""
        return None
