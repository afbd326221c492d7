"""A declarative LLM agent with a tool and memory.

gateway.toml::

    [agents.support]
    path = "examples.support_agent:agent"

    [[routes]]
    platform = "slack"
    agent = "support"

Needs an OpenAI-compatible server: OPENAI_BASE_URL (e.g. http://127.0.0.1:11434/v1 for Ollama),
OPENAI_API_KEY, and GATEWAY_LLM_MODEL (or pass model= below).
"""

from __future__ import annotations

from agents import Agent, TurnContext

agent = Agent(
    name="support",
    instructions=(
        "You are the support assistant of Acme. Be brief. Use order_status for questions about orders, "
        "and remember_preference when the user tells you how they like to be contacted."
    ),
)

_ORDERS = {"A-1042": "shipped on Monday, arriving Thursday", "A-2001": "waiting for payment"}


@agent.tool
async def order_status(order_id: str) -> str:
    """Look up where an order is.

    Args:
        order_id: The order number, like "A-1042".
    """
    status = _ORDERS.get(order_id.strip().upper())
    if status is None:
        raise LookupError(f"no order {order_id}")  # the model gets this as an error message
    return status


@agent.tool
async def remember_preference(ctx: TurnContext, preference: str) -> str:
    """Remember how this user likes to be contacted, for later conversations in this thread.

    Args:
        preference: For example "email only" or "call after 5 pm".
    """
    await ctx.memory.store("contact-preference", preference)
    return "remembered"
