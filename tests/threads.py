"""Running test work on several threads at once, as several servers' request handlers would."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_together(jobs: list[Callable[[], None]], timeout_s: float = 120.0) -> None:
    """Run ``jobs`` on a thread each, released together by a barrier; wait for all of them and
    re-raise the first failure of any (a job still running after ``timeout_s`` is a failure too)."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def run(job: Callable[[], None]) -> None:
        try:
            start.wait()
            job()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)
        assert not thread.is_alive(), f"a job still ran after {timeout_s} s"
    if errors:
        raise errors[0]
