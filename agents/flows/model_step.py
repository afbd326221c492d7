"""A free-text step's model call: the model fills the step's missing slots through ``fill_slots``.

The system prompt is the agent's instructions, the flow's must / must-not / should, then where the flow
stands (the step, what is collected, what is missing). The one tool offered is ``fill_slots``, whose
parameters are the missing fields' JSON schema from the step's pydantic model, so the model answers with
values the flow then validates like typed ones. When the model answers with text instead (the user asked
something), that text is the reply and the step stays where it is.

On a streaming route (``ctx.streaming``, decided as for any agent: agents/agent.py) with a model that can
stream, the call streams and its text goes into ``ctx.stream()`` as it comes (agents/streaming.py): the
answer grows in the chat and ends as one message. The stream is handed back open (:attr:`ModelAnswer.stream`);
the flow finishes it as one of the turn's replies, in order with the others, once it knows the step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
    #: The model's text as it was streamed (``text`` is all of it), still open: the flow finishes it.
    stream: ReplyStream | None = None


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
) -> ModelAnswer:
    """Ask the model for ``missing`` fields of ``step`` in the user's ``text`` (the turn's usage and tool
    call are added to ``ctx``); the values are not validated yet."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt(instructions, step, data, missing)}]
    messages += [{"role": t.role, "content": t.text} for t in await ctx.history(HISTORY)]
    messages.append({"role": "user", "content": text})
    tools = [slots_tool(step, missing)]
    streams = ctx.streaming and getattr(model, "stream", None) is not None
    live: ReplyStream | None = None
    try:
        if streams:
            turn, live = await _streamed(ctx, model, messages, tools)
        else:
            turn = await model.complete(messages, tools)
    except ModelError as exc:
        raise AgentError(str(exc)) from exc  # the dispatcher retries the turn (a stream continues: same id)
    if turn.usage is not None:
        ctx.usage += turn.usage
    answer = ModelAnswer(text=turn.content if turn.content and turn.content.strip() else None)
    if live is not None:
        answer.stream, answer.text = live, live.text
    for call in turn.tool_calls:
        ok = call.name == TOOL
        args = _arguments(call.arguments) if ok else None
        if args is not None:
            answer.slots.update({k: v for k, v in args.items() if k in missing})
        ctx.tool_calls.append({"name": call.name, "arguments": call.arguments, "result": "", "ok": args is not None})
    return answer


async def _streamed(
    ctx: TurnContext, model: ChatModel, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> tuple[ModelTurn, ReplyStream | None]:
    """One streamed model call, its text written into a ``ctx.stream()`` as it comes; the call's
    :class:`ModelTurn` and the stream. The stream opens at the first text, so a call that only fills
    slots takes no message id and shows nothing. A failure stops the snapshots and leaves the stream
    open: the retried turn continues the same message (same id)."""
    live: ReplyStream | None = None
    try:
        async for item in model.stream(messages, tools):  # type: ignore[attr-defined]
            if isinstance(item, ModelTurn):
                return item, live
            if item.strip() or live is not None:
                live = live or ctx.stream()
                await live.write(item)
    except BaseException:
        if live is not None:
            await live.abandon()
        raise
    if live is not None:
        await live.abandon()
    raise ModelError("the model's stream ended without a final turn")


def _arguments(raw: str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _untitled(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prop.items() if k != "title"}
