"""Keyed lanes: one run at a time per key, keys in parallel, nothing lost or reordered."""

from __future__ import annotations

import asyncio
import random

import pytest

from consumers.lanes import Lanes
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(10)


async def yield_a_few(rng: random.Random) -> None:
    for _ in range(rng.randint(0, 5)):
        await asyncio.sleep(0)


async def test_per_key_order_under_concurrency() -> None:
    rng = random.Random(7)
    results: dict[str, list[int]] = {}
    running: set[str] = set()
    overlaps: list[str] = []

    async def run(key: str, items: list[int]) -> None:
        if key in running:
            overlaps.append(key)
        running.add(key)
        await yield_a_few(rng)
        results.setdefault(key, []).extend(items)
        running.discard(key)

    lanes: Lanes[int] = Lanes(run)
    submitted: dict[str, list[int]] = {}
    for i in range(1000):
        key = f"k{rng.randrange(50)}"
        submitted.setdefault(key, []).append(i)
        lanes.submit(key, i)
        if rng.random() < 0.3:
            await yield_a_few(rng)
    assert await lanes.wait_idle(5)
    assert results == submitted
    assert overlaps == []
    assert len(lanes) == 0
    assert lanes.pending() == 0


async def test_different_keys_run_concurrently() -> None:
    started: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}
    release = asyncio.Event()
    finished: list[str] = []

    async def run(key: str, items: list[str]) -> None:
        started[key].set()
        await release.wait()
        finished.append(key)

    lanes: Lanes[str] = Lanes(run)
    lanes.submit("a", "x")
    lanes.submit("b", "y")
    await asyncio.wait_for(asyncio.gather(started["a"].wait(), started["b"].wait()), 5)
    assert finished == []
    assert len(lanes) == 2
    release.set()
    assert await lanes.wait_idle(5)
    assert sorted(finished) == ["a", "b"]


async def test_one_key_never_runs_two_items_at_once() -> None:
    gates = [asyncio.Event() for _ in range(3)]
    started: list[int] = []

    async def run(key: str, items: list[int]) -> None:
        (item,) = items
        started.append(item)
        await gates[item].wait()

    lanes: Lanes[int] = Lanes(run)
    for i in range(3):
        lanes.submit("k", i)

    async def started_items() -> list[int]:
        return list(started)

    await eventually(started_items, until=lambda s: s == [0], what="the first run")
    assert lanes.pending() == 3
    assert len(lanes) == 1
    gates[0].set()
    await eventually(started_items, until=lambda s: s == [0, 1], what="the second run")
    assert lanes.pending() == 2
    gates[1].set()
    gates[2].set()
    assert await lanes.wait_idle(5)
    assert started == [0, 1, 2]


async def test_collect_folds_items_that_arrived_during_a_run() -> None:
    gate = asyncio.Event()
    batches: list[tuple[str, list[int]]] = []

    async def run(key: str, items: list[int]) -> None:
        batches.append((key, list(items)))
        if len(batches) == 1:
            await gate.wait()

    lanes: Lanes[int] = Lanes(run, collect=lambda key: key == "folded")
    lanes.submit("folded", 1)

    async def batch_count() -> int:
        return len(batches)

    await eventually(batch_count, until=lambda n: n == 1, what="the first run")
    for i in (2, 3, 4):
        lanes.submit("folded", i)
    gate.set()
    assert await lanes.wait_idle(5)
    assert batches == [("folded", [1]), ("folded", [2, 3, 4])]


async def test_queue_policy_runs_one_item_per_run() -> None:
    gate = asyncio.Event()
    batches: list[list[int]] = []

    async def run(key: str, items: list[int]) -> None:
        batches.append(list(items))
        await gate.wait()

    lanes: Lanes[int] = Lanes(run, collect=lambda key: key == "folded")
    for i in range(3):
        lanes.submit("queued", i)
    gate.set()
    assert await lanes.wait_idle(5)
    assert batches == [[0], [1], [2]]


async def test_wait_idle_true_when_done_false_on_timeout() -> None:
    gate = asyncio.Event()

    async def run(key: str, items: list[int]) -> None:
        await gate.wait()

    lanes: Lanes[int] = Lanes(run)
    assert await lanes.wait_idle(0.01) is True  # nothing submitted yet
    lanes.submit("k", 1)
    assert await lanes.wait_idle(0.05) is False
    gate.set()
    assert await lanes.wait_idle(5) is True


async def test_a_failing_run_does_not_kill_the_lane() -> None:
    done: list[int] = []

    async def run(key: str, items: list[int]) -> None:
        if items == [1]:
            raise RuntimeError("bug in a turn")
        done.extend(items)

    lanes: Lanes[int] = Lanes(run)
    for i in range(4):
        lanes.submit("k", i)
    assert await lanes.wait_idle(5)
    assert done == [0, 2, 3]
    lanes.submit("k", 4)
    assert await lanes.wait_idle(5)
    assert done == [0, 2, 3, 4]


async def test_cancel_clears_everything_and_lanes_work_again() -> None:
    gate = asyncio.Event()
    cancelled: list[str] = []
    done: list[int] = []

    async def run(key: str, items: list[int]) -> None:
        try:
            await gate.wait()
        except asyncio.CancelledError:
            cancelled.append(key)
            raise
        done.extend(items)

    lanes: Lanes[int] = Lanes(run)
    for key in ("a", "b"):
        for i in range(3):
            lanes.submit(key, i)
    await asyncio.sleep(0)  # let both lanes start their first run
    assert lanes.pending() == 6
    await lanes.cancel()
    assert sorted(cancelled) == ["a", "b"]
    assert len(lanes) == 0
    assert lanes.pending() == 0
    assert await lanes.wait_idle(0.01)
    assert done == []

    gate.set()
    lanes.submit("a", 9)
    assert await lanes.wait_idle(5)
    assert done == [9]


async def test_lane_retires_when_empty_and_restarts_on_next_item() -> None:
    seen: list[tuple[str, int]] = []

    async def run(key: str, items: list[int]) -> None:
        seen.extend((key, i) for i in items)

    lanes: Lanes[int] = Lanes(run)
    lanes.submit("k", 1)
    assert await lanes.wait_idle(5)
    assert len(lanes) == 0
    lanes.submit("k", 2)
    assert len(lanes) == 1
    assert await lanes.wait_idle(5)
    assert seen == [("k", 1), ("k", 2)]
