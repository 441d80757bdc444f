"""Tumbling windows for stream mappings: fixed windows of record arrival time, with state carried
from one invocation to the next and a final invocation when the window closes.

The window a record belongs to is fixed by its arrival time: ``[floor(t / size) * size, + size)``.
The function returns ``{"state": {...}}`` from every invocation of a window; Squall passes it to the
next one and, once the window has ended, makes one last invocation with ``isFinalInvokeForWindow``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec

#: State above this (as JSON) terminates the window early, as on Lambda.
MAX_STATE_BYTES = 1024 * 1024


class Window(msgspec.Struct, kw_only=True):
    """An open window of one shard: where it starts, how long it is, and the function's state so far."""

    start: float
    size: int
    state: dict[str, Any] = msgspec.field(default_factory=dict)

    @classmethod
    def containing(cls, arrival: float, size: int) -> Window:
        return cls(start=arrival // size * size, size=size)

    @property
    def end(self) -> float:
        return self.start + self.size

    def holds(self, arrival: float) -> bool:
        return self.start <= arrival < self.end

    def ended(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.end

    def too_big(self) -> bool:
        return len(json.dumps(self.state)) > MAX_STATE_BYTES

    def fields(self, shard_id: str, source_arn: str, final: bool = False, early: bool = False) -> dict[str, Any]:
        """The keys a window adds to the event, beside ``Records``."""
        return {
            "window": {"start": _iso(self.start), "end": _iso(self.end)},
            "state": self.state,
            "shardId": shard_id,
            "eventSourceARN": source_arn,
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": early,
        }

    def dump(self) -> str:
        return msgspec.json.encode(self).decode()

    @classmethod
    def load(cls, text: str | None) -> Window | None:
        return None if not text else msgspec.json.decode(text, type=cls)


def state_of(response: Any) -> dict[str, Any] | None:
    """The state a windowed invocation returned, or None when it returned none (a failed invocation)."""
    if isinstance(response, dict) and "state" in response:
        state = response["state"]
        return state if isinstance(state, dict) else {}
    return None


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
