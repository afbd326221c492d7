"""A test agent that shows it is working, says it is thinking, then answers; a message that starts with
"slow" keeps it thinking for a minute (until it is stopped; it then tidies up for half a second, so that the
messages sent right after the one that stopped it all arrive while it still runs)."""

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
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:  # stopped: tidy up a moment (messages sent meanwhile wait), go on
                await asyncio.sleep(0.5)
                raise
        await ctx.reply(f"answer: {event.text}")


agent = Thinker()
