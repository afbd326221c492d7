"""Loading agents: the built-ins and import paths from ``gateway.toml``.

An import path is ``"package.module:attr"`` (the uvicorn/celery convention).
A wrong path or a broken agent fails ``gateway check`` and start-up with a
message that says what to fix.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from agents.base import AgentLike
from gateway.core.config import AgentConfig, GatewayFile
from gateway.core.errors import ConfigError
from gateway.core.imports import import_path
from gateway.core.settings import Settings


@dataclass(frozen=True)
class AgentFactory:
    """Makes the object that serves one conversation: the shared object, or a new instance of a class."""

    name: str
    #: A shared agent object, or a class made once per warm conversation (both checked by ``_check``).
    target: AgentLike | type[AgentLike]

    def instance(self) -> AgentLike:
        """The object whose ``on_event`` serves a conversation."""
        if isinstance(self.target, type):
            return self.target()
        return self.target

    async def close(self) -> None:
        """A shared agent object's ``close()``, when it has one (its model's connections)."""
        close = None if isinstance(self.target, type) else getattr(self.target, "close", None)
        if callable(close):
            result = close()
            if inspect.isawaitable(result):
                await result


def _check(name: str, target: Any) -> None:
    on_event = getattr(target, "on_event", None)
    if on_event is None or not callable(on_event):
        raise ConfigError(f"agent {name!r}: {target!r} has no on_event(ctx, event) method")
    if not inspect.iscoroutinefunction(on_event):
        raise ConfigError(f"agent {name!r}: on_event must be 'async def'")


def _configure(name: str, target: Any, settings: Settings) -> None:
    """Give declarative agents their model client from settings (OPENAI_BASE_URL, OPENAI_API_KEY)."""
    configure = getattr(target, "configure", None)
    if configure is None or inspect.isclass(target):
        return
    try:
        configure(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
            default_model=settings.llm_model,
        )
    except Exception as exc:
        raise ConfigError(f"agent {name!r}: {exc}") from exc


def _use_provider(name: str, target: Any, spec: AgentConfig) -> None:
    """``provider``/``model``/``fallback``/``api_key_env`` in the agent's section: its model chain."""
    if spec.provider is None and spec.model is None and not spec.fallback and spec.api_key_env is None:
        return
    from agents.providers import model_chain  # the model clients load only for an agent that names a provider

    use_model = getattr(target, "use_model", None)
    if use_model is None or inspect.isclass(target):
        raise ConfigError(f"agent {name!r}: provider, model, fallback and api_key_env apply to declarative agents")
    try:
        use_model(model_chain(spec, default_model=getattr(target, "_model_name", None)))
    except ValueError as exc:
        raise ConfigError(f"agent {name!r}: {exc}") from exc


def _builtins(settings: Settings) -> dict[str, Callable[[], Any]]:
    from agents.echo import EchoAgent

    out: dict[str, Callable[[], Any]] = {"echo": EchoAgent}
    if settings.llm_model:
        from agents.llm import build_llm_agent

        out["llm"] = lambda: build_llm_agent(settings)
    return out


def agent_names(settings: Settings, file: GatewayFile) -> set[str]:
    """The names a consumer with these settings serves, without importing any agent."""
    return set(_builtins(settings)) | set(file.agents)


def load_agents(settings: Settings, file: GatewayFile) -> dict[str, AgentFactory]:
    """Every agent, ready to serve; raises :class:`ConfigError` naming every broken one."""
    agents, problems = agents_and_problems(settings, file)
    if problems:
        raise ConfigError("\n".join(problems))
    return agents


def agents_and_problems(settings: Settings, file: GatewayFile) -> tuple[dict[str, AgentFactory], list[str]]:
    """The agents that load, and one message per one that does not (``gateway check`` prints them all)."""
    agents: dict[str, AgentFactory] = {}
    problems: list[str] = []
    for name, make in _builtins(settings).items():
        agents[name] = AgentFactory(name, cast(AgentLike, make()))
    for name, spec in file.agents.items():
        try:
            target = import_path(spec.path, f"agent {name!r}")
            _check(name, target)
            _use_provider(name, target, spec)  # first: an agent whose model is in gateway.toml needs no default
            _configure(name, target, settings)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        agents[name] = AgentFactory(name, cast("AgentLike | type[AgentLike]", target))  # _check verified it
    wanted = {settings.default_agent} | {r.agent for r in file.routes if r.agent}
    for name in sorted(wanted - agents.keys() - file.agents.keys()):
        hint = " (set GATEWAY_LLM_MODEL to enable 'llm')" if name == "llm" else ""
        problems.append(f"agent {name!r} is used but not defined; known: {', '.join(sorted(agents))}{hint}")
    return agents, problems
