"""The account concurrency limit: throttle or wait."""

import asyncio

from squall.invoke.concurrency import ConcurrencyLimiter


def test_try_acquire_stops_at_the_limit() -> None:
    limiter = ConcurrencyLimiter(2)
    assert limiter.try_acquire() and limiter.try_acquire()
    assert not limiter.try_acquire()
    assert limiter.available == 0
    limiter.release()
    assert limiter.available == 1 and limiter.try_acquire()


def test_acquire_waits_for_a_release() -> None:
    async def scenario() -> list[str]:
        limiter = ConcurrencyLimiter(1)
        order: list[str] = []
        assert limiter.try_acquire()

        async def waiter() -> None:
            await limiter.acquire()
            order.append("acquired")

        task = asyncio.ensure_future(waiter())
        await asyncio.sleep(0.05)
        order.append("releasing")
        limiter.release()
        await asyncio.wait_for(task, 1)
        assert limiter.in_flight == 1
        return order

    assert asyncio.run(scenario()) == ["releasing", "acquired"]
