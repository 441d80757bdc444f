"""Who holds a lease: ``host/pid/start`` for a server process, and whether such an owner is still alive.

On one host a dead owner is recognised at once (its pid is gone, or now belongs to a process that
started later), so a server restarted after a kill -9 takes its shards back without waiting for the
old leases to expire. An owner on another host is assumed alive; its leases are freed by expiring.
"""

from __future__ import annotations

import os
import socket


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), if it exists."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # The command name (field 2) may hold spaces; fields after it are split from its ")".
            return stat.read().rpartition(b")")[2].split()[19].decode()
    except (OSError, IndexError):
        return None


def new_owner() -> str:
    """This process's owner id."""
    return f"{socket.gethostname()}/{os.getpid()}/{_start_time(os.getpid()) or '0'}"


def owner_alive(owner: str) -> bool:
    """False only when the owner is a process of this host that no longer exists."""
    host, _, rest = owner.partition("/")
    pid_text, _, started = rest.partition("/")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    now = _start_time(int(pid_text))
    if now is None:
        return not os.path.isdir("/proc/self")  # no /proc at all: cannot tell, assume alive
    return started in ("0", now)
