"""The built-in ``llm`` agent, configured from the environment.

``GATEWAY_LLM_MODEL`` enables it; ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` point
it at any OpenAI-compatible server; ``GATEWAY_LLM_INSTRUCTIONS`` is its system prompt.
"""

from __future__ import annotations

from agents.agent import Agent
from gateway.core.settings import Settings

DEFAULT_INSTRUCTIONS = (
    "You are a helpful assistant in a chat. Answer briefly and in plain text that reads well in Slack or Telegram."
)


def build_llm_agent(settings: Settings) -> Agent:
    agent = Agent(name="llm", instructions=settings.llm_instructions or DEFAULT_INSTRUCTIONS, model=settings.llm_model)
    agent.configure(
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
        default_model=settings.llm_model,
    )
    return agent
