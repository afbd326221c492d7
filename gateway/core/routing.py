"""Conversation keys and routes.

The default keys are fixed by DESIGN.md: ``slack:{team}:{channel}:{thread root ts}``,
``telegram:{bot}:{chat}[:{topic}]`` and ``webhook:{source}:{customer}``. A route
in ``gateway.toml`` can choose a coarser (``channel``) or per-person (``user``)
key and the agent. The key decides the partition, so it is computed at ingress.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.config import BusyPolicy, KeyGranularity, RouteConfig
from gateway.core.events import Event, ReplyAddress


def conversation_key(address: ReplyAddress, granularity: KeyGranularity = "thread") -> str:
    base = f"{address.platform}:{address.bot}"
    if granularity == "user" and address.user:
        return f"{base}:user:{address.user}"
    if granularity in ("thread", "customer") and address.thread:
        return f"{base}:{address.channel}:{address.thread}"
    return f"{base}:{address.channel}"


@dataclass(frozen=True, slots=True)
class Route:
    agent: str
    key: KeyGranularity
    busy: BusyPolicy
    stream: bool = False
    session: str | None = None


class Router:
    """First matching ``[[routes]]`` entry wins; otherwise the default agent with thread keys."""

    def __init__(self, routes: list[RouteConfig], default_agent: str, *, stream: bool = False) -> None:
        """``stream``: ``GATEWAY_STREAM``, for the default route and every route that does not say."""
        self._routes = routes
        self._default = Route(agent=default_agent, key="thread", busy="queue", stream=stream)

    def match(self, address: ReplyAddress) -> RouteConfig | None:
        """The first ``[[routes]]`` entry that claims this address, if any."""
        for r in self._routes:
            if r.platform != address.platform:
                continue
            if r.bot is not None and r.bot != address.bot:
                continue
            if r.channel is not None and r.channel != address.channel:
                continue
            return r
        return None

    def route_for(self, address: ReplyAddress) -> Route:
        r = self.match(address)
        if r is None:
            return self._default
        stream = self._default.stream if r.stream is None else r.stream
        return Route(agent=r.agent or self._default.agent, key=r.key, busy=r.busy, stream=stream, session=r.session)

    def apply(self, event: Event) -> Event:
        route = self.route_for(event.reply_to)
        key = conversation_key(event.reply_to, route.key)
        same = route.agent == event.agent and route.busy == event.busy and route.stream == event.stream
        if key == event.conversation_key and same and route.session in (None, event.session):
            return event
        update: dict[str, object] = {
            "conversation_key": key,
            "agent": route.agent,
            "busy": route.busy,
            "stream": route.stream,
        }
        if route.session is not None:
            update["session"] = route.session
        return event.model_copy(update=update)
