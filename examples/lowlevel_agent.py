"""A low-level agent: just the lifecycle hooks, so any framework can sit behind them.

One instance per warm conversation (a class is instantiated per conversation key).
"""

from __future__ import annotations

from agents import SessionContext, TurnContext
from gateway.core.events import Event


class CountingAgent:
    """Counts the messages of a conversation; the count survives restarts because it lives in memory (Redis)."""

    async def on_session_enter(self, ctx: SessionContext) -> None:
        doc = await ctx.memory.retrieve("count")
        ctx.state["count"] = int(doc["content"]) if doc else 0

    async def on_event(self, ctx: TurnContext, event: Event) -> None:
        ctx.state["count"] += 1
        await ctx.memory.store("count", str(ctx.state["count"]))
        await ctx.reply(f"message #{ctx.state['count']} in this conversation: {event.text}")

    async def on_session_leave(self, ctx: SessionContext) -> None:
        ctx.state.clear()


agent = CountingAgent
