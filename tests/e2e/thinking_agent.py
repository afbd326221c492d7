"""A test agent that shows it is working, says it is thinking, then answers; a message that starts with
"slow" keeps it thinking for a minute (until it is stopped)."""

from __future__ import annotations

import asyncio

from agents.context import TurnContext
from gateway.core.events import Event


class Thinker:
    name = "thinker"

    async def on_event(self, ctx: TurnContext, event: Event) -> None:
        await ctx.typing()  # at once: the test's sign that the turn runs
        await ctx.reply(f"thinking about {event.text}")
        if event.text.startswith("slow"):
            await asyncio.sleep(60)
        await ctx.reply(f"answer: {event.text}")


agent = Thinker()
