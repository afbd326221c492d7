"""Conversation keys and routes.

The default keys are fixed by DESIGN.md: ``slack:{team}:{channel}:{thread root ts}``,
``telegram:{bot}:{chat}[:{topic}]`` and ``webhook:{source}:{customer}``. A route
in ``gateway.toml`` can choose a coarser (``channel``) or per-person (``user``)
key and the agent. The key decides the partition, so it is computed at ingress.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.core.config import BusyPolicy, KeyGranularity, RouteConfig
from gateway.core.events import Event, EventKind, ReplyAddress

#: A leading Slack mention (``<@U123>``) or Telegram one (``@name_bot``), and trailing punctuation.
_MENTION = re.compile(r"^\s*(<@[A-Z0-9]+>|@\w+)[\s,:]*")
_TRAILING = re.compile(r"[\s.!?…]+$")


def stop_word_of(text: str) -> str:
    """The text as it is compared with a route's ``stop_words``: "<@UBOT> Stop!" -> "stop"."""
    return _TRAILING.sub("", _MENTION.sub("", text)).strip().casefold()


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
    stop_words: frozenset[str] = frozenset()
    session_events: bool = False
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
        return Route(
            agent=r.agent or self._default.agent,
            key=r.key,
            busy=r.busy,
            stop_words=frozenset(stop_word_of(w) for w in r.stop_words),
            session_events=r.session_events,
            stream=self._default.stream if r.stream is None else r.stream,
            session=r.session,
        )

    def apply(self, event: Event) -> Event:
        route = self.route_for(event.reply_to)
        key = conversation_key(event.reply_to, route.key)
        stop = bool(route.stop_words) and event.triggers_turn and stop_word_of(event.text) in route.stop_words
        opened = route.session_events and event.kind == EventKind.SESSION and event.skip_reason == "session event"
        same = route.agent == event.agent and route.busy == event.busy and route.stream == event.stream
        unchanged = key == event.conversation_key and same and route.session in (None, event.session)
        if unchanged and not stop and not opened:
            return event
        update: dict[str, object] = {
            "conversation_key": key,
            "agent": route.agent,
            "busy": route.busy,
            "stream": route.stream,
        }
        if route.session is not None:
            update["session"] = route.session
        if opened:  # the route wants session events: the agent greets, suggests prompts, sets a title
            update["skip_reason"] = None
        if stop:  # the stop word stops the running turn (consumers/interrupts.py) and starts none
            update |= {"control": "stop", "skip_reason": "stop"}
        return event.model_copy(update=update)
