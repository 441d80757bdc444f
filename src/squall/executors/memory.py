"""How much memory this server can still use: the machine's MemAvailable, or less under a cgroup limit."""

from __future__ import annotations

from pathlib import Path

_UNLIMITED = 1 << 60


def available_mb(proc: Path = Path("/proc"), cgroup_root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The smaller of MemAvailable and the room left under this process's own memory cgroup limit;
    None when neither can be read."""
    figures = [figure for figure in (_meminfo_available(proc), _cgroup_room(proc, cgroup_root)) if figure is not None]
    return min(figures) if figures else None


def _meminfo_available(proc: Path) -> float | None:
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room(proc: Path, root: Path) -> float | None:
    """Limit minus usage of the memory cgroup this process is in (v2, else v1)."""
    try:
        lines = (proc / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            room = _room(root / path.lstrip("/"), "memory.max", "memory.current")
        elif "memory" in controllers.split(","):
            room = _room(root / "memory" / path.lstrip("/"), "memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        if room is not None:
            return room
    return None


def _room(directory: Path, limit_file: str, usage_file: str) -> float | None:
    try:
        limit_text = (directory / limit_file).read_text().strip()
        usage = int((directory / usage_file).read_text().strip())
    except (OSError, ValueError):
        return None
    if limit_text == "max" or int(limit_text) >= _UNLIMITED:
        return None
    return (int(limit_text) - usage) / (1024 * 1024)
