"""The explicit connector registry.

A connector whose secret is not configured is not registered at all: its
routes answer 404, never accept unsigned traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.base import Connector, ConnectorResult, InboundRequest
from connectors.slack.connector import SlackConnector
from connectors.telegram.connector import TelegramConnector
from connectors.webhooks.connector import WebhookConnector, WebhookSource
from connectors.webhooks.signing import secret_key
from gateway.config import GatewayFile
from gateway.settings import Settings

__all__ = ["Connector", "ConnectorResult", "InboundRequest", "Registry", "build_registry"]


@dataclass
class Registry:
    connectors: dict[str, Connector] = field(default_factory=dict)
    #: Human-readable lines for start-up logs and ``gateway check``.
    notes: list[str] = field(default_factory=list)

    def get(self, platform: str) -> Connector | None:
        return self.connectors.get(platform)


def _slack(settings: Settings, reg: Registry) -> None:
    if settings.slack_signing_secret is None:
        reg.notes.append("SLACK_SIGNING_SECRET is not set: the Slack connector is disabled (404)")
        return
    if settings.slack_bot_token is None:
        reg.notes.append("SLACK_BOT_TOKEN is not set: Slack events are accepted but replies cannot be sent")
    secret = settings.slack_signing_secret.get_secret_value()
    reg.connectors["slack"] = SlackConnector(secret, settings.replay_window)
    reg.notes.append("Slack connector enabled: POST /slack/events, /slack/interactions, /slack/commands")


def _telegram(settings: Settings, file: GatewayFile, reg: Registry) -> None:
    secrets: dict[str, str] = {}
    if settings.telegram_bot_token and settings.telegram_secret_token:
        secrets["default"] = settings.telegram_secret_token.get_secret_value()
    elif settings.telegram_bot_token or settings.telegram_secret_token:
        missing = "TELEGRAM_SECRET_TOKEN" if settings.telegram_bot_token else "TELEGRAM_BOT_TOKEN"
        reg.notes.append(f"{missing} is not set: the Telegram bot 'default' is disabled (404)")
    else:
        reg.notes.append("TELEGRAM_BOT_TOKEN is not set: the Telegram bot 'default' is disabled (404)")
    for name, bot in file.telegram.bots.items():
        bot.token(name)  # fail at start-up when the token's variable is missing
        secrets[name] = bot.secret_token(name).get_secret_value()
    if secrets:
        reg.connectors["telegram"] = TelegramConnector(secrets)
        reg.notes.append(f"Telegram connector enabled for bots: {', '.join(sorted(secrets))}")


def _webhooks(settings: Settings, file: GatewayFile, reg: Registry) -> None:
    sources = {
        name: WebhookSource(
            name=name,
            keys=tuple(secret_key(s.get_secret_value()) for s in src.secrets(name)),
            customer_pointer=src.customer_pointer,
            text_pointer=src.text_pointer,
            type_pointer=src.type_pointer,
            reply_url=src.reply_url,
        )
        for name, src in file.webhooks.sources.items()
    }
    if sources:
        reg.connectors["webhook"] = WebhookConnector(sources, settings.replay_window)
        reg.notes.append(f"Webhook sources enabled: {', '.join(sorted(sources))}")
    else:
        reg.notes.append("no [webhooks.sources] in gateway.toml: POST /webhooks/{source} answers 404")


def build_registry(settings: Settings, file: GatewayFile) -> Registry:
    """Build every enabled connector; raises ConfigError for configuration that cannot work."""
    reg = Registry()
    _slack(settings, reg)
    _telegram(settings, file, reg)
    _webhooks(settings, file, reg)
    return reg
