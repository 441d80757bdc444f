"""Which server places a provisioned concurrency config's environments: the holder of its lease.

Configs are shared by every server of a deployment, but a version's environments must be started
once, not once per server. Each config has a lease, ``provisioned/<function>/<qualifier>``; on every
reconcile a server renews the leases it holds and takes the free ones, and places the environments
of those configs only. A server that stops gives its leases up at once; one that dies stops renewing,
and another takes its configs over when the lease expires (at once on the same host, where a dead
owner is recognised by its pid) and places them again. Without a lease store (one server, nobody to
share with) a server places every config.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from squall.sources.owner import new_owner, owner_alive
from squall.stores.base import LeaseStore

LEASE_PREFIX = "provisioned/"
LEASE_TTL_S = 15.0
#: Held leases are renewed this many times within their time to live (not on every reconcile).
RENEWALS_PER_TTL = 3

Key = tuple[str, str]


def lease_name(key: Key) -> str:
    """The lease of a (function, qualifier) config."""
    return f"{LEASE_PREFIX}{key[0]}/{key[1]}"


class ProvisionedPlacement:
    """This server's share of the configs: the ones whose lease it holds (called from one task)."""

    def __init__(self, leases: LeaseStore | None, ttl_s: float = LEASE_TTL_S) -> None:
        self.leases = leases
        self.ttl_s = ttl_s
        self.owner = new_owner()
        self.held: set[str] = set()
        self._renewed = 0.0

    def claim(self, keys: Iterable[Key]) -> set[Key]:
        """The configs among ``keys`` this server places now: renew what it holds, take what is free,
        give up the leases of configs that are gone. Blocking (the lease store)."""
        wanted = {lease_name(key): key for key in keys}
        if self.leases is None:
            return set(wanted.values())
        if not wanted and not self.held:
            return set()  # no config anywhere: nothing to write to the lease store
        now = time.monotonic()
        if self.held and now - self._renewed >= self.ttl_s / RENEWALS_PER_TTL:
            # The owner id is the process's: other parts of this server hold leases under it too.
            self.held = self.leases.extend(self.owner, self.ttl_s) & self.held
            self._renewed = now
        for gone in self.held - wanted.keys():
            self.leases.release(self.owner, gone)
        self.held &= wanted.keys()
        holders = self.leases.holders()
        # A holder dead on this host frees its leases now, not when they expire.
        others = any(holders[name] != self.owner for name in wanted.keys() & holders.keys())
        if others and self.leases.reap_abandoned(owner_alive):
            holders = self.leases.holders()
        for name in wanted.keys() - holders.keys() - self.held:
            if self.leases.acquire(self.owner, name, self.ttl_s):
                self.held.add(name)
                self._renewed = min(self._renewed, now) if self._renewed else now
        return {wanted[name] for name in self.held}

    def places(self, key: Key) -> bool:
        """Whether this server placed ``key`` at the last claim."""
        return self.leases is None or lease_name(key) in self.held

    def release(self) -> None:
        """Give every config up (a stopping server), so that another server places them at once."""
        if self.leases is not None:
            for name in self.held:
                self.leases.release(self.owner, name)
        self.held = set()
