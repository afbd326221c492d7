"""A free-text step's model call: the model fills the step's missing slots through ``fill_slots``.

The system prompt is the agent's instructions, the flow's must / must-not / should, then where the flow
stands (the step, what is collected, what is missing). The one tool offered is ``fill_slots``, whose
parameters are the missing fields' JSON schema from the step's pydantic model, so the model answers with
values the flow then validates like typed ones. When the model answers with text instead (the user asked
something), that text is the reply and the step stays where it is.

On a streaming route (``ctx.streaming``) with a model that can stream, the text is written into a reply
stream as it comes (agents/streaming.py), the same way the ``llm`` agent streams: the stream is opened at
the first text delta only, so an answer that only fills slots costs no message and no reply id.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.agent import AgentError
from agents.context import TurnContext
from agents.flows.slots import json_schema, label
from agents.flows.step import Step
from agents.models import ChatModel, ModelError, ModelTurn
from agents.streaming import ReplyStream

TOOL = "fill_slots"
#: Turns of history the model sees in a flow step (the flow state carries what was collected).
HISTORY = 10


@dataclass
class ModelAnswer:
    slots: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    #: The stream the text was shown in while it came (a streaming route), None when it was not.
    live: ReplyStream | None = None


#: Opens the turn's reply stream for the model's text (called at the first delta, at most once).
OpenStream = Callable[[], Awaitable[ReplyStream]]


def can_stream(ctx: TurnContext, model: ChatModel) -> bool:
    """The route streams and the model can: the same test as the ``llm`` agent's (agents/agent.py)."""
    return ctx.streaming and getattr(model, "stream", None) is not None


def slots_tool(step: Step, missing: Sequence[str]) -> dict[str, Any]:
    """The ``fill_slots`` function tool for ``missing`` fields of ``step``, none of them required."""
    assert step.model is not None
    schema = json_schema(step.model)
    props = {name: _untitled(schema["properties"][name]) for name in missing}
    params: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if "$defs" in schema:
        params["$defs"] = schema["$defs"]
    description = "Record the values the user gave for these fields; leave out any they did not give."
    return {"type": "function", "function": {"name": TOOL, "description": description, "parameters": params}}


def system_prompt(instructions: str, step: Step, data: Mapping[str, Any], missing: Sequence[str]) -> str:
    assert step.model is not None
    wanted = "; ".join(f"{name} ({label(step.model, name)})" for name in missing)
    where = (
        f"You are collecting information step by step. Current step: {step.id}. "
        f"The question asked: {step.text(data)!r}. Collected so far: {json.dumps(data, default=str)}. "
        f"Still needed: {wanted}. When the user's message gives any of these, call {TOOL} with them. "
        "Otherwise answer briefly and ask for what is still needed."
    )
    return "\n\n".join(p for p in (instructions.strip(), where) if p)


async def fill(
    ctx: TurnContext,
    model: ChatModel,
    instructions: str,
    step: Step,
    data: Mapping[str, Any],
    missing: list[str],
    text: str,
    *,
    open_stream: OpenStream | None = None,
) -> ModelAnswer:
    """Ask the model for ``missing`` fields of ``step`` in the user's ``text`` (the turn's usage and tool
    call are added to ``ctx``); the values are not validated yet. ``open_stream``: stream the model's text
    into the stream it opens (see :func:`can_stream`)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt(instructions, step, data, missing)}]
    messages += [{"role": t.role, "content": t.text} for t in await ctx.history(HISTORY)]
    messages.append({"role": "user", "content": text})
    tools = [slots_tool(step, missing)]
    live: list[ReplyStream] = []
    try:
        if open_stream is None:
            turn = await model.complete(messages, tools)
        else:
            turn = await _streamed(model, messages, tools, open_stream, live)
    except ModelError as exc:
        raise AgentError(str(exc)) from exc  # the dispatcher retries the turn (a stream continues its message)
    if turn.usage is not None:
        ctx.usage += turn.usage
    answer = ModelAnswer(text=turn.content if turn.content and turn.content.strip() else None)
    answer.live = live[0] if live else None
    for call in turn.tool_calls:
        ok = call.name == TOOL
        args = _arguments(call.arguments) if ok else None
        if args is not None:
            answer.slots.update({k: v for k, v in args.items() if k in missing})
        ctx.tool_calls.append({"name": call.name, "arguments": call.arguments, "result": "", "ok": args is not None})
    return answer


async def _streamed(
    model: ChatModel,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    open_stream: OpenStream,
    live: list[ReplyStream],
) -> ModelTurn:
    """One streamed model call: its text deltas written into a stream opened at the first one (kept in
    ``live``); the call's :class:`ModelTurn` (whole content, tool calls, usage)."""
    async for item in model.stream(messages, tools):  # type: ignore[attr-defined]
        if isinstance(item, ModelTurn):
            return item
        if live:
            await live[0].write(item)
        elif item.strip():  # opened at the first visible text: a blank stream would still take an id
            live.append(await open_stream())
            await live[0].write(item)
    raise ModelError("the model's stream ended without a final turn")


def _arguments(raw: str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _untitled(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prop.items() if k != "title"}
