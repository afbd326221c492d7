"""The ``interrupt`` busy policy and stop requests through the dispatcher and the partition lanes, on the
in-process twins and on RabbitMQ + Redis: the running turn is finalized with the marker, acked and recorded
as interrupted; the messages after it are answered in order; nothing is lost or dead-lettered."""

# ruff: noqa: F811  (the ``rig`` fixture of test_dispatch is imported and then named by each test)

from __future__ import annotations

import asyncio
from typing import Any

from agents.context import Turn, TurnContext, history_key
from gateway.core.events import Event
from tests.integration.test_dispatch import Rig, event, rig  # noqa: F401
from tests.support.waiting import eventually


class Thinker:
    """Says it is thinking, then answers; "slow" thinks until it is stopped."""

    def __init__(self) -> None:
        self.entered: list[str] = []
        self.slow_started = asyncio.Event()

    async def on_event(self, ctx: TurnContext, ev: Event) -> None:
        self.entered.append(ev.text)
        await ctx.reply(f"thinking about {ev.text}")
        if ev.text.startswith("slow"):
            self.slow_started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:  # tidies up: the messages published meanwhile arrive while it runs
                await asyncio.sleep(0.3)
                raise
        await ctx.reply(f"answer: {ev.text}")


async def settled(rig: Rig) -> int:
    return sum(w.in_flight for w in rig.workers)


async def history(rig: Rig, key: str = "slack:T:C:1") -> list[Turn]:
    return [Turn.from_json(r) for r in await rig.store.tail(history_key("rec", key), 100)]


async def test_messages_during_a_turn_interrupt_it_and_are_answered_in_order(rig: Rig) -> None:
    agent = Thinker()
    await rig.start({"rec": agent})
    await rig.publisher.event(event("slow one", busy="interrupt"))
    await asyncio.wait_for(agent.slow_started.wait(), 10)
    for text in ("second", "third"):
        await rig.publisher.event(event(text, busy="interrupt"))
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 5, what="five replies")
    assert rig.platform.texts == [
        "thinking about slow one …(stopped)",
        "thinking about second",
        "answer: second",
        "thinking about third",
        "answer: third",
    ]
    assert agent.entered == ["slow one", "second", "third"]  # "third" did not interrupt "second"
    await eventually(lambda: settled(rig), until=lambda n: n == 0, what="every delivery acked")
    assert await rig.dead() == []
    records = await history(rig)
    assert [(t.role, t.text, t.interrupted) for t in records] == [
        ("user", "slow one", "new message"),
        ("assistant", "thinking about slow one …(stopped)", "new message"),
        ("user", "second", None),
        ("assistant", "thinking about second", None),
        ("assistant", "answer: second", None),
        ("user", "third", None),
        ("assistant", "thinking about third", None),
        ("assistant", "answer: third", None),
    ]
    assert rig.metrics.turns.labels("rec", "interrupted")._value.get() == 1


async def test_queue_policy_keeps_running_turns_when_messages_arrive(rig: Rig) -> None:
    agent = Thinker()
    await rig.start({"rec": agent})
    await rig.publisher.event(event("quick", busy="queue"))
    await rig.publisher.event(event("next", busy="queue"))
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 4, what="four replies")
    assert not any("stopped" in t for t in rig.platform.texts)


def stop(text: str = "stop", **kw: Any) -> Event:
    return event(text, control="stop", skip_reason="stop", **kw)


async def test_a_stop_request_stops_the_turn_starts_none_and_the_next_message_runs(rig: Rig) -> None:
    agent = Thinker()
    await rig.start({"rec": agent})
    await rig.publisher.event(event("slow work"))
    await asyncio.wait_for(agent.slow_started.wait(), 10)
    await rig.publisher.event(stop())
    await rig.publisher.event(event("after"))
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 3, what="three replies")
    assert rig.platform.texts == ["thinking about slow work …(stopped)", "thinking about after", "answer: after"]
    assert agent.entered == ["slow work", "after"]  # the stop started no turn
    await eventually(lambda: settled(rig), until=lambda n: n == 0, what="every delivery acked")
    assert await rig.dead() == []
    records = await history(rig)
    assert [t.interrupted for t in records if t.text.startswith(("slow", "thinking about slow"))] == [
        "stop word",
        "stop word",
    ]
    assert "stop" not in [t.text for t in records]


async def test_a_stop_with_nothing_running_is_acked_and_changes_nothing(rig: Rig) -> None:
    agent = Thinker()
    await rig.start({"rec": agent})
    await rig.publisher.event(stop())
    await rig.publisher.event(event("hello"))
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 2, what="two replies")
    assert rig.platform.texts == ["thinking about hello", "answer: hello"]
    await eventually(lambda: settled(rig), until=lambda n: n == 0, what="every delivery acked")
    assert await rig.dead() == []


class Streamer:
    """Shows text partway through a long turn (what a stream's first snapshot does), then keeps working."""

    def __init__(self) -> None:
        self.visible = asyncio.Event()
        self.go_on = asyncio.Event()

    async def on_event(self, ctx: TurnContext, ev: Event) -> None:
        await self.go_on.wait()
        ctx.mark_text_visible()
        self.visible.set()
        await asyncio.sleep(0.3)  # long enough for several typing indicators, were they still going
        await ctx.reply("done")


async def test_the_typing_indicator_repeats_until_text_shows_and_then_stops(rig: Rig) -> None:
    agent = Streamer()
    await rig.start({"rec": agent}, typing_after=0.0, typing_every=0.02)
    await rig.publisher.event(event("write"))
    typing = lambda: [m for m in rig.platform.sent if m.action == "typing"]  # noqa: E731
    await eventually(typing, until=lambda t: len(t) >= 3, what="typing repeated while nothing shows")
    agent.go_on.set()
    await asyncio.wait_for(agent.visible.wait(), 5)
    await eventually(lambda: rig.platform.texts, until=lambda t: "done" in t, what="the reply")
    shown = len(typing())
    stopped_at = rig.platform.sent.index(typing()[-1])
    assert shown >= 3
    # once the text showed, at most the indicator already in flight went out; none after the reply
    assert [m.action for m in rig.platform.sent[stopped_at + 1 :]] == ["reply"]
