"""A low-level agent: just the lifecycle hooks, so any framework can sit behind them.

One instance per warm conversation (a class is instantiated per conversation key). The hooks' order and
what each may do: docs/agents.md.
"""

from __future__ import annotations

from agents import SessionContext, TurnContext
from gateway.core.events import Event


class CountingAgent:
    """Counts the messages of a conversation. ``ctx.state`` lives in Redis, so the count survives restarts and
    moves to another consumer; ``ctx.state.public`` is what the app API's ``/state`` route shows the client."""

    async def on_session_enter(self, ctx: SessionContext) -> None:
        self.warm_turns = 0  # this instance only: gone when the conversation moves
        ctx.state.setdefault("count", 0)  # saved with the first turn

    async def on_event(self, ctx: TurnContext, event: Event) -> None:
        self.warm_turns += 1
        ctx.state["count"] += 1
        ctx.state.public["messages"] = ctx.state["count"]
        await ctx.reply(f"message #{ctx.state['count']} in this conversation: {event.text}")

    async def on_session_leave(self, ctx: SessionContext) -> None:
        # Flush what the instance cached (ctx.memory is reachable here); nothing can be sent any more.
        self.warm_turns = 0


agent = CountingAgent
