"""Schema generation from signatures, argument validation, and the agent loop with an in-memory model."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from agents import Agent, AgentError, ModelTurn, ToolCall, TurnContext, make_tool
from agents.context import SessionContext
from gateway.core.events import Event, EventKind, OutboundMessage, ReplyAddress
from gateway.core.store.memory import MemoryStore


class Address(BaseModel):
    city: str
    zip: str | None = None


async def ship(
    ctx: TurnContext,
    order_id: str,
    speed: Literal["slow", "fast"] = "slow",
    to: Address | None = None,
    gift: bool = False,
) -> dict[str, Any]:
    """Ship an order.

    Longer explanation that is not part of the summary.

    Args:
        order_id: The order, like "A-1".
        speed: How fast; "fast" costs
            more.
        to: Where to.
        gift: Wrap it.
    """
    return {"order_id": order_id, "speed": speed, "to": to.city if to else None, "ctx": ctx is not None}


def test_schema_from_type_hints_and_docstring() -> None:
    tool = make_tool(ship)
    fn = tool.schema["function"]
    assert fn["name"] == "ship"
    assert fn["description"] == "Ship an order."
    params = fn["parameters"]
    assert params["required"] == ["order_id"]
    assert set(params["properties"]) == {"order_id", "speed", "to", "gift"}  # ctx is hidden from the model
    assert params["properties"]["speed"]["enum"] == ["slow", "fast"]
    assert params["properties"]["speed"]["description"] == 'How fast; "fast" costs more.'
    assert params["properties"]["gift"] == {"default": False, "description": "Wrap it.", "type": "boolean"}
    assert params["additionalProperties"] is False
    assert "Address" in str(params)


def test_sync_function_without_docstring() -> None:
    def double(x: int) -> int:
        return 2 * x

    tool = make_tool(double)
    assert tool.schema["function"]["description"] == "double"
    assert asyncio.run(tool.invoke('{"x": 21}', None)) == "42"


async def test_invalid_arguments_and_exceptions_become_error_messages() -> None:
    tool = make_tool(ship)
    assert (await tool.invoke('{"speed": "fast"}', None)).startswith("error: invalid arguments for ship")
    assert (await tool.invoke('{"order_id": "A", "speed": "warp"}', None)).startswith("error: invalid arguments")
    assert (await tool.invoke("not json", None)).startswith("error: invalid arguments")

    async def boom() -> None:
        raise ValueError("nope")

    assert await make_tool(boom).invoke("{}", None) == "error: boom failed: ValueError: nope"


async def test_tool_timeout_is_reported_to_the_model() -> None:
    async def slow() -> str:
        await asyncio.Event().wait()
        return "never"

    assert await make_tool(slow, timeout=0.01).invoke("{}", None) == "error: slow timed out after 0.01 s"


class ScriptedModel:
    def __init__(self, *turns: ModelTurn) -> None:
        self.turns = list(turns)
        self.seen: list[list[dict[str, Any]]] = []

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelTurn:
        self.seen.append(list(messages))
        return self.turns.pop(0)


def make_ctx(text: str = "hi") -> TurnContext:
    event = Event(
        platform="slack",
        delivery_id="Ev1",
        kind=EventKind.MESSAGE,
        conversation_key="slack:T:C:1",
        text=text,
        reply_to=ReplyAddress(platform="slack", bot="T", channel="C", thread="1"),
        message_ref="slack:T:C:1",
    )

    async def send_now(message: OutboundMessage) -> None:
        return None

    session = SessionContext("a", "slack:T:C:1", MemoryStore("unit"))
    return TurnContext(session, [event], history_window=50, send_now=send_now)


async def test_agent_runs_tools_until_an_answer_and_replies() -> None:
    model = ScriptedModel(ModelTurn(None, [ToolCall("c1", "double", '{"x": 4}')]), ModelTurn("it is 8"))
    agent = Agent("a", model=model)

    @agent.tool
    def double(x: int) -> int:
        """Double it."""
        return 2 * x

    ctx = make_ctx("double 4")
    await agent.on_event(ctx, ctx.event)
    assert ctx.replies == ["it is 8"]
    assert model.seen[1][-1] == {"role": "tool", "tool_call_id": "c1", "content": "8"}
    assert [m.id for m in ctx.outbox] == ["slack:T:C:1:a:1"]  # stable id: a redelivered turn posts nothing twice


async def test_agent_gives_up_after_max_rounds() -> None:
    loop_turn = ModelTurn(None, [ToolCall("c", "typing", "{}")])
    agent = Agent("a", model=ScriptedModel(*[loop_turn] * 3), max_rounds=3)
    ctx = make_ctx()
    with pytest.raises(AgentError, match="no final answer after 3"):
        await agent.on_event(ctx, ctx.event)
    assert ctx.replies == []


async def test_unknown_tool_is_reported_to_the_model() -> None:
    model = ScriptedModel(ModelTurn(None, [ToolCall("c", "nope", "{}")]), ModelTurn("ok"))
    agent = Agent("a", model=model)
    ctx = make_ctx()
    await agent.on_event(ctx, ctx.event)
    assert model.seen[1][-1]["content"] == "error: there is no tool named 'nope'"
