"""Stream snapshots through the outbound worker, paced by Slack's per-channel limit: a model far faster than the
limit costs a few calls, the final text is not held up behind stale updates, and it is one message."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from connectors.platform import ChatRates
from connectors.slack.sender import SlackSender
from consumers.deadletter import DeadLetters
from consumers.lanes import Lanes
from consumers.outbound import OutboundWorker
from consumers.ratelimit import RateLimiter
from gateway.core.bus.base import Delivery
from gateway.core.bus.memory import MemoryBus
from gateway.core.bus.topology import Topology
from gateway.core.events import OutboundMessage, ReplyAddress
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.store.memory import MemoryStore
from tests.fakes.slack_api import FakeSlack

TO = ReplyAddress(platform="slack", bot="T111", channel="C1", thread="1700000000.000100", user="U1")
WORDS = [f"w{i}" for i in range(60)]


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token="xoxb-unit") as fake:
        yield fake


async def _settle(_: str) -> None:
    return None


def delivery(message: OutboundMessage) -> Delivery:
    return Delivery(message.model_dump_json().encode(), {}, "0", "t.outbound", message.id, 0, _settle)


async def test_a_fast_stream_is_coalesced_to_the_channel_limit(slack: FakeSlack) -> None:
    store = MemoryStore("unit")
    metrics = Metrics()
    publisher = Publisher(MemoryBus(Topology("unit")), metrics)
    sender = SlackSender("xoxb-unit", slack.base_url)
    limiter = RateLimiter(store, {"slack": ChatRates("slack", chat_rate=4.0, chat_burst=1.0, bot_rate=1000.0)})
    worker = OutboundWorker(
        {"slack": sender}, store=store, limiter=limiter, dead=DeadLetters(publisher, metrics), metrics=metrics
    )
    lanes: Lanes[Delivery] = Lanes(worker.run, collect=lambda key: True)
    try:
        text = ""
        for seq, word in enumerate(WORDS, 1):  # 60 snapshots in about 0.6 s: 100 a second
            text = f"{text} {word}".strip()
            m = OutboundMessage(
                id="ev:a:1", event_id="ev", conversation_key="k", action="stream", to=TO, text=text, seq=seq
            )
            d = delivery(m)
            lanes.submit(worker.arrive(d), d)
            await asyncio.sleep(0.01)
        final = OutboundMessage(
            id="ev:a:1", event_id="ev", conversation_key="k", action="stream", to=TO, text=text, seq=61, final=True
        )
        d = delivery(final)
        finished_writing = time.monotonic()
        lanes.submit(worker.arrive(d), d)
        assert await lanes.wait_idle(10)
    finally:
        await sender.close()
    (message,) = slack.created("C1", TO.thread or "")
    assert message["text"] == text
    calls = [c for c in slack.calls if c.method.startswith("chat.")]
    # 4 a second over about 0.6 s, plus the burst and the final: a handful, not 61
    assert len(calls) <= 6, [c.method for c in calls]
    assert calls[-1].method == "chat.stopStream"
    assert calls[-1].at - finished_writing < 0.6  # the final waits one slot at most, not one per stale update
    steps = [s.text for s in slack.steps("C1", message["ts"])]
    assert steps[-1] == text
    assert all(b.startswith(a) for a, b in itertools.pairwise(steps))
