"""A declarative flow: steps that collect validated data, branches on it, and a model only where needed.

    flow = Flow("ticket", schema=Ticket, steps=[...], instructions=Instructions(must=[...]))

A flow is an agent (``[agents.ticket] path = "examples.ticket_flow:flow"``), or the behaviour of one:
``Agent("support", instructions=..., flow=flow)``. One turn:

1. load the conversation's flow state (agents/flows/state.py); a turn it already applied sends the same
   replies again and stops there;
2. the current step takes what it can from the user's text (agents/flows/slots.py), and, when it allows
   free text and something is still missing, asks the model to fill the rest (agents/flows/model_step.py);
3. refused values: the validation message and the question again; still missing: the question; all there:
   the branch or next step, which asks its own question (steps without fields just say their prompt);
4. past the last step, ``on_done(ctx, data)`` (the schema's instance) may answer; the next message starts over;
5. the new state is saved (a version the turn claims), then the turn's replies go out.

Steps that need no model make no model call: deterministic steps and branches are plain Python.

On a streaming route (``stream = true`` / ``GATEWAY_STREAM``) the model's text of a free-text step shows as
it is written, through ``ctx.stream()`` like the ``llm`` agent's answers (agents/flows/model_step.py): the
replies before it join the turn's outbox first, so the ids and the order are those of a route that does
not stream. The state keeps which replies were streamed, and a repeated turn sends those as a stream again
(the sender continues the same platform message). Text the user saw stays a reply even when the same model
answer also filled slots (the flow then asks its next question after it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from agents.flows import model_step, slots, state
from agents.flows.instructions import Instructions
from agents.flows.state import FlowState
from agents.flows.step import END, FlowError, Step
from agents.models import ChatModel
from agents.streaming import ReplyStream
from gateway.core.events import Event
from gateway.core.sessions import scoped

if TYPE_CHECKING:
    from agents.agent import Agent
    from agents.context import TurnContext

OnDone = Callable[["TurnContext", Any], Awaitable[str | None]]


@dataclass
class _Turn:
    """What one turn of the flow said and whether it used the user's text already."""

    replies: list[str] = field(default_factory=list)
    consumed: bool = False
    #: How many of ``replies`` are in the turn's outbox already (the ones before a streamed reply).
    sent: int = 0
    #: Positions in ``replies`` that were streamed.
    streamed: list[int] = field(default_factory=list)


