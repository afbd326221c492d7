"""A free-text step's model call: the model fills the step's missing slots through ``fill_slots``.

The system prompt is the agent's instructions, the flow's must / must-not / should, then where the flow
stands (the step, what is collected, what is missing). The one tool offered is ``fill_slots``, whose
parameters are the missing fields' JSON schema from the step's pydantic model, so the model answers with
values the flow then validates like typed ones. When the model answers with text instead (the user asked
something), that text is the reply and the step stays where it is.
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
from agents.models import ChatModel, ModelError

TOOL = "fill_slots"
#: Turns of history the model sees in a flow step (the flow state carries what was collected).
HISTORY = 10


@dataclass
class ModelAnswer:
    slots: dict[str, Any] = field(default_factory=dict)
    text: str | None = None


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
    try:
        turn = await model.complete(messages, [slots_tool(step, missing)])
    except ModelError as exc:
        raise AgentError(str(exc)) from exc  # the dispatcher retries the turn
    if turn.usage is not None:
        ctx.usage += turn.usage
    answer = ModelAnswer(text=turn.content if turn.content and turn.content.strip() else None)
    for call in turn.tool_calls:
        ok = call.name == TOOL
        args = _arguments(call.arguments) if ok else None
        if args is not None:
            answer.slots.update({k: v for k, v in args.items() if k in missing})
        ctx.tool_calls.append({"name": call.name, "arguments": call.arguments, "result": "", "ok": args is not None})
    return answer


def _arguments(raw: str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _untitled(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prop.items() if k != "title"}
