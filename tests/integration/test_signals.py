"""Stop signals reach every listener, on the in-process twin and on Redis pub/sub, and survive garbage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from gateway.core.signals import MemorySignals, RedisSignals, Signals, StopSignal
from tests.support.waiting import eventually


@pytest.fixture
async def signals(backend: tuple[str, str, str, str]) -> AsyncIterator[Signals]:
    kind, _, redis_url, ns = backend
    s: Signals = MemorySignals() if kind == "memory" else RedisSignals(redis_url, ns)
    yield s
    await s.close()


async def test_every_listener_hears_a_stop_and_garbage_is_skipped(
    signals: Signals, backend: tuple[str, str, str, str]
) -> None:
    heard: list[list[StopSignal]] = [[], []]
    stop = asyncio.Event()
    listeners = [asyncio.create_task(signals.listen(h.append, stop)) for h in heard]
    signal = StopSignal("e1", "slack:T:C:1", datetime(2026, 1, 1, tzinfo=UTC), "stop word")

    async def publish_until_heard() -> bool:  # a listener subscribes in the background
        if not all(heard):
            await signals.publish_stop(signal)
        return all(heard)

    if isinstance(signals, RedisSignals):
        client = aioredis.from_url(backend[2])
        await client.publish(signals.channel, b"not json")
        await client.aclose()
    await eventually(publish_until_heard, what="both listeners hearing the stop")
    assert all(h[0] == signal for h in heard)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*listeners), 5)


async def test_a_signal_round_trips_through_json() -> None:
    s = StopSignal("e1", "telegram:default:42", datetime(2026, 1, 1, 12, 0, 1, 500, tzinfo=UTC), "stop button")
    assert StopSignal.from_json(s.to_json()) == s


async def test_an_unreachable_redis_publishes_nothing_and_does_not_raise() -> None:
    s = RedisSignals("redis://127.0.0.1:1/0", "nowhere")
    await s.publish_stop(StopSignal("e1", "k", datetime(2026, 1, 1, tzinfo=UTC), "stop word"))
    await s.close()
