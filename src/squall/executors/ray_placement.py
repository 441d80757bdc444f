"""Where the Ray tier runs an invocation: warm affinity first, then the node with most free memory.

Pure bookkeeping kept by the driver (no Ray in here): each node agent's memory capacity, the memory
of the invocations it is running, and the idle sandboxes it last reported per pool key.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AgentSlot:
    """What the driver knows about one node agent."""

    name: str
    node_id: str
    capacity_mb: int
    used_mb: int = 0
    running: int = 0
    #: Idle sandboxes per pool key, as last reported by the agent (less those handed out since).
    idle: dict[str, int] = field(default_factory=dict)

    @property
    def free_mb(self) -> int:
        return self.capacity_mb - self.used_mb

    @property
    def warm(self) -> int:
        return self.running + sum(self.idle.values())


class Placement:
    """Chooses an agent per invocation and tracks what each agent holds."""

    def __init__(self) -> None:
        self.agents: dict[str, AgentSlot] = {}

    def add(self, name: str, node_id: str, capacity_mb: int) -> AgentSlot:
        slot = self.agents[name] = AgentSlot(name, node_id, capacity_mb)
        return slot

    def remove(self, name: str) -> AgentSlot | None:
        return self.agents.pop(name, None)

    def nodes(self) -> set[str]:
        """Nodes that have an agent."""
        return {slot.node_id for slot in self.agents.values()}

    def choose(self, pool_key: str, memory_mb: int) -> AgentSlot | None:
        """An agent with an idle sandbox of ``pool_key`` and room for it, else the one with the most
        free memory that fits ``memory_mb`` (a cold start); None when no agent has room."""
        fits = [slot for slot in self.agents.values() if slot.free_mb >= memory_mb]
        warm = [slot for slot in fits if slot.idle.get(pool_key, 0) > 0]
        candidates = warm or fits
        if not candidates:
            return None
        # Among equals, the least busy then the name, so the choice is deterministic.
        return max(candidates, key=lambda slot: (slot.idle.get(pool_key, 0), slot.free_mb, -slot.running, slot.name))

    def begin(self, slot: AgentSlot, pool_key: str, memory_mb: int) -> bool:
        """Reserve ``memory_mb`` on ``slot`` for one invocation; True when it takes an idle sandbox."""
        slot.used_mb += memory_mb
        slot.running += 1
        idle = slot.idle.get(pool_key, 0)
        if idle > 0:
            slot.idle[pool_key] = idle - 1
            return True
        return False

    def finish(self, slot: AgentSlot, memory_mb: int, idle: dict[str, int] | None) -> None:
        """The invocation ended; ``idle`` is the agent's fresh report (None if it has none)."""
        slot.used_mb = max(0, slot.used_mb - memory_mb)
        slot.running = max(0, slot.running - 1)
        if idle is not None:
            slot.idle = dict(idle)

    def report(self, name: str, idle: dict[str, int]) -> None:
        """A periodic report of an agent's idle sandboxes."""
        slot = self.agents.get(name)
        if slot is not None:
            slot.idle = dict(idle)

    def forget(self, function_name: str) -> None:
        """A function's sandboxes were retired: no agent is warm for it any more."""
        for slot in self.agents.values():
            for key in [k for k in slot.idle if k.split(":", 1)[0] == function_name]:
                del slot.idle[key]
