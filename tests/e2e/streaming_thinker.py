"""A test agent that streams its answer: waits ``THINK_SECONDS`` (default 0) before the first words, then
writes "partial answer to …"; a message that starts with "slow" then keeps it writing for a minute (until it is
stopped), any other finishes after ``THINK_SECONDS`` more."""

from __future__ import annotations

import asyncio
import os

from agents.context import TurnContext
from gateway.core.events import Event


class StreamingThinker:
    name = "streamer"

    async def on_event(self, ctx: TurnContext, event: Event) -> None:
        pause = float(os.environ.get("THINK_SECONDS", "0"))
        await asyncio.sleep(pause)
        async with ctx.stream() as s:
            await s.write(f"partial answer to {event.text}")
            await asyncio.sleep(60 if event.text.startswith("slow") else pause)
            await s.write(", and the rest.")


agent = StreamingThinker()
