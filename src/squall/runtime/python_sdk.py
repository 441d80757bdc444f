"""The AWS SDK for Python runtimes other than Squall's own interpreter.

Lambda's Python runtimes ship boto3. A function on Squall's own interpreter sees Squall's
site-packages, boto3 included; one on another Python (``python3.12`` found on the machine) gets a
folder holding only boto3 and the distributions it requires, all pure Python, so nothing built for
Squall's interpreter leaks into it. The folder is made once per boto3 version, of hard links into
Squall's site-packages where the file system allows (copies otherwise), and replaced atomically.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

ROOT_DISTRIBUTION = "boto3"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def _required(name: str) -> list[str]:
    """The distributions ``name`` needs, without the optional ones (``extra == ...``)."""
    wanted = []
    for requirement in metadata.requires(name) or []:
        if "extra ==" in requirement.replace("extra==", "extra =="):
            continue
        match = _NAME.match(requirement)
        if match:
            wanted.append(match.group(0))
    return wanted


def distributions(root: str = ROOT_DISTRIBUTION) -> list[metadata.Distribution]:
    """``root`` and everything it requires, each once."""
    found: dict[str, metadata.Distribution] = {}
    pending = [root]
    while pending:
        name = pending.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in found:
            continue
        found[key] = metadata.distribution(name)
        pending.extend(_required(name))
    return [found[key] for key in sorted(found)]


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "squall"


@functools.cache
def sdk_site() -> str:
    """The folder to put on another interpreter's ``sys.path``: boto3 and its requirements."""
    version = metadata.version(ROOT_DISTRIBUTION)
    target = _cache_root() / f"python-sdk-{ROOT_DISTRIBUTION}-{version}"
    if target.is_dir():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".python-sdk-", dir=target.parent))
    building.chmod(0o755)  # read by every sandbox's own uid
    for dist in distributions():
        base = Path(str(dist.locate_file("")))
        for file in dist.files or []:
            relative = Path(str(file))
            if relative.parts[:1] == ("..",) or "__pycache__" in relative.parts:
                continue  # scripts outside site-packages; bytecode of another interpreter
            _link_or_copy(base / relative, building / relative)
    try:
        building.rename(target)
    except OSError:  # another server made it first
        shutil.rmtree(building, ignore_errors=True)
    return str(target)