class Flow:
    def __init__(
        self,
        name: str,
        steps: Sequence[Step],
        *,
        schema: type[BaseModel] | None = None,
        instructions: Instructions | str | None = None,
        model: str | ChatModel | None = None,
        on_done: OnDone | None = None,
    ) -> None:
        from agents.agent import Agent

        if not steps:
            raise FlowError(f"flow {name!r} has no steps")
        self.name = name
        self.schema = schema
        self.instructions = Instructions.of(instructions)
        self.order = [s.id for s in steps]
        self.steps = {s.id: s.resolved(schema) for s in steps}
        self.on_done = on_done
        self._check(steps)
        #: The model plumbing (settings, providers, the route's key) when the flow is the agent itself.
        self.agent = Agent(name, instructions="", model=model, connector_tools=False, flow=self)
        self._model_name = self.agent._model_name

    def _check(self, steps: Sequence[Step]) -> None:
        if len(self.steps) != len(steps) or END in self.steps:
            raise FlowError(f"flow {self.name!r}: step ids must be unique and not {END!r}")
        for s in steps:
            if s.next is not None and s.next != END and s.next not in self.steps:
                raise FlowError(f"flow {self.name!r}: step {s.id!r} goes to {s.next!r}, which is not a step")

    @property
    def needs_model(self) -> bool:
        return any(s.free_text for s in self.steps.values())

    # ------------------------------------------------------------------ the agent contract
    def configure(self, *, base_url: str | None, api_key: str | None, default_model: str | None) -> None:
        self.agent.configure(base_url=base_url, api_key=api_key, default_model=default_model)

    def use_model(self, model: ChatModel) -> None:
        self.agent.use_model(model)

    async def on_event(self, ctx: TurnContext, event: Event) -> None:
        await self.run(ctx, self.agent)

    # ------------------------------------------------------------------ a turn
    async def run(self, ctx: TurnContext, agent: Agent) -> None:
        """One turn of this flow for ``agent`` (whose instructions and model serve the free-text steps)."""
        key = scoped(ctx.conversation_key, ctx.session_name)  # a flow per named session (gateway/core/sessions.py)
        saved = await state.load(ctx.store, ctx.agent, key)
        ids = [e.id for e in ctx.events]
        fresh, again = saved.pending(ids)
        for i, text in enumerate(again):
            if i in saved.streamed and ctx.streaming:
                await ctx.stream().finish(text)  # the same id: the sender continues the message it had
            else:
                await ctx.reply(text)
        if not fresh:
            ctx.log.info("flow_turn_repeated", flow=self.name, step=saved.step, version=saved.v)
            return
        text = "\n".join(e.text for e in ctx.events if e.id in fresh and e.text.strip())
        turn = _Turn()
        after = await self._advance(ctx, agent, saved, text, turn)
        streamed = [i for i in saved.streamed if i < len(again)] + [len(again) + i for i in turn.streamed]
        await state.save(
            ctx.store, ctx.agent, key, after.after(ids, again + turn.replies, streamed), ttl=ctx.memory_ttl
        )
        for reply in turn.replies[turn.sent :]:
            await ctx.reply(reply)
        ctx.log.info("flow_turn", flow=self.name, step=after.step, done=after.done, version=after.v + 1)

    async def _advance(self, ctx: TurnContext, agent: Agent, saved: FlowState, text: str, turn: _Turn) -> FlowState:
        s = replace(saved, data=dict(saved.data))
        if s.step is None or s.done:
            s = FlowState(v=saved.v, step=self.order[0], events=saved.events)
        for _ in range(len(self.steps) + 1):
            step = self.steps[str(s.step)]
            if step.model is not None and not await self._collect(ctx, agent, step, s, text, turn):
                return s
            if step.model is None and step.text(s.data).strip():
                turn.replies.append(step.text(s.data))
            s = self._go(step, s)
            if s.done:
                await self._finish(ctx, s, turn)
                return s
        raise FlowError(f"flow {self.name!r} went through every step in one turn without a question: a loop?")

    async def _collect(self, ctx: TurnContext, agent: Agent, step: Step, s: FlowState, text: str, turn: _Turn) -> bool:
        """Fill ``step``'s fields from the text (once per turn); False when the step asked something."""
        assert step.model is not None
        missing = [f for f in step.fields if f not in s.data]
        if missing and not turn.consumed:
            turn.consumed = True
            errors, said = await self._take(ctx, agent, step, s, text, missing, turn)
            if errors:
                s.attempts += 1
                return self._ask(step, s, turn, " ".join([*errors.values(), step.text(s.data)]))
            if said is not None:
                return self._ask(step, s, turn, said) if said else self._asked(s)
        still = [f for f in step.fields if f not in s.data]
        if not still:
            return True
        if s.asked and len(still) < len(step.fields):
            return self._ask(step, s, turn, "Still needed: " + ", ".join(slots.label(step.model, f) for f in still))
        question = step.text(s.data) or "Please tell me your " + ", ".join(slots.label(step.model, f) for f in still)
        return self._ask(step, s, turn, question)

    async def _take(
        self, ctx: TurnContext, agent: Agent, step: Step, s: FlowState, text: str, missing: list[str], turn: _Turn
    ) -> tuple[dict[str, str], str | None]:
        """Values from the text, then from the model when the step allows free text; the refusals and
        what the model said instead of filling slots ("" when it was streamed: in ``turn`` already)."""
        assert step.model is not None
        found = slots.extract(step.model, missing, text, whole_text=s.asked and not step.free_text)
        filled = slots.validate(step.model, s.data, found)
        s.data.update(filled.values)
        still = [f for f in missing if f not in s.data]
        said = None
        if still and step.free_text and text.strip():
            prompt = "\n\n".join(p for p in (agent.instructions, self.instructions.render()) if p.strip())
            model = agent.model_for(ctx)

            async def open_stream() -> ReplyStream:
                for reply in turn.replies[turn.sent :]:  # what came before goes first, with the ids it has
                    await ctx.reply(reply)
                turn.sent = len(turn.replies)
                return ctx.stream()

            opener = open_stream if model_step.can_stream(ctx, model) else None
            answer = await model_step.fill(ctx, model, prompt, step, s.data, still, text, open_stream=opener)
            more = slots.validate(step.model, s.data, answer.slots)
            s.data.update(more.values)
            filled.errors = {k: v for k, v in filled.errors.items() if k not in more.values} | more.errors
            said = answer.text if not answer.slots else None
            if answer.live is not None and answer.live.text.strip():  # the user saw it: it is a reply
                if said is not None:
                    await answer.live.finish(said)  # the model's whole content, as the stream showed it
                else:
                    await answer.live.finish()
                turn.streamed.append(len(turn.replies))
                turn.replies.append(answer.live.text)
                turn.sent = len(turn.replies)
                said = "" if said is not None else None  # said already: the step asked
        return filled.errors, said

    @staticmethod
    def _ask(step: Step, s: FlowState, turn: _Turn, text: str) -> bool:
        turn.replies.append(text)
        s.asked = True
        return False

    @staticmethod
    def _asked(s: FlowState) -> bool:
        """The step's answer went out already (streamed): the step waits for the user's next message."""
        s.asked = True
        return False

    def _go(self, step: Step, s: FlowState) -> FlowState:
        """The state at the step after ``step``: its branch on the data, its ``next``, or the following one."""
        if step.branch is not None:
            target: str | None = step.branch(s.data)
        elif step.next is not None:
            target = step.next
        else:
            i = self.order.index(step.id) + 1
            target = self.order[i] if i < len(self.order) else END
        if target == END:
            return replace(s, step=None, asked=False, attempts=0, done=True)
        if target not in self.steps:
            raise FlowError(f"flow {self.name!r}: step {step.id!r} went to {target!r}, which is not a step")
        return replace(s, step=target, asked=False, attempts=0)

    async def _finish(self, ctx: TurnContext, s: FlowState, turn: _Turn) -> None:
        if self.on_done is None:
            return
        said = await self.on_done(ctx, self.result(s.data))
        if said:
            turn.replies.append(said)

    def result(self, data: Mapping[str, Any]) -> Any:
        """The collected data as the flow's schema (a dict without one)."""
        if self.schema is None:
            return dict(data)
        try:
            return self.schema.model_validate(dict(data))
        except ValidationError as exc:
            raise FlowError(f"flow {self.name!r} finished without valid {self.schema.__name__}: {exc}") from exc
