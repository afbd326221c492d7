"""A low-level agent that counts messages per named session, keeps a secret in the private part of its
state and shows the count in the public part; "/ops" and "/default" switch sessions (the e2e tests)."""

from __future__ import annotations

from agents import TurnContext
from gateway.core.events import Event


class SessionAgent:
    async def on_event(self, ctx: TurnContext, event: Event) -> None:
        if event.text.startswith("/"):
            ctx.switch_session(event.text[1:])
            await ctx.reply(f"switching to {event.text[1:]}")
            return
        earlier = len(await ctx.history())
        ctx.state["count"] = int(ctx.state.get("count", 0)) + 1
        ctx.state["secret"] = f"private-{ctx.session_name}"
        ctx.state.public.update(count=ctx.state["count"], session=ctx.session_name)
        await ctx.reply(f"{ctx.session_name} #{ctx.state['count']} ({earlier} earlier)")


agent = SessionAgent()
