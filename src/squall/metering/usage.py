"""Durable usage records and log lines, written in batches off the invoke path.

The invoke path only appends to an in-memory queue; a writer thread commits what accumulated
every few milliseconds in one transaction, so metering costs no fsync per invocation.
``flush()`` (called at shutdown) makes everything durable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from squall.logs import format as logfmt
from squall.models import FunctionConfig, InvokeRequest, InvokeResult, LogEvent, UsageRecord
from squall.stores.base import MetadataStore

log = logging.getLogger(__name__)


class UsageRecorder:
    """An after-invoke hook: one usage record and the log lines of every invocation."""

    def __init__(self, store: MetadataStore, interval_s: float = 0.05) -> None:
        self.store = store
        self.interval_s = interval_s
        self._usage: list[UsageRecord] = []
        self._logs: list[tuple[str, str, Sequence[LogEvent]]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="squall-usage-writer", daemon=True)
        self._thread.start()

    def __call__(self, config: FunctionConfig, request: InvokeRequest, result: InvokeResult) -> None:
        usage = result.usage
        record = UsageRecord(
            function_name=config.name,
            version=config.version,
            request_id=request.request_id,
            start=usage.start,
            duration_ms=usage.duration_ms,
            billed_ms=usage.billed_ms,
            memory_mb=usage.memory_mb,
            gb_seconds=usage.gb_seconds,
            max_memory_mb=usage.max_memory_mb,
            cold=usage.cold,
            init_ms=usage.init_ms,
            outcome=result.outcome,
            trigger=request.trigger,
            architecture=config.architectures[0] if config.architectures else "x86_64",
        )
        events = logfmt.split_lines(result.log, int(usage.start * 1000))
        with self._lock:
            self._usage.append(record)
            self._logs.append((logfmt.log_group_name(config.name), result.log_stream, events))

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self._write()

    def _write(self) -> None:
        with self._lock:
            usage, self._usage = self._usage, []
            logs, self._logs = self._logs, []
        if not usage and not logs:
            return
        try:
            self.store.record(usage, logs)  # one transaction: one commit per batch
        except Exception:
            log.exception("writing %d usage records failed; they are retried", len(usage))
            with self._lock:
                self._usage[:0] = usage
                self._logs[:0] = logs
            time.sleep(0.5)

    def flush(self) -> None:
        """Write everything recorded so far, now."""
        self._write()

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=5)
        self._write()
