"""``--since`` values: a duration back from now (``90s``, ``10m``, ``1h``, ``2d``, ``1w``), a bare
number in the command's own unit, or an ISO 8601 time (UTC when it has no offset)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_since(text: str, bare_unit: str = "m", now: float | None = None) -> float:
    """The epoch second ``text`` names; ``bare_unit`` is the unit of a bare number."""
    now = time.time() if now is None else now
    match = _DURATION.match(text)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2) or bare_unit]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (10m, 1h, 2d) nor an ISO time (2026-01-31T12:00)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
