"""Provisioned placement's use of the lease store: no writes while there is nothing to place, and held
leases renewed a few times per time to live, not on every reconcile (an idle server stays idle)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from squall.invoke.provisioned_placement import RENEWALS_PER_TTL, ProvisionedPlacement, lease_name
from squall.stores.leases import SqliteLeaseStore


class CountingLeases(SqliteLeaseStore):
    """The real SQLite lease store, counting its writes."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes = 0

    def extend(self, owner: str, ttl_s: float) -> set[str]:
        self.writes += 1
        return super().extend(owner, ttl_s)

    def acquire(self, owner: str, lease: str, ttl_s: float) -> bool:
        self.writes += 1
        return super().acquire(owner, lease, ttl_s)

    def reap_abandoned(self, alive: Callable[[str], bool]) -> int:
        self.writes += 1
        return super().reap_abandoned(alive)


def test_no_config_no_write(tmp_path: Path) -> None:
    leases = CountingLeases(tmp_path / "leases.db")
    placement = ProvisionedPlacement(leases)
    for _ in range(10):
        assert placement.claim([]) == set()
    assert leases.writes == 0
    leases.close()


def test_held_leases_are_renewed_a_few_times_per_ttl(tmp_path: Path) -> None:
    leases = CountingLeases(tmp_path / "leases.db")
    placement = ProvisionedPlacement(leases, ttl_s=3.0 * RENEWALS_PER_TTL)  # renewed every 3 s
    key = ("fn", "1")
    assert placement.claim([key]) == {key}
    assert leases.writes == 1  # taken
    for _ in range(20):  # reconciles within the same 3 s
        assert placement.claim([key]) == {key}
    assert leases.writes == 1
    assert leases.holders()[lease_name(key)] == placement.owner
    placement.release()
    assert lease_name(key) not in leases.holders()
    leases.close()
