"""``gateway discord``: the Discord Gateway (WebSocket) connection, as a process of its own.

It publishes each message it receives (deduplicated by message id, confirmed by RabbitMQ) like ingress does;
``gateway consume`` (or ``dev``) answers them. Interactions (slash commands) do not need it: they arrive over
HTTP at ``POST /discord/interactions``. Run one per bot (one shard); a restarted one resumes the session the
previous one left in Redis (connectors/discord/session.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

import structlog

from connectors import secret_policy
from gateway.core.errors import ConfigError
from gateway.core.settings import Settings
from gateway.http import HttpState, build_app
from gateway.runtime import open_runtime, require_services, settle_heap
from gateway.server import ensure_port_free, serve_http, stop_event

log = structlog.get_logger(__name__)


async def run_discord(settings: Settings, args: argparse.Namespace) -> int:
    from connectors.discord.gateway import GatewayClient

    require_services(settings, "discord")
    secret_policy.enforce(settings, settings.load_file(), command="discord")
    if settings.discord_bot_token is None:
        raise ConfigError("DISCORD_BOT_TOKEN is not set: gateway discord connects to the Gateway as the bot")
    ensure_port_free(settings.host, settings.discord_port, "GATEWAY_DISCORD_PORT")
    stop = stop_event()
    async with open_runtime(settings, stop=stop) as rt:
        ingestor = rt.ingestor()
        client = GatewayClient(
            settings.discord_bot_token.get_secret_value(),
            settings.discord_api_url,
            rt.store,
            ingestor.accept,
            intents=settings.discord_intents,
            registry=rt.metrics.registry,
        )
        state = HttpState(bus=rt.bus, store=rt.store, metrics=rt.metrics, checks={"discord": client.ready})
        connection = asyncio.create_task(client.run(stop))
        connection.add_done_callback(lambda _: stop.set())  # a fatal close ends the process
        settle_heap()
        try:
            await serve_http(
                build_app(state, webhooks=False),
                settings.host,
                settings.discord_port,
                stop,
                port_variable="GATEWAY_DISCORD_PORT",
                grace=settings.shutdown_grace,
                header_timeout=settings.header_timeout,
            )
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await connection  # raises the ConfigError of a fatal close
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "discord",
        help="the Discord Gateway connection: messages in (needs DISCORD_BOT_TOKEN, AMQP_URL, REDIS_URL)",
        description="Connect to the Discord Gateway as the bot (DISCORD_BOT_TOKEN) with the GUILDS, GUILD_MESSAGES, "
        "DIRECT_MESSAGES and MESSAGE_CONTENT intents, and publish every message it receives to RabbitMQ "
        "(confirmed, deduplicated by message id), where `gateway consume` or `dev` answers it. Heartbeats, "
        "resumes after a drop (and after a restart: the session is kept in Redis for a few minutes), follows "
        "RECONNECT and INVALID_SESSION. Serves /healthz, /readyz (ready while the session is live) and /metrics on "
        "GATEWAY_HOST:GATEWAY_DISCORD_PORT (127.0.0.1:8083). Run one per bot. Slash commands do not need it: "
        "they arrive at POST /discord/interactions.",
    )
    p.set_defaults(run=run_discord)
