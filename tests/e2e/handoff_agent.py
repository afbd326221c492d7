"""A declarative agent with the built-in handoff tool, loaded by the handoff e2e tests through gateway.toml."""

from __future__ import annotations

from agents import Agent

agent = Agent(name="support", instructions="You help customers; hand off when asked for a person.", handoff=True)
