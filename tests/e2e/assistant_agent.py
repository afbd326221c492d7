"""A test agent for Slack's assistant surface: greets a new assistant thread with suggested prompts and a
title; answers a message after ``ASSISTANT_SECONDS`` (default 2) with a status of its own meanwhile."""

from __future__ import annotations

import asyncio
import os

from agents.context import TurnContext
from gateway.core.events import Event, EventKind


class AssistantAgent:
    name = "assistant"

    async def on_event(self, ctx: TurnContext, event: Event) -> None:
        if event.kind == EventKind.SESSION:
            await ctx.suggest_prompts([("Plan", "Plan my week"), ("Sum up", "Sum up this channel")], title="Try")
            await ctx.set_title("New chat")
            return
        await ctx.set_status("is looking it up…", loading_messages=["Reading…", "Thinking…"])
        await asyncio.sleep(float(os.environ.get("ASSISTANT_SECONDS", "2")))
        await ctx.reply(f"found: {event.text}")


agent = AssistantAgent()
