"""Building the platform senders from settings (only those with credentials)."""

from __future__ import annotations

from connectors.outbound import PlatformSender
from connectors.slack.sender import SlackSender
from connectors.telegram.sender import TelegramSender
from connectors.webhooks.sender import WebhookSender
from connectors.webhooks.signing import secret_key
from gateway.config import GatewayFile
from gateway.settings import Settings


def build_senders(settings: Settings, file: GatewayFile) -> dict[str, PlatformSender]:
    out: dict[str, PlatformSender] = {}
    if settings.slack_bot_token is not None:
        out["slack"] = SlackSender(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    tokens: dict[str, str] = {}
    if settings.telegram_bot_token is not None:
        tokens["default"] = settings.telegram_bot_token.get_secret_value()
    for name, bot in file.telegram.bots.items():
        tokens[name] = bot.token(name).get_secret_value()
    if tokens:
        out["telegram"] = TelegramSender(tokens, settings.telegram_api_url)
    keys = {
        name: secret_key(src.reply_secret(name).get_secret_value())
        for name, src in file.webhooks.sources.items()
        if src.reply_url
    }
    if keys:
        out["webhook"] = WebhookSender(keys)
    return out
