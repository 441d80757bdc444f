"""Find the interpreter that runs a Lambda runtime name (``python3.12``) on this machine."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import sysconfig

from squall.errors import InvalidParameterValue


class Interpreter:
    """A Python executable for one runtime, and the extra site dirs to give functions (boto3)."""

    def __init__(self, runtime: str, executable: str, extra_site: list[str]) -> None:
        self.runtime = runtime
        self.executable = executable
        self.extra_site = extra_site


@functools.cache
def find_interpreter(runtime: str) -> Interpreter:
    """The interpreter for ``runtime``; InvalidParameterValue when this machine has none."""
    version = runtime.removeprefix("python")
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        # Our own interpreter: functions also get our site-packages (boto3), as Lambda's
        # Python runtimes ship boto3.
        return Interpreter(runtime, sys.executable, [sysconfig.get_paths()["purelib"]])
    found = shutil.which(f"python{version}")
    if found is None:
        raise InvalidParameterValue(
            f"The runtime {runtime} is not available on this Squall server: "
            f"install python{version} or choose another runtime."
        )
    # Resolve wrappers (pyenv shims) to the real executable once, so forks are cheap.
    real = subprocess.run(
        [found, "-c", "import sys; print(sys.executable)"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if real.returncode != 0 or not real.stdout.strip():
        raise InvalidParameterValue(
            f"The runtime {runtime} is not usable on this Squall server: "
            f"{found} failed to start ({real.stderr.strip()[:200]})."
        )
    return Interpreter(runtime, real.stdout.strip(), [])
