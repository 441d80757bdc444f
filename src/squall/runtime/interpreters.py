"""Find the interpreter that runs a Lambda runtime name (``python3.12``) on this machine."""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
import sysconfig

from squall.errors import InvalidParameterValue
from squall.runtime.python_sdk import sdk_site


class Interpreter:
    """A Python executable for one runtime, and the extra site dirs to give functions (boto3)."""

    def __init__(self, runtime: str, executable: str, extra_site: list[str]) -> None:
        self.runtime = runtime
        self.executable = executable
        self.extra_site = extra_site


def _candidates(version: str) -> list[str]:
    """Where ``python<version>`` may live: an explicit override, PATH, pyenv, the usual prefixes."""
    override = os.environ.get("SQUALL_PYTHON" + version.replace(".", "_"))
    found = [override] if override else []
    on_path = shutil.which(f"python{version}")
    if on_path:
        found.append(on_path)
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True)
    found += [f"{prefix}/bin/python{version}" for prefix in ("/usr/local", "/usr")]
    return [path for path in found if os.access(path, os.X_OK)]


@functools.cache
def find_interpreter(runtime: str) -> Interpreter:
    """The interpreter for ``runtime``; InvalidParameterValue when this machine has none."""
    version = runtime.removeprefix("python")
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        # Our own interpreter: functions also get our site-packages (boto3), as Lambda's
        # Python runtimes ship boto3.
        return Interpreter(runtime, sys.executable, [sysconfig.get_paths()["purelib"]])
    for candidate in _candidates(version):
        # Resolve wrappers (pyenv shims) to the real executable once, so forks are cheap.
        real = subprocess.run(
            [candidate, "-c", "import sys; print(sys.executable)"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if real.returncode == 0 and real.stdout.strip():
            return Interpreter(runtime, real.stdout.strip(), [sdk_site()])
    variable = "SQUALL_PYTHON" + version.replace(".", "_")
    raise InvalidParameterValue(
        f"The runtime {runtime} is not available on this Squall server: install python{version} "
        f"(or point {variable} at one) or choose another runtime."
    )
