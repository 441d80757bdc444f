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


def test_reserved_pools_are_separate_from_the_unreserved_one() -> None:
    limiter = ConcurrencyLimiter(5)
    limiter.set_reserved("fixed", 2)
    limiter.set_reserved("off", 0)
    assert limiter.unreserved_limit == 3
    fixed = [limiter.try_take("fixed"), limiter.try_take("fixed")]
    assert all(fixed) and limiter.try_take("fixed") is None
    assert limiter.throttle_reason("fixed") == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert limiter.try_take("off") is None
    others = [limiter.try_take("a"), limiter.try_take("b"), limiter.try_take(None)]
    assert all(others) and limiter.try_take("c") is None and limiter.available == 0
    assert limiter.throttle_reason("c") == "ConcurrentInvocationLimitExceeded"
    slot = fixed[0]
    assert slot is not None
    limiter.release_slot(slot)
    assert limiter.try_take("fixed") is not None
    # A slot goes back to the pool it came from, even if the reservation changed meanwhile.
    limiter.set_reserved("fixed", None)
    assert limiter.unreserved_limit == 5 and limiter.available == 2
    busy = fixed[1]
    assert busy is not None
    limiter.release_slot(busy)
    assert limiter.available == 2


def test_waiting_for_a_reserved_slot_resumes_when_one_is_freed() -> None:
    async def scenario() -> None:
        limiter = ConcurrencyLimiter(10)
        limiter.set_reserved("one", 1)
        first = limiter.try_take("one")
        assert first is not None
        waiter = asyncio.ensure_future(limiter.take("one"))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        limiter.release_slot(first)
        slot = await asyncio.wait_for(waiter, 1)
        assert slot.pool == "one"

    asyncio.run(scenario())


def test_provisioned_environments_are_carved_out_of_their_pool() -> None:
    limiter = ConcurrencyLimiter(10)
    limiter.set_reserved("f", 3)
    limiter.set_provisioned({("f", "1"): 2, ("g", "4"): 1})
    first = limiter.try_take("f", "1")
    second = limiter.try_take("f", "1")
    assert first is not None and second is not None and first.provisioned == ("f", "1")
    spill = limiter.try_take("f", "1")  # both provisioned busy: the rest of f's reservation (3 - 2)
    assert spill is not None and spill.provisioned is None
    assert limiter.try_take("f", "$LATEST") is None  # the reservation is used up
    limiter.release_slot(spill)
    assert limiter.try_take("f", "$LATEST") is not None
    # g has no reservation: its provisioned environment comes out of the unreserved 7.
    assert limiter.unreserved_limit == 7 and limiter.on_demand_limit == 6
    assert limiter.try_take("g", "4") is not None and limiter.try_take("g", "4") is not None
    assert limiter.available == 5
    limiter.release_slot(first)
    again = limiter.try_take("f", "1")
    assert again is not None and again.provisioned == ("f", "1")
