"""Declarative agents: instructions, a model and tools; the gateway runs the loop.

    from agents import Agent, TurnContext

    support = Agent(name="support", instructions="You help customers of Acme.", model="gpt-4o-mini")

    @support.tool
    async def order_status(order_id: str) -> str:
        '''Look up where an order is.

        Args:
            order_id: The order number, like "A-1042".
        '''
        return "shipped"

A turn: system instructions, the windowed history, the new message(s), then
model calls and tool calls until the model answers with text (at most
``max_rounds`` model calls); the answer is sent with ``reply``. On a streaming
route (``ctx.streaming``) a model that can stream (``stream()``: OpenAI-compatible
servers, Anthropic) writes its answer into ``ctx.stream()`` as it comes; text of
a round that ends in tool calls stays in the stream, a blank line before the next. The connector
tools (``reply``, ``react``, ``typing``) are offered to the model as tools too, and with ``handoff=True`` the
built-in ``handoff(reason)`` tool, which hands the conversation to a person (gateway/core/handoff.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agents.context import TurnContext
from agents.models import ChatModel, ModelError, ModelTurn, OpenAIChat, tool_result
from agents.streaming import ReplyStream
from agents.tools import Tool, make_tool
from gateway.core.events import Event, EventKind

if TYPE_CHECKING:
    from agents.flows import Flow


class AgentError(Exception):
    """The agent could not finish its turn."""


async def _reply(ctx: TurnContext, text: str) -> str:
    """Send a message to the user in this conversation now, before your final answer.

    Args:
        text: The message to send.
    """
    await ctx.reply(text)
    return "sent"


async def _react(ctx: TurnContext, emoji: str) -> str:
    """React to the user's message with an emoji (Slack: a name like "eyes"; Telegram: an emoji like "👀").

    Args:
        emoji: The reaction.
    """
    await ctx.react(emoji)
    return "reacted"


async def _typing(ctx: TurnContext) -> str:
    """Show the user that you are working on an answer."""
    await ctx.typing()
    return "ok"


async def _handoff(ctx: TurnContext, reason: str) -> str:
    """Hand this conversation to a human colleague when you cannot or must not help further (the user asks
    for a person, a complaint, a refund you cannot grant). A person is notified and answers from now on.

    Args:
        reason: In one sentence, why a person is needed.
    """
    ctx.handoff(reason)
    return "handed off: a person takes over after this message. Tell the user briefly that a person will answer."


#: The built-in ``handoff(reason)`` tool (``Agent(..., handoff=True)``, or add it to any agent's tools).
HANDOFF_TOOL = make_tool(_handoff, name="handoff")
CONNECTOR_TOOLS = [make_tool(_reply, name="reply"), make_tool(_react, name="react"), make_tool(_typing, name="typing")]


class Agent:
    def __init__(
        self,
        name: str,
        instructions: str = "You are a helpful assistant.",
        model: str | ChatModel | None = None,
        tools: list[Tool | Callable[..., Any]] | None = None,
        *,
        max_rounds: int = 8,
        connector_tools: bool = True,
        flow: Flow | None = None,
        handoff: bool = False,
    ) -> None:
        self.name = name
        #: A declarative flow that runs this agent's turns (agents/flows/); the model serves its free text.
        self.flow = flow
        self.instructions = instructions
        self.max_rounds = max_rounds
        self.tools: dict[str, Tool] = {}
        self._model_name = model if isinstance(model, str) else None
        self._model: ChatModel | None = None if isinstance(model, str) or model is None else model
        builtin = (CONNECTOR_TOOLS if connector_tools else []) + ([HANDOFF_TOOL] if handoff else [])
        for t in builtin + list(tools or []):
            self.add_tool(t)

    def add_tool(self, t: Tool | Callable[..., Any]) -> Tool:
        built = t if isinstance(t, Tool) else make_tool(t)
        self.tools[built.name] = built
        return built

    def tool(self, fn: Callable[..., Any] | None = None, *, timeout: float = 30.0) -> Any:
        """Decorator: ``@agent.tool`` or ``@agent.tool(timeout=5)``. Returns the function unchanged."""

        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            self.add_tool(make_tool(f, timeout=timeout))
            return f

        return register(fn) if fn is not None else register

    def configure(self, *, base_url: str | None, api_key: str | None, default_model: str | None) -> None:
        """Called by the gateway at load time: the model client from settings, unless one was given."""
        if self._model is None and (self.flow is None or self.flow.needs_model):
            name = self._model_name or default_model
            if name is None:
                raise AgentError(f"agent {self.name!r} has no model: pass model=... or set GATEWAY_LLM_MODEL")
            self._model = OpenAIChat(name, base_url=base_url, api_key=api_key)

    async def close(self) -> None:
        """Close the model client's connections (the consumer calls it when it stops)."""
        close = getattr(self._model, "close", None)
        if close is not None:
            await close()

    def use_model(self, model: ChatModel) -> None:
        """Talk to ``model`` from now on (``gateway.toml``'s provider settings, agents/providers.py)."""
        self._model = model

    def model_for(self, ctx: TurnContext) -> ChatModel:
        """The model of this turn: with the route's own key when it names one and the model can take it."""
        model = self.model
        for_key = getattr(model, "for_key", None)
        if ctx.api_key_env and for_key is not None:
            chosen: ChatModel = for_key(ctx.api_key_env)
            return chosen
        return model

    @property
    def model(self) -> ChatModel:
        if self._model is None:
            raise AgentError(f"agent {self.name!r} has no model client (not loaded through the gateway?)")
        return self._model

    async def messages_for(self, ctx: TurnContext) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = [{"role": "system", "content": self.instructions}]
        for turn in await ctx.history():
            messages.append({"role": turn.role, "content": turn.text})
        for event in ctx.events:
            messages.append({"role": "user", "content": event.text})
        return messages

    async def on_event(self, ctx: TurnContext, event: Event) -> None:
        if event.kind == EventKind.SESSION:  # no text to answer; a subclass may greet or suggest prompts
            return
        if self.flow is not None:
            await self.flow.run(ctx, self)
            return
        messages = await self.messages_for(ctx)
        schemas = [t.schema for t in self.tools.values()]
        model = self.model_for(ctx)
        live = ctx.stream() if ctx.streaming and getattr(model, "stream", None) is not None else None
        for _ in range(self.max_rounds):
            try:
                turn = await (
                    self._streamed(model, messages, schemas, live) if live else model.complete(messages, schemas)
                )
            except ModelError as exc:
                raise AgentError(str(exc)) from exc
            if turn.usage is not None:
                ctx.usage += turn.usage
            if not turn.tool_calls:
                if live is not None and live.text.strip():
                    await live.finish()
                elif turn.content and turn.content.strip():
                    await ctx.reply(turn.content)
                elif not ctx.replies:
                    raise AgentError("the model returned an empty answer")
                return
            messages.append(turn.as_message())
            for call in turn.tool_calls:
                t = self.tools.get(call.name)
                result = await t.invoke(call.arguments, ctx) if t else f"error: there is no tool named {call.name!r}"
                ok = not result.startswith("error:")
                ctx.log.info("tool_called", tool=call.name, ok=ok)
                ctx.tool_calls.append(
                    {"name": call.name, "arguments": call.arguments, "result": result[:500], "ok": ok}
                )
                messages.append(tool_result(call, result))
        raise AgentError(f"no final answer after {self.max_rounds} model calls")

    @staticmethod
    async def _streamed(
        model: ChatModel, messages: list[dict[str, Any]], schemas: list[dict[str, Any]], live: ReplyStream
    ) -> ModelTurn:
        """One model call, its text written into ``live`` as it comes; the call's :class:`ModelTurn`."""
        gap = "\n\n" if live.text.strip() else ""
        async for item in model.stream(messages, schemas):  # type: ignore[attr-defined]
            if isinstance(item, ModelTurn):
                return item
            if item:
                await live.write(gap + item)
                gap = ""
        raise ModelError("the model's stream ended without a final turn")
