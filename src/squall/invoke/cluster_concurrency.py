"""Concurrency limits across the servers of one deployment (the scale-out tier).

Every ``PUBLISH_INTERVAL_S`` each server writes what it runs now per pool (the unreserved pool, each
reserved function) to the deployment's PostgreSQL, and reads what the others published within
``STALE_AFTER_S``; its ``ConcurrencyLimiter`` leaves that much of each pool free. So the account
limit and reserved concurrency hold for the deployment, not per server. A server that dies stops
counting once its rows go stale. The counts are as fresh as the interval: a burst arriving at
several servers at once can overshoot a limit for up to one interval, never for longer.
Provisioned environments are placed per server and not counted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from squall.background import cancel_and_wait
from squall.invoke.concurrency import ConcurrencyLimiter

log = logging.getLogger(__name__)

PUBLISH_INTERVAL_S = 0.2
STALE_AFTER_S = 5.0
#: The unreserved pool's name in the table (reserved pools are named after their function).
UNRESERVED = ""


class ClusterConcurrency:
    """Publishes this server's in-flight counts and feeds the others' to its limiter."""

    def __init__(self, database: Any, owner: str, limiter: ConcurrencyLimiter) -> None:
        self.database = database  # a PostgresDatabase: ``transaction()`` gives a psycopg connection
        self.owner = owner
        self.limiter = limiter
        self._task: asyncio.Task[None] | None = None

    def exchange(self, now: float | None = None) -> dict[str | None, int]:
        """Publish this server's counts and return what the other live servers run, per pool."""
        now = time.time() if now is None else now
        mine = self.limiter.in_flight_by_pool()
        rows = [(self.owner, UNRESERVED if pool is None else pool, count, now) for pool, count in mine.items()]
        with self.database.transaction() as conn:
            conn.execute("DELETE FROM concurrency_in_flight WHERE owner = %s", (self.owner,))
            if rows:
                with conn.cursor() as cursor:
                    cursor.executemany("INSERT INTO concurrency_in_flight VALUES (%s, %s, %s, %s)", rows)
            found = conn.execute(
                "SELECT pool, SUM(n) FROM concurrency_in_flight WHERE owner <> %s AND updated > %s GROUP BY pool",
                (self.owner, now - STALE_AFTER_S),
            ).fetchall()
        return {None if pool == UNRESERVED else str(pool): int(total) for pool, total in found}

    def withdraw(self) -> None:
        """This server runs nothing any more (it is stopping)."""
        with self.database.transaction() as conn:
            conn.execute("DELETE FROM concurrency_in_flight WHERE owner = %s", (self.owner,))

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.withdraw)

    async def _run(self) -> None:
        while True:
            try:
                self.limiter.set_elsewhere(await asyncio.to_thread(self.exchange))
            except Exception as exc:  # keep the last known counts; the store may be back next time
                log.warning("cluster concurrency: could not exchange in-flight counts: %s", exc)
            await asyncio.sleep(PUBLISH_INTERVAL_S)
