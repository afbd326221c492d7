"""The web as a :class:`~connectors.platform.Platform`: the chat page, widget and app API are its own routes
(``connectors/web/routes.py``), enabled by ``GATEWAY_WEB_SECRET``; replies go to the conversation's transcript
in Redis and are announced to every serve process (``connectors/web/sender.py``)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from connectors.outbound import PlatformSender
from connectors.platform import Parts, Platform, Unlimited
from connectors.web.routes import mount
from connectors.web.sender import WebSender
from connectors.web.setup import build_web


def http(parts: Parts) -> Callable[[web.Application], None] | None:
    if parts.bus is None or parts.store is None or parts.ingestor is None or parts.metrics is None:
        return None
    state = build_web(
        parts.settings,
        parts.file,
        bus=parts.bus,
        store=parts.store,
        ingestor=parts.ingestor,
        metrics=parts.metrics,
        dev=parts.dev,
    )
    if state is None:
        return None
    return lambda app: mount(app, state)


def outbound(parts: Parts) -> PlatformSender | None:
    if parts.store is None or parts.bus is None:
        return None
    return WebSender(parts.store, parts.bus, ttl=parts.settings.history_ttl or None)


PLATFORM = Platform(
    name="web",
    rate_policy=lambda _settings: Unlimited(
        why="replies go to our own transcript; visitors' posts are limited at ingress ([web] rate, burst)"
    ),
    conversation_key="web:{site}:{visitor} (visitors), web:{app}:{your id} (apps)",
    http=http,
    outbound=outbound,
    console_fallback=False,
)
