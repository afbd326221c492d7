"""A test agent that thinks for ``SLOW_AGENT_SECONDS`` (default 2.5) before it answers."""

from __future__ import annotations

import asyncio
import os

from agents.context import TurnContext
from gateway.core.events import Event


class SlowAgent:
    name = "slow"

    async def on_event(self, ctx: TurnContext, event: Event) -> None:
        await asyncio.sleep(float(os.environ.get("SLOW_AGENT_SECONDS", "2.5")))
        await ctx.reply(f"slow: {event.text}")


agent = SlowAgent()
