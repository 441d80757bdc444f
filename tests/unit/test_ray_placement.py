"""The Ray tier's placement: warm affinity first, then free memory, never past a node's memory."""

from __future__ import annotations

from squall.executors.ray_placement import Placement

KEY = "fn:$LATEST:rev1"


def placement() -> Placement:
    p = Placement()
    p.add("a", "node-a", 1024)
    p.add("b", "node-b", 2048)
    return p


def test_cold_start_goes_to_the_node_with_most_free_memory() -> None:
    p = placement()
    slot = p.choose(KEY, 128)
    assert slot is not None and slot.name == "b"
    assert p.begin(slot, KEY, 128) is False  # no idle sandbox taken: a cold start


def test_an_agent_with_an_idle_sandbox_wins_over_free_memory() -> None:
    p = placement()
    p.report("a", {KEY: 1})
    slot = p.choose(KEY, 128)
    assert slot is not None and slot.name == "a"
    assert p.begin(slot, KEY, 128) is True
    # Its one idle sandbox is taken: the next concurrent call cold-starts where memory is freest.
    other = p.choose(KEY, 128)
    assert other is not None and other.name == "b"


def test_warm_affinity_is_per_pool_key() -> None:
    p = placement()
    p.report("a", {"other:$LATEST:rev1": 3})
    slot = p.choose(KEY, 128)
    assert slot is not None and slot.name == "b"


def test_memory_is_reserved_while_running_and_released_after() -> None:
    p = Placement()
    p.add("a", "node-a", 1024)
    slot = p.choose(KEY, 1024)
    assert slot is not None
    p.begin(slot, KEY, 1024)
    assert p.choose(KEY, 128) is None
    p.finish(slot, 1024, {KEY: 1})
    again = p.choose(KEY, 1024)
    assert again is not None and again.idle == {KEY: 1}


def test_a_warm_agent_without_room_is_skipped() -> None:
    p = placement()
    p.report("a", {KEY: 1})
    a = p.agents["a"]
    p.begin(a, "big:$LATEST:rev1", 1000)
    slot = p.choose(KEY, 128)
    assert slot is not None and slot.name == "b"


def test_a_removed_agent_takes_no_work_and_a_joining_one_does() -> None:
    p = placement()
    p.remove("b")
    p.remove("a")
    assert p.choose(KEY, 128) is None
    p.add("c", "node-c", 512)
    slot = p.choose(KEY, 128)
    assert slot is not None and slot.name == "c"
    assert p.nodes() == {"node-c"}


def test_retiring_a_function_forgets_its_warm_sandboxes_only() -> None:
    p = placement()
    p.report("a", {KEY: 2, "other:1:rev": 1})
    p.forget("fn")
    assert p.agents["a"].idle == {"other:1:rev": 1}
    assert p.agents["a"].warm == 1
