"""A declarative agent with two tools, loaded by the e2e tests through gateway.toml."""

from __future__ import annotations

from agents import Agent

agent = Agent(name="tools", instructions="You are a calculator.", model="gpt-4o-mini")


@agent.tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@agent.tool
async def explode(reason: str) -> str:
    """Always fails.

    Args:
        reason: Why.
    """
    raise RuntimeError(f"kaboom: {reason}")
