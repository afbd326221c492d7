"""Warm agent instances: enter once, leave on idle, eviction or shutdown; never evict a busy one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from agents.context import SessionContext
from agents.registry import AgentFactory
from consumers.pool import AgentPool, Instance
from gateway.core.store.memory import MemoryStore
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(10)

Log = list[tuple[str, str, str]]


class Tracked:
    """A class target: one instance per warm conversation. Class-level ``log`` records every hook."""

    log: Log = []

    async def on_session_enter(self, ctx: SessionContext) -> None:
        self.log.append(("enter", ctx.agent, ctx.conversation_key))

    async def on_event(self, ctx: Any, event: Any) -> None:
        return None

    async def on_session_leave(self, ctx: SessionContext) -> None:
        self.log.append(("leave", ctx.agent, ctx.conversation_key))


class Shared:
    """An object target: the same object serves every conversation."""

    def __init__(self) -> None:
        self.log: Log = []

    async def on_session_enter(self, ctx: SessionContext) -> None:
        self.log.append(("enter", ctx.agent, ctx.conversation_key))

    async def on_event(self, ctx: Any, event: Any) -> None:
        return None

    async def on_session_leave(self, ctx: SessionContext) -> None:
        self.log.append(("leave", ctx.agent, ctx.conversation_key))


class Bare:
    """Only on_event: the lifecycle hooks are optional."""

    async def on_event(self, ctx: Any, event: Any) -> None:
        return None


@pytest.fixture
def log() -> Log:
    Tracked.log = []
    return Tracked.log


def make_pool(*, max_size: int = 100, idle_release: float = 1800.0, **extra: Any) -> AgentPool:
    factories = {"tracked": AgentFactory("tracked", Tracked), **{k: AgentFactory(k, v) for k, v in extra.items()}}
    return AgentPool(factories, MemoryStore("t"), max_size=max_size, idle_release=idle_release)


async def use(pool: AgentPool, agent: str, key: str) -> Instance:
    inst = await pool.acquire(agent, key)
    pool.release(inst)
    return inst


async def test_enter_once_per_agent_and_key(log: Log) -> None:
    pool = make_pool()
    first = await use(pool, "tracked", "k1")
    again = await use(pool, "tracked", "k1")
    await use(pool, "tracked", "k2")
    assert first is again
    assert log == [("enter", "tracked", "k1"), ("enter", "tracked", "k2")]
    assert len(pool) == 2
    assert first.session.conversation_key == "k1"
    assert first.session.agent == "tracked"


async def test_class_targets_per_key_object_targets_shared(log: Log) -> None:
    shared = Shared()
    pool = make_pool(shared=shared)
    a, b = await use(pool, "tracked", "k1"), await use(pool, "tracked", "k2")
    assert isinstance(a.agent, Tracked)
    assert a.agent is not b.agent
    s1, s2 = await use(pool, "shared", "k1"), await use(pool, "shared", "k2")
    assert s1.agent is s2.agent is shared
    assert s1 is not s2  # still one warm session (state, enter/leave) per conversation
    assert shared.log == [("enter", "shared", "k1"), ("enter", "shared", "k2")]
    s1.session.state["n"] = 1
    assert s2.session.state == {}


async def test_idle_release_on_sweep(log: Log) -> None:
    pool = make_pool(idle_release=0.01)
    inst = await use(pool, "tracked", "k1")
    busy = await pool.acquire("tracked", "k2")

    async def idle_for() -> float:
        return time.monotonic() - inst.last_used

    await eventually(idle_for, until=lambda s: s > 0.01, what="k1 to be idle long enough")
    assert await pool.sweep() == 1
    assert ("leave", "tracked", "k1") in log
    assert ("leave", "tracked", "k2") not in log  # busy: never released
    assert len(pool) == 1
    pool.release(busy)
    assert await pool.sweep() == 0  # just released: not idle yet


async def test_sweep_keeps_recently_used(log: Log) -> None:
    pool = make_pool(idle_release=60)
    await use(pool, "tracked", "k1")
    assert await pool.sweep() == 0
    assert len(pool) == 1


async def test_reacquire_after_release_enters_again(log: Log) -> None:
    pool = make_pool(idle_release=0.01)
    inst = await use(pool, "tracked", "k1")

    async def idle_for() -> float:
        return time.monotonic() - inst.last_used

    await eventually(idle_for, until=lambda s: s > 0.01, what="idle")
    await pool.sweep()
    again = await use(pool, "tracked", "k1")
    assert again is not inst
    assert log == [("enter", "tracked", "k1"), ("leave", "tracked", "k1"), ("enter", "tracked", "k1")]


async def test_eviction_is_lru_over_max_size(log: Log) -> None:
    pool = make_pool(max_size=2)
    await use(pool, "tracked", "k1")
    await use(pool, "tracked", "k2")
    await use(pool, "tracked", "k1")  # k1 becomes the most recently used
    await use(pool, "tracked", "k3")
    assert len(pool) == 2
    assert [e for e in log if e[0] == "leave"] == [("leave", "tracked", "k2")]


async def test_eviction_never_takes_a_busy_instance(log: Log) -> None:
    pool = make_pool(max_size=1)
    busy = await pool.acquire("tracked", "k1")
    other = await pool.acquire("tracked", "k2")
    assert len(pool) == 2  # over the limit rather than evicting work in progress
    assert [e for e in log if e[0] == "leave"] == []
    pool.release(busy)
    await use(pool, "tracked", "k3")  # now k1 (idle, oldest) goes; k2 is still busy
    assert [e for e in log if e[0] == "leave"] == [("leave", "tracked", "k1")]
    pool.release(other)


async def test_close_leaves_everything(log: Log) -> None:
    pool = make_pool()
    await use(pool, "tracked", "k1")
    busy = await pool.acquire("tracked", "k2")
    await pool.close()
    assert sorted(e for e in log if e[0] == "leave") == [("leave", "tracked", "k1"), ("leave", "tracked", "k2")]
    assert len(pool) == 0
    pool.release(busy)


async def test_failing_enter_is_not_kept_warm() -> None:
    class Broken:
        async def on_session_enter(self, ctx: SessionContext) -> None:
            raise RuntimeError("no model")

        async def on_event(self, ctx: Any, event: Any) -> None:
            return None

    pool = make_pool(broken=Broken)
    with pytest.raises(RuntimeError):
        await pool.acquire("broken", "k1")
    assert len(pool) == 0


async def test_failing_leave_does_not_stop_the_sweep() -> None:
    class Grumpy(Tracked):
        async def on_session_leave(self, ctx: SessionContext) -> None:
            raise RuntimeError("cannot save")

    pool = make_pool(grumpy=Grumpy)
    await use(pool, "grumpy", "k1")
    await use(pool, "tracked", "k2")
    await pool.close()
    assert len(pool) == 0


async def test_hooks_are_optional() -> None:
    pool = make_pool(bare=Bare)
    inst = await use(pool, "bare", "k1")
    assert isinstance(inst.agent, Bare)
    assert pool.knows("bare")
    assert not pool.knows("nobody")
    await pool.close()


async def test_concurrent_acquire_waits_for_enter() -> None:
    gate = asyncio.Event()

    class Slow:
        entered = False

        async def on_session_enter(self, ctx: SessionContext) -> None:
            await gate.wait()
            self.entered = True

        async def on_event(self, ctx: Any, event: Any) -> None:
            return None

    pool = make_pool(slow=Slow)
    first = asyncio.create_task(pool.acquire("slow", "k1"))
    await asyncio.sleep(0)  # first is now inside on_session_enter
    second = asyncio.create_task(pool.acquire("slow", "k1"))
    await asyncio.sleep(0)
    try:
        for _ in range(5):  # let the loop run: the second acquire must still be waiting for the first's enter
            await asyncio.sleep(0)
        assert not second.done(), "got the instance before on_session_enter finished"
        assert not first.done()
    finally:
        gate.set()
        a, b = await asyncio.gather(first, second)
    assert a.agent is b.agent  # one instance for the conversation
    assert a.agent.entered
