"""The peers' virtualenvs: each peer (MiniStack, Ray, chalice) is pip-installed into its own venv under
``benchmarks/.peers/<name>`` the first time it is needed, with pip's progress shown, and reused after.

A peer that cannot be installed raises ``PeerUnavailable`` with the reason; the runner records it
and the table says "not run: <why>" instead of a figure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

PEERS_DIR = Path(__file__).resolve().parent / ".peers"
#: What each peer needs in its venv (boto3 where the peer's own process talks AWS).
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "ministack": ("ministack",),
    "ray": ("ray",),
    "chalice": ("chalice",),
    "workloads": ("jinja2",),  # not a peer: the jinja2 vendored into the HTML workload's package
}
INSTALL_TIMEOUT_S = 900.0


class PeerUnavailable(RuntimeError):
    """A peer could not be installed or started; the message says why (shown as "not run: <why>")."""


def venv_python(name: str, root: Path = PEERS_DIR) -> Path:
    return root / name / "bin" / "python"


def ensure(name: str, progress: Callable[[str], None], root: Path = PEERS_DIR) -> Path:
    """The peer venv's interpreter, installing the venv and its packages first if needed."""
    packages = REQUIREMENTS[name]
    venv = root / name
    marker = venv / ".installed"
    python = venv_python(name, root)
    if marker.exists() and marker.read_text() == " ".join(packages) and python.exists():
        return python
    progress(f"  installing {', '.join(packages)} into {venv} (first run only)")
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", str(venv)], f"creating the venv for {name}", progress)
    _run(
        [str(python), "-m", "pip", "install", "--progress-bar", "on", "--disable-pip-version-check", *packages],
        f"pip install {' '.join(packages)}",
        progress,
    )
    marker.write_text(" ".join(packages))
    return python


def _run(argv: Sequence[str], what: str, progress: Callable[[str], None]) -> None:
    """Run an install step, echoing its output lines as progress; raise PeerUnavailable on failure."""
    began = time.monotonic()
    tail: list[str] = []
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if not line or "is ignored: it is neither a file nor a directory" in line:
                continue
            tail = [*tail[-9:], line]
            if line.startswith(("Collecting", "Installing", "Successfully", "ERROR")):
                progress(f"    {line[:150]}")
            if time.monotonic() - began > INSTALL_TIMEOUT_S:
                proc.kill()
                raise PeerUnavailable(f"{what}: still running after {INSTALL_TIMEOUT_S:.0f} s")
        code = proc.wait()
    if code != 0:
        raise PeerUnavailable(f"{what} failed (exit {code}): {' | '.join(tail[-3:])}")


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float, log: Path) -> float:
    """Poll ``url`` until it answers (any HTTP status); seconds it took. Raises if ``proc`` exits."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout_s:
        if proc.poll() is not None:
            raise PeerUnavailable(f"exited with {proc.returncode} while starting: {tail_of(log)}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return time.perf_counter() - began
        except urllib.error.HTTPError:
            return time.perf_counter() - began
        except OSError:
            time.sleep(0.1)
    raise PeerUnavailable(f"not answering on {url} after {timeout_s:.0f} s: {tail_of(log)}")


def stop(proc: subprocess.Popen[bytes] | None, timeout_s: float = 15.0) -> None:
    """SIGTERM the peer's process group (it may have children), SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def tail_of(log: Path, chars: int = 400) -> str:
    try:
        return " ".join(log.read_text(errors="replace")[-chars:].split())
    except OSError:
        return ""
