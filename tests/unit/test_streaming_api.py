"""ctx.stream(): snapshots while writing, one durable final, the same code on a route that does not stream;
the agent loop streaming from OpenAI-compatible servers (through the real client, against the fake's SSE)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agents import Agent, ModelTurn, ToolCall, TurnContext
from agents.context import SessionContext
from agents.models import OpenAIChat
from agents.streaming import StreamClosed
from gateway.core.events import Event, EventKind, OutboundMessage, ReplyAddress
from gateway.core.store.memory import MemoryStore
from tests.fakes.openai_api import FakeOpenAI, ModelReply, tool_call_reply
from tests.support.waiting import eventually


def make_ctx(*, stream: bool, sent: list[OutboundMessage] | None = None) -> TurnContext:
    event = Event(
        platform="slack",
        delivery_id="Ev1",
        kind=EventKind.MESSAGE,
        conversation_key="slack:T:C:1",
        text="tell me",
        reply_to=ReplyAddress(platform="slack", bot="T", channel="C", thread="1"),
        message_ref="slack:T:C:1",
        stream=stream,
    )
    out = sent if sent is not None else []

    async def send_now(message: OutboundMessage) -> None:
        out.append(message)

    return TurnContext(
        SessionContext("a", event.conversation_key, MemoryStore("unit")), [event], history_window=50, send_now=send_now
    )


async def test_a_stream_on_a_route_that_does_not_stream_is_one_reply() -> None:
    sent: list[OutboundMessage] = []
    ctx = make_ctx(stream=False, sent=sent)
    async with ctx.stream() as s:
        for word in ["Hel", "lo ", "world"]:
            await s.write(word)
    assert sent == []
    assert [(m.action, m.text, m.id) for m in ctx.outbox] == [("reply", "Hello world", "slack:T:C:1:a:1")]
    assert ctx.replies == ["Hello world"]


async def test_snapshots_go_out_while_writing_and_the_final_joins_the_outbox() -> None:
    sent: list[OutboundMessage] = []
    ctx = make_ctx(stream=True, sent=sent)
    async with ctx.stream() as s:
        await s.write("Hello")
        await eventually(lambda: len(sent) == 1, what="the first snapshot at once")
        for _ in range(200):  # far faster than snapshots go: they carry everything written, coalesced
            await s.write(" more")
        await eventually(lambda: sent[-1].text.endswith("more"), what="a later snapshot")
    assert sent[0].text == "Hello"
    assert sent[0].seq == 1
    assert not sent[0].final
    assert all(m.action == "stream" and m.id == s.id for m in sent)
    assert [m.seq for m in sent] == list(range(1, len(sent) + 1))
    assert len(sent) < 10
    (final,) = ctx.outbox
    assert final.final
    assert final.action == "stream"
    assert final.id == s.id
    assert final.seq == len(sent) + 1
    assert final.text == "Hello" + " more" * 200
    assert ctx.replies == [final.text]
    with pytest.raises(StreamClosed):
        await s.write("late")


async def test_a_failure_inside_the_block_leaves_the_reply_unfinished() -> None:
    sent: list[OutboundMessage] = []
    ctx = make_ctx(stream=True, sent=sent)
    s = ctx.stream()

    async def fails() -> None:
        async with s:
            await s.write("partial")
            raise RuntimeError("model broke")

    with pytest.raises(RuntimeError):
        await fails()
    assert ctx.outbox == []
    assert not s.finished
    await ctx.finish_streams()  # a turn cut short on purpose keeps what it has
    assert [m.text for m in ctx.outbox] == ["partial"]


async def test_nothing_written_is_no_message() -> None:
    ctx = make_ctx(stream=True)
    async with ctx.stream():
        pass
    assert ctx.outbox == []


class StreamingModel:
    """A model with ``stream()``: the scripted turns, their content a word at a time."""

    def __init__(self, *turns: ModelTurn) -> None:
        self.turns = list(turns)

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelTurn:
        raise AssertionError("a streaming route streams")

    async def stream(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[str | ModelTurn]:
        turn = self.turns.pop(0)
        for word in (turn.content or "").split(" "):
            await asyncio.sleep(0)
            yield word + " "
        yield turn


async def test_the_agent_loop_writes_the_model_stream_into_ctx_stream() -> None:
    model = StreamingModel(ModelTurn(None, [ToolCall("c1", "double", '{"x": 4}')]), ModelTurn("it is 8"))
    agent = Agent("a", model=model)

    @agent.tool
    def double(x: int) -> int:
        """Double it."""
        return 2 * x

    ctx = make_ctx(stream=True)
    await agent.on_event(ctx, ctx.event)
    (final,) = ctx.outbox
    assert final.action == "stream"
    assert final.final
    assert final.text.strip() == "it is 8"


@pytest.fixture
async def oai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key="sk-unit") as server:
        yield server


async def test_openai_stream_assembles_text_tool_calls_and_usage(oai: FakeOpenAI) -> None:
    oai.script_replies(
        tool_call_reply("lookup", {"order_id": "A-1042", "verbose": True}, "call_9", content="Checking."),
        ModelReply(content="Your order A-1042 shipped yesterday."),
    )
    model = OpenAIChat("gpt-4o-mini", base_url=f"{oai.base_url}/v1", api_key="sk-unit")
    try:
        items = [i async for i in model.stream([{"role": "user", "content": "where?"}], [])]
        *deltas, turn = items
        assert isinstance(turn, ModelTurn)
        assert "".join(str(d) for d in deltas) == "Checking." == turn.content
        assert turn.tool_calls == [ToolCall("call_9", "lookup", '{"order_id": "A-1042", "verbose": true}')]
        assert turn.usage is not None
        assert turn.usage.output_tokens > 0
        assert turn.usage.input_tokens > 0
        items = [i async for i in model.stream([{"role": "user", "content": "and now?"}], [])]
        assert len(items) > 3
        assert "".join(i for i in items if isinstance(i, str)) == "Your order A-1042 shipped yesterday."
        assert oai.requests[-1]["stream"] is True
        assert oai.requests[-1]["stream_options"] == {"include_usage": True}
    finally:
        await model.close()


async def test_openai_stream_errors_are_model_errors(oai: FakeOpenAI) -> None:
    from agents.models import ModelError

    oai.rate_limit_next(retry_after=3)
    model = OpenAIChat("gpt-4o-mini", base_url=f"{oai.base_url}/v1", api_key="sk-unit")
    try:
        with pytest.raises(ModelError) as err:
            _ = [i async for i in model.stream([{"role": "user", "content": "x"}], [])]
        assert err.value.status == 429
        assert err.value.retry_after == 3
    finally:
        await model.close()


async def test_an_anthropic_agent_streams_into_ctx_stream() -> None:
    from agents.anthropic_model import AnthropicChat
    from tests.fakes.anthropic_api import FakeAnthropic
    from tests.fakes.anthropic_api import text_reply as claude_says

    async with FakeAnthropic(api_key="sk-ant-unit") as fake:
        fake.script_replies(claude_says("Streamed by Claude, word by word."))
        model = AnthropicChat("claude-test", api_key="sk-ant-unit", base_url=fake.base_url)
        agent = Agent("a", model=model)
        sent: list[OutboundMessage] = []
        ctx = make_ctx(stream=True, sent=sent)
        try:
            await agent.on_event(ctx, ctx.event)
        finally:
            await model.close()
    (final,) = ctx.outbox
    assert final.action == "stream"
    assert final.final
    assert final.text == "Streamed by Claude, word by word."
    assert all(final.text.startswith(m.text) for m in sent)  # none at all when the answer came at once


async def test_a_platform_that_cannot_stream_gets_the_final_text_as_one_reply() -> None:
    from connectors.platform import Unlimited
    from consumers.ratelimit import RateLimiter
    from consumers.streams import Streams

    class Plain:
        platform = "slack"

        def __init__(self) -> None:
            self.sent: list[OutboundMessage] = []

        async def send(self, message: OutboundMessage) -> dict[str, Any]:
            self.sent.append(message)
            return {"ok": True}

        async def close(self) -> None:
            return None

    store = MemoryStore("unit")
    streams = Streams(store, RateLimiter(store, {"slack": Unlimited(why="unit")}))
    plain = Plain()
    to = ReplyAddress(platform="slack", bot="T", channel="C")
    base = OutboundMessage(id="s1", event_id="e", conversation_key="k", action="stream", to=to, text="Hel", seq=1)
    assert (await streams.push(plain, base))["skipped"]
    await streams.push(plain, base.model_copy(update={"text": "Hello", "seq": 2, "final": True}))
    assert [(m.action, m.text) for m in plain.sent] == [("reply", "Hello")]


def test_only_the_newest_snapshot_of_a_stream_in_a_batch_is_kept() -> None:
    from consumers.streams import superseded
    from gateway.core.bus.base import Delivery

    async def settle(_: str) -> None:
        return None

    to = ReplyAddress(platform="slack", bot="T", channel="C")

    def d(sid: str, seq: int, final: bool = False, action: str = "stream") -> Delivery:
        m = OutboundMessage(
            id=sid, event_id="e", conversation_key="k", action=action, to=to, text="x", seq=seq, final=final
        )  # type: ignore[arg-type]
        return Delivery(b"", {}, "0", "x", sid, 0, settle, prepared=m)

    batch = [d("a", 1), d("b", 1), d("a", 2), d("r", 0, action="reply"), d("a", 3, final=True), d("b", 2)]
    assert superseded(batch) == {0, 1, 2}
