"""Storage seams: the metadata store (functions, async queue, usage, logs) and the code store.

``SqliteMetadataStore`` is the embedded default; a PostgreSQL store implements the same ABC for
the scale-out tier and passes the same contract tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from squall.models import AsyncEvent, FunctionConfig, LogEvent, UsageRecord


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
        """Delete one version, or the whole function with every version; False if absent."""

    @abstractmethod
    def function_count(self) -> int:
        """How many functions exist."""

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

    # --- metering ------------------------------------------------------------------------------
    @abstractmethod
    def add_usage(self, records: Sequence[UsageRecord]) -> None:
        """Append usage records (one per invocation)."""

    @abstractmethod
    def usage(
        self, since: float = 0.0, until: float | None = None, function_name: str | None = None
    ) -> list[UsageRecord]:
        """Usage records in a time range, oldest first."""

    # --- logs ----------------------------------------------------------------------------------
    @abstractmethod
    def append_logs(self, group: str, stream: str, events: Sequence[LogEvent]) -> None:
        """Append lines to a log stream, creating it on first use."""

    @abstractmethod
    def log_events(
        self, group: str, after_id: int = 0, limit: int = 1000, stream: str | None = None
    ) -> list[tuple[int, str, LogEvent]]:
        """Lines of a log group after a cursor: (id, stream, event), oldest first."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release the store."""
