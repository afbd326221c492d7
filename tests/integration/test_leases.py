"""Partition leases between consumer processes, against the store twin and real Redis.

Managers are driven by calling ``tick()`` directly, so every step is deterministic; only expiry waits (on
a condition) for the TTL to pass.
"""

from __future__ import annotations

import asyncio

import pytest

from consumers.leases import GROUP, LeaseManager, fair_share, lease_key
from gateway.core.store.base import Store
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(30)

P = 8


class Calls:
    """Records every callback as (what, partition)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int]] = []

    async def acquired(self, p: int) -> None:
        self.log.append(("acquired", p))

    async def release(self, p: int) -> None:
        self.log.append(("release", p))

    async def lost(self, p: int) -> None:
        self.log.append(("lost", p))

    def of(self, what: str) -> list[int]:
        return [p for w, p in self.log if w == what]


def manager(store: Store, me: str, calls: Calls, *, ttl: float = 10.0) -> LeaseManager:
    return LeaseManager(store, me, P, ttl=ttl, on_acquired=calls.acquired, on_release=calls.release, on_lost=calls.lost)


async def owners(store: Store) -> list[str | None]:
    return await store.lease_owners([lease_key(p) for p in range(P)])


async def test_alone_it_takes_every_partition(store: Store) -> None:
    calls = Calls()
    m = manager(store, "m1", calls)
    await m.tick()
    assert m.held == set(range(P))
    assert sorted(calls.of("acquired")) == list(range(P))
    assert await owners(store) == ["m1"] * P
    assert await store.members(GROUP) == ["m1"]
    # A second tick renews and changes nothing.
    await m.tick()
    assert m.held == set(range(P))
    assert len(calls.log) == P


async def test_a_joiner_gets_its_fair_share(store: Store) -> None:
    c1, c2 = Calls(), Calls()
    m1, m2 = manager(store, "m1", c1), manager(store, "m2", c2)
    await m1.tick()
    for _ in range(4):
        await m2.tick()
        await m1.tick()
        if len(m1.held) == len(m2.held) == P // 2:
            break
    members = await store.members(GROUP)
    assert members == ["m1", "m2"]
    assert len(m1.held) == fair_share(P, members, "m1") == 4
    assert len(m2.held) == fair_share(P, members, "m2") == 4
    assert m1.held.isdisjoint(m2.held)
    expected = ["m1" if p in m1.held else "m2" for p in range(P)]
    assert await owners(store) == expected
    assert sorted(c1.of("release")) == sorted(m2.held)
    assert c1.of("lost") == c2.of("lost") == []


async def test_release_all_hands_everything_over_within_two_ticks(store: Store) -> None:
    c1, c2 = Calls(), Calls()
    m1, m2 = manager(store, "m1", c1), manager(store, "m2", c2)
    await m1.tick()
    for _ in range(4):
        await m2.tick()
        await m1.tick()
    assert len(m1.held) == len(m2.held) == 4
    mine = set(m1.held)

    await m1.release_all()
    assert m1.held == set()
    assert set(c1.of("release")) >= mine
    assert await store.members(GROUP) == ["m2"]
    for _ in range(2):
        await m2.tick()
        if len(m2.held) == P:
            break
    assert m2.held == set(range(P))
    assert await owners(store) == ["m2"] * P


async def test_a_silent_member_loses_its_partitions_after_the_ttl(store: Store) -> None:
    c1, c2 = Calls(), Calls()
    m1, m2 = manager(store, "m1", c1, ttl=0.6), manager(store, "m2", c2, ttl=0.6)
    await m1.tick()
    await m2.tick()
    await m1.tick()
    await m2.tick()
    assert len(m1.held) == len(m2.held) == 4

    # m1 is SIGKILLed: it never ticks again. m2 keeps ticking.
    async def m2_after_tick() -> int:
        await m2.tick()
        return len(m2.held)

    await eventually(m2_after_tick, until=lambda n: n == P, timeout=5, interval=0.05, what="m2 to hold all")
    assert await owners(store) == ["m2"] * P
    assert await store.members(GROUP) == ["m2"]
    assert c2.of("lost") == []


async def test_on_release_runs_before_the_lease_is_let_go(store: Store) -> None:
    order: list[tuple[str, int, str | None]] = []

    async def on_release(p: int) -> None:
        order.append(("on_release start", p, (await store.lease_owners([lease_key(p)]))[0]))
        await asyncio.sleep(0)  # a drain that yields to the loop
        order.append(("on_release end", p, (await store.lease_owners([lease_key(p)]))[0]))

    async def nothing(p: int) -> None:
        return None

    m = LeaseManager(store, "m1", P, ttl=10, on_acquired=nothing, on_release=on_release, on_lost=nothing)
    await m.tick()
    await m.release(5)
    order.append(("after release", 5, (await store.lease_owners([lease_key(5)]))[0]))
    assert order == [("on_release start", 5, "m1"), ("on_release end", 5, "m1"), ("after release", 5, None)]
    assert 5 not in m.held


async def test_renewal_failure_calls_on_lost(store: Store) -> None:
    calls = Calls()
    m = manager(store, "m1", calls)
    await m.tick()
    assert m.held == set(range(P))
    # Another owner took partition 3 (our lease expired while we were stalled, and someone acquired it).
    await store.delete(lease_key(3))
    assert await store.acquire_lease(lease_key(3), "intruder", 10)

    await m.tick()
    assert calls.of("lost") == [3]
    assert m.held == set(range(P)) - {3}
    assert (await owners(store))[3] == "intruder"
    assert calls.of("release") == []


async def test_a_failing_on_acquired_gives_the_lease_back(store: Store) -> None:
    async def on_acquired(p: int) -> None:
        if p == 2:
            raise RuntimeError("cannot subscribe")

    calls = Calls()
    m = LeaseManager(store, "m1", P, ttl=10, on_acquired=on_acquired, on_release=calls.release, on_lost=calls.lost)
    await m.tick()
    assert 2 not in m.held
    assert (await owners(store))[2] is None


def test_fair_share_splits_the_remainder_by_member_order() -> None:
    members = ["a", "b", "c"]
    assert [fair_share(8, members, m) for m in members] == [3, 3, 2]
    assert fair_share(8, ["a"], "b") == 4  # not yet a member: counted as one
    assert sum(fair_share(16, [f"m{i}" for i in range(5)], f"m{i}") for i in range(5)) == 16
