"""The built-in ``echo`` agent: answers with the text it received. Needs no model."""

from __future__ import annotations

from agents.context import TurnContext
from gateway.core.events import Event, EventKind


class EchoAgent:
    name = "echo"

    async def on_event(self, ctx: TurnContext, event: Event) -> None:
        if event.kind == EventKind.SESSION:  # the user opened the assistant thread: nothing to echo
            return
        texts = [e.text for e in ctx.events if e.text] or ["(no text)"]
        await ctx.reply("echo: " + "\n".join(texts))


echo = EchoAgent()
