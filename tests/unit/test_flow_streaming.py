"""A flow's free-text step on a streaming route: the model's text goes through ``ctx.stream()``, with the ids,
order and state of a route that does not stream, and a repeated turn sends it as a stream again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agents import Flow, ModelTurn, Step, ToolCall, TurnContext
from agents.context import SessionContext
from agents.flows import state as flow_state
from gateway.core.events import OutboundMessage
from gateway.core.store.memory import MemoryStore
from tests.unit.test_flows import KEY, thread_message

WORDS = "Sorry to hear that! What happened to it?"


class Problem(BaseModel):
    problem: str = Field(min_length=5, description="what went wrong")
    contact: str = Field(pattern=r"^\S+@\S+$", description="email address")


class StreamingModel:
    """Streams each scripted turn's content a word at a time, then the turn; ``complete`` the same turns."""

    def __init__(self, *turns: ModelTurn) -> None:
        self.turns = list(turns)
        self.calls = 0

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelTurn:
        self.calls += 1
        return self.turns.pop(0)

    async def stream(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[str | ModelTurn]:
        self.calls += 1
        turn = self.turns.pop(0)
        words = (turn.content or "").split(" ")
        for i, word in enumerate(words if turn.content else []):
            await asyncio.sleep(0)
            yield word if i == len(words) - 1 else word + " "
        yield turn


def flow(model: StreamingModel) -> Flow:
    f = Flow(
        "intake",
        schema=Problem,
        steps=[
            Step("hello", prompt="Hi! Let's sort it out."),
            Step("problem", collect=["problem"], prompt="What went wrong?", free_text=True),
            Step("contact", collect=["contact"], prompt="Your email?"),
        ],
    )
    f.use_model(model)
    return f


def ctx_for(store: MemoryStore, text: str, event_id: str, *, stream: bool) -> TurnContext:
    event = thread_message(text, event_id, stream=stream)
    shown: list[OutboundMessage] = []

    async def send_now(message: OutboundMessage) -> None:
        shown.append(message)

    ctx = TurnContext(SessionContext("intake", KEY, store), [event], history_window=50, send_now=send_now)
    ctx.shown = shown  # type: ignore[attr-defined]
    return ctx


async def turn(f: Flow, store: MemoryStore, text: str, event_id: str, *, stream: bool) -> TurnContext:
    ctx = ctx_for(store, text, event_id, stream=stream)
    await f.on_event(ctx, ctx.event)
    await ctx.finish_streams()  # what the dispatcher does after every turn
    return ctx


def said(ctx: TurnContext) -> list[tuple[str, str, str]]:
    return [(m.id, m.action, m.text) for m in ctx.outbox]


async def test_the_model_text_streams_after_the_replies_before_it_with_the_ids_of_a_plain_route() -> None:
    runs = {}
    for stream in (False, True):
        store = MemoryStore("unit")
        runs[stream] = await turn(flow(StreamingModel(ModelTurn(WORDS, []))), store, "hmm", "e1", stream=stream)
    plain, live = runs[False], runs[True]
    assert said(plain) == [
        ("slack:T:C:e1:intake:1", "reply", "Hi! Let's sort it out."),
        ("slack:T:C:e1:intake:2", "reply", WORDS),
    ]
    assert said(live) == [
        ("slack:T:C:e1:intake:1", "reply", "Hi! Let's sort it out."),
        ("slack:T:C:e1:intake:2", "stream", WORDS),
    ]
    final = live.outbox[1]
    assert final.final
    snapshots = live.shown  # type: ignore[attr-defined]
    assert snapshots  # shown while it came
    assert all(s.id == final.id and s.action == "stream" and not s.final for s in snapshots)
    assert all(WORDS.startswith(s.text) for s in snapshots)


async def test_the_state_keeps_which_reply_streamed_and_a_repeated_turn_streams_it_again() -> None:
    store = MemoryStore("unit")
    model = StreamingModel(ModelTurn(WORDS, []))
    f = flow(model)
    first = await turn(f, store, "hmm", "e1", stream=True)
    saved = await flow_state.load(store, "intake", KEY)
    assert saved.step == "problem"
    assert saved.asked
    assert saved.replies == ["Hi! Let's sort it out.", WORDS]
    assert saved.streamed == [1]
    again = await turn(f, store, "hmm", "e1", stream=True)  # the consumer died before the done marker
    assert model.calls == 1
    assert said(again) == said(first)
    assert again.outbox[1].final
    assert await flow_state.load(store, "intake", KEY) == saved


async def test_text_the_user_saw_stays_a_reply_when_the_model_also_filled_the_slot() -> None:
    store = MemoryStore("unit")
    both = ModelTurn("Noted.", [ToolCall("c1", "fill_slots", json.dumps({"problem": "The parcel never came"}))])
    f = flow(StreamingModel(both))
    ctx = await turn(f, store, "it never came", "e1", stream=True)
    assert [(a, t) for _, a, t in said(ctx)] == [
        ("reply", "Hi! Let's sort it out."),
        ("stream", "Noted."),
        ("reply", "Your email?"),
    ]
    saved = await flow_state.load(store, "intake", KEY)
    assert saved.step == "contact"
    assert saved.data == {"problem": "The parcel never came"}


async def test_an_answer_that_only_fills_slots_opens_no_stream() -> None:
    store = MemoryStore("unit")
    fills = ModelTurn(None, [ToolCall("c1", "fill_slots", json.dumps({"problem": "The parcel never came"}))])
    ctx = await turn(flow(StreamingModel(fills)), store, "it never came", "e1", stream=True)
    assert said(ctx) == [
        ("slack:T:C:e1:intake:1", "reply", "Hi! Let's sort it out."),
        ("slack:T:C:e1:intake:2", "reply", "Your email?"),
    ]
    assert ctx.streams == []
    assert (await flow_state.load(store, "intake", KEY)).streamed == []


def test_a_state_written_before_streamed_was_kept_reads() -> None:
    old = json.dumps({"v": 3, "step": "problem", "asked": True, "replies": ["x"], "events": ["e1"]})
    assert flow_state.FlowState.from_json(old).streamed == []
