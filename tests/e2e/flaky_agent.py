"""A test agent that fails while the file named by ``FLAKY_AGENT_FILE`` says ``fail``.

Configured in a test's ``gateway.toml``::

    [agents.flaky]
    path = "tests.e2e.flaky_agent:agent"
"""

from __future__ import annotations

import os
from pathlib import Path

from agents.context import TurnContext
from gateway.core.events import Event


class FlakyAgent:
    name = "flaky"

    async def on_event(self, ctx: TurnContext, event: Event) -> None:
        switch = Path(os.environ["FLAKY_AGENT_FILE"])
        if switch.read_text().strip() == "fail":
            raise RuntimeError(f"flaky agent told to fail by {switch}")
        await ctx.reply(f"flaky: {event.text}")


agent = FlakyAgent()
