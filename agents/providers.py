"""Which model an agent talks to: a provider, a model name, the key's variable, a fallback list.

``gateway.toml``::

    [agents.support]
    path = "examples.support_agent:agent"
    provider = "anthropic"                  # openai (default) | anthropic
    model = "claude-sonnet-4-5"
    api_key_env = "ACME_ANTHROPIC_KEY"      # the variable holding the key; default ANTHROPIC_API_KEY / OPENAI_API_KEY
    fallback = ["openai:gpt-4o-mini"]       # tried in order when the one before fails with 5xx, 529 or a timeout

A route may name its own key (``api_key_env`` in ``[[routes]]``): bring your own key per customer. It replaces
the key of every model of the agent's primary provider for the turns of that route. Keys are read from the
environment only, when the model is first used, and never logged.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from agents.models import ChatModel, ModelError, ModelTurn, OpenAIChat
from gateway.core.config import AgentConfig, env_secret

Provider = Literal["openai", "anthropic"]
PROVIDERS: tuple[Provider, ...] = ("openai", "anthropic")
DEFAULT_KEY_ENV: dict[Provider, str] = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
BASE_URL_ENV: dict[Provider, str] = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}


@dataclass(frozen=True)
class ModelSpec:
    provider: Provider
    model: str
    api_key_env: str | None = None
    base_url: str | None = None
    max_tokens: int | None = None

    @classmethod
    def parse(cls, text: str, default_provider: Provider = "openai") -> ModelSpec:
        """``"anthropic:claude-sonnet-4-5"``, ``"openai:gpt-4o-mini"`` or a bare model name."""
        provider, sep, model = text.partition(":")
        if not sep:
            return cls(default_provider, text)
        if provider not in PROVIDERS:
            raise ValueError(f"unknown model provider {provider!r} in {text!r}; known: {', '.join(PROVIDERS)}")
        if not model:
            raise ValueError(f"no model name in {text!r}")
        return cls(provider, model)

    @property
    def label(self) -> str:
        return f"{self.provider}:{self.model}"

    def key_env(self, override: str | None = None) -> str:
        return override or self.api_key_env or DEFAULT_KEY_ENV[self.provider]


def build(spec: ModelSpec, key_env: str) -> ChatModel:
    secret = env_secret(key_env)
    key = secret.get_secret_value() if secret is not None else None
    base_url = spec.base_url or os.environ.get(BASE_URL_ENV[spec.provider]) or None
    if spec.provider == "anthropic":
        from agents.anthropic_model import DEFAULT_MAX_TOKENS, AnthropicChat

        return AnthropicChat(
            spec.model, api_key=key, base_url=base_url, max_tokens=spec.max_tokens or DEFAULT_MAX_TOKENS
        )
    return OpenAIChat(spec.model, base_url=base_url, api_key=key)


class ModelChain:
    """The primary model, then the fallbacks: the next is tried only when one fails transiently
    (:attr:`ModelError.transient`: 5xx, 529, timeout, unreachable); a 4xx (bad request, bad key, 429)
    fails the call at once, and the dispatcher's retry budget applies. When all fail, the last error
    is raised (its ``retry_after`` intact)."""

    def __init__(self, specs: list[ModelSpec], *, key_override: str | None = None) -> None:
        if not specs:
            raise ValueError("a model chain needs at least one model")
        self.specs = specs
        self._override = key_override
        self._models: dict[int, ChatModel] = {}
        self._variants: dict[str, ModelChain] = {}

    def for_key(self, key_env: str | None) -> ModelChain:
        """This chain with the primary provider's key read from ``key_env`` (a route's own key)."""
        if not key_env or key_env == self._override:
            return self
        chain = self._variants.get(key_env)
        if chain is None:
            chain = self._variants[key_env] = ModelChain(self.specs, key_override=key_env)
        return chain

    def model(self, i: int) -> ChatModel:
        built = self._models.get(i)
        if built is None:
            spec = self.specs[i]
            override = self._override if spec.provider == self.specs[0].provider else None
            built = self._models[i] = build(spec, spec.key_env(override))
        return built

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelTurn:
        last: ModelError | None = None
        for i in range(len(self.specs)):
            try:
                return await self.model(i).complete(messages, tools)
            except ModelError as exc:
                if not exc.transient:
                    raise
                last = exc
        assert last is not None
        raise ModelError(
            f"every model failed ({', '.join(s.label for s in self.specs)}); last: {last}",
            retry_after=last.retry_after,
            status=last.status,
        ) from last

    async def stream(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[str | ModelTurn]:
        """The primary's stream when it has one; a transient failure before the first delta moves on to the
        next model (after text went out nothing can be taken back, so the error is raised)."""
        last: ModelError | None = None
        for i in range(len(self.specs)):
            model = self.model(i)
            streamer = getattr(model, "stream", None)
            started = False
            try:
                if streamer is None:
                    yield await model.complete(messages, tools)
                    return
                async for item in streamer(messages, tools):
                    started = True
                    yield item
                return
            except ModelError as exc:
                if started or not exc.transient:
                    raise
                last = exc
        assert last is not None
        raise last

    async def close(self) -> None:
        for chain in self._variants.values():
            await chain.close()
        for model in self._models.values():
            close = getattr(model, "close", None)
            if close is not None:
                await close()


def model_chain(spec: AgentConfig, *, default_model: str | None = None) -> ModelChain:
    """The chain an agent's ``gateway.toml`` section describes; raises ValueError naming what is wrong.

    A key variable the section names must be set (a missing one would only show at the first message).
    """
    provider: Provider = spec.provider or "openai"
    name = spec.model or default_model
    if not name:
        raise ValueError('no model: set model = "..." next to provider')
    primary = ModelSpec(provider, name, spec.api_key_env, spec.base_url, spec.max_tokens)
    if spec.api_key_env and env_secret(spec.api_key_env) is None:
        raise ValueError(f"environment variable {spec.api_key_env} (api_key_env) is not set")
    fallbacks = [ModelSpec.parse(text, provider) for text in spec.fallback]
    return ModelChain([primary, *fallbacks])
