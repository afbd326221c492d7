"""Example agents to copy. Load one with gateway.toml: ``[agents.NAME] path = "examples.MODULE:agent"``."""
