"""Storage seams: the metadata store (functions, async queue, usage, logs) and the code store.

``SqliteMetadataStore`` is the embedded default; a PostgreSQL store implements the same ABC for
the scale-out tier and passes the same contract tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import msgspec

from squall.models import Alias, AsyncEvent, FunctionConfig, LogEvent, UsageRecord

#: Lines for one log stream: (log group, stream, events).
LogBatch = tuple[str, str, Sequence[LogEvent]]


class LogGroupSummary(msgspec.Struct, frozen=True):
    """A log group as CloudWatch Logs describes it: created with its first line."""

    name: str
    first_timestamp: int  # epoch ms of its oldest line
    stored_bytes: int


class LogStreamSummary(msgspec.Struct, frozen=True):
    """A log stream of a group: the time of its first and last lines, and its size."""

    name: str
    first_timestamp: int
    last_timestamp: int
    stored_bytes: int


class MetadataStore(ABC):
    """Durable metadata. Every write that a client sees acknowledged is committed first."""

    # --- functions -------------------------------------------------------------------------
    @abstractmethod
    def create_function(self, config: FunctionConfig) -> None:
        """Insert a new function's ``$LATEST``; ResourceConflict if the name exists."""

    @abstractmethod
    def put_function(self, config: FunctionConfig) -> None:
        """Insert or replace one version of a function."""

    @abstractmethod
    def get_function(self, name: str, version: str) -> FunctionConfig | None:
        """One version of a function, or None."""

    @abstractmethod
    def list_functions(self, marker: str | None, limit: int) -> tuple[list[FunctionConfig], str | None]:
        """``$LATEST`` of every function ordered by name, from ``marker``; returns (page, next marker)."""

    @abstractmethod
    def delete_function(self, name: str, version: str | None = None) -> bool:
        """Delete one version, or the whole function with every version, alias and reservation.

        Returns False if absent."""

    @abstractmethod
    def function_count(self) -> int:
        """How many functions exist."""

    @abstractmethod
    def list_versions(self, name: str) -> list[FunctionConfig]:
        """Every version of a function: ``$LATEST`` first, then numbered versions in ascending order."""

    # --- aliases and reserved concurrency ---------------------------------------------------
    @abstractmethod
    def insert_alias(self, alias: Alias) -> bool:
        """Add a new alias; False (and no change) if the function already has one of that name."""

    @abstractmethod
    def put_alias(self, alias: Alias) -> None:
        """Insert or replace an alias."""

    @abstractmethod
    def get_alias(self, function_name: str, name: str) -> Alias | None:
        """One alias, or None."""

    @abstractmethod
    def list_aliases(self, function_name: str) -> list[Alias]:
        """A function's aliases ordered by name."""

    @abstractmethod
    def delete_alias(self, function_name: str, name: str) -> bool:
        """Remove an alias; False if absent."""

    @abstractmethod
    def set_reserved_concurrency(self, function_name: str, reserved: int | None) -> None:
        """Set (or with None, remove) a function's reserved concurrency."""

    @abstractmethod
    def reserved_concurrency(self) -> dict[str, int]:
        """Every function's reserved concurrency."""

    # --- async invocation queue ---------------------------------------------------------------
    @abstractmethod
    def enqueue(self, event: AsyncEvent) -> int:
        """Durably queue an async event; returns its id."""

    @abstractmethod
    def claim(self, now: float, limit: int, lease_s: float) -> list[AsyncEvent]:
        """Take up to ``limit`` due events and hide them for ``lease_s`` seconds."""

    @abstractmethod
    def complete(self, event_id: int) -> None:
        """Remove a handled event from the queue."""

    @abstractmethod
    def reschedule(self, event_id: int, not_before: float, attempts: int) -> None:
        """Put an event back, due again at ``not_before``."""

    @abstractmethod
    def release_claims(self) -> int:
        """End every lease now (their claimer is gone); returns how many events became due."""

    @abstractmethod
    def queued(self) -> int:
        """How many events wait in the queue."""

    # --- metering and logs ------------------------------------------------------------------------
    @abstractmethod
    def record(self, usage: Sequence[UsageRecord], logs: Sequence[LogBatch]) -> None:
        """Append usage records (one per invocation) and lines to log streams (each created on first
        use), all in one transaction."""

    def add_usage(self, records: Sequence[UsageRecord]) -> None:
        """Append usage records (one per invocation)."""
        self.record(records, ())

    @abstractmethod
    def usage(
        self, since: float = 0.0, until: float | None = None, function_name: str | None = None
    ) -> list[UsageRecord]:
        """Usage records in a time range, oldest first."""

    def append_logs(self, group: str, stream: str, events: Sequence[LogEvent]) -> None:
        """Append lines to a log stream, creating it on first use."""
        self.record((), [(group, stream, events)])

    @abstractmethod
    def log_events(
        self, group: str, after_id: int = 0, limit: int = 1000, stream: str | None = None
    ) -> list[tuple[int, str, LogEvent]]:
        """Lines of a log group after a cursor: (id, stream, event), oldest first."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release the store."""

    def watch(self, changed: Callable[[str | None], None]) -> None:
        """From now on, call ``changed(function_name)`` (from any thread) after a write to a
        function, its versions, aliases or reserved concurrency, by this or another server; None
        means anything may have changed. Servers keep caches of these; a store that only one
        server uses has nothing to report, which is the default."""
        return None

    # --- log groups and streams (CloudWatch Logs' read side) ---------------------------------------
    @abstractmethod
    def log_groups(self, prefix: str = "") -> list[LogGroupSummary]:
        """Every log group whose name starts with ``prefix``, ordered by name."""

    @abstractmethod
    def log_streams(self, group: str) -> list[LogStreamSummary]:
        """Every stream of a log group ordered by name; empty if the group does not exist."""

    @abstractmethod
    def log_event_range(
        self,
        group: str,
        streams: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        after_id: int = 0,
        before_id: int | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[tuple[int, str, LogEvent]]:
        """Lines of a group (of ``streams`` only, if given) with ``start_ms <= timestamp < end_ms`` and
        ``after_id < id < before_id``: (id, stream, event), oldest first or ``newest_first``."""

    @abstractmethod
    def delete_log_group(self, group: str) -> bool:
        """Delete every line of a log group; False if it had none."""


class LeaseStore(ABC):
    """Named leases with an owner and an expiry, so that several servers can share the work.

    A poller holds the lease of its (mapping, shard) while it delivers; another server does not take a
    lease that is held and unexpired, unless its owner was declared dead by ``reap_abandoned``.
    Owners are opaque strings; ``squall.sources.owner`` builds and checks the embedded tier's.
    """

    @abstractmethod
    def acquire(self, owner: str, lease: str, ttl_s: float) -> bool:
        """Take ``lease`` for ``owner`` for ``ttl_s`` seconds if it is free, expired or already ours."""

    @abstractmethod
    def extend(self, owner: str, ttl_s: float) -> set[str]:
        """Push back the expiry of every lease ``owner`` holds; the names of those it still holds."""

    @abstractmethod
    def release(self, owner: str, lease: str | None = None) -> None:
        """Give up one lease of ``owner``, or all of them when ``lease`` is None."""

    @abstractmethod
    def reap_abandoned(self, alive: Callable[[str], bool]) -> int:
        """Free the leases of owners that ``alive`` says are gone; how many were freed."""

    @abstractmethod
    def holders(self) -> dict[str, str]:
        """Every unexpired lease and its owner."""

    @abstractmethod
    def close(self) -> None:
        """Release the store's connection (not the leases)."""
