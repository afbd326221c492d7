"""Telegram as a :class:`~connectors.platform.Platform`: Bot API webhook updates in (the ``secret_token``
given to ``setWebhook`` checked in constant time), Bot API calls out, paced per chat, per group and per bot.

Limits followed (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this): about one
message per second per chat, 20 per minute per group, 30 per second per bot.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from connectors.base import Connector
from connectors.outbound import PlatformSender
from connectors.platform import Bucket, Endpoint, Parts, Platform, SampleRequest
from connectors.telegram.connector import TelegramConnector
from connectors.telegram.sender import TelegramSender
from gateway.core import samples
from gateway.core.errors import ConfigError
from gateway.core.events import ReplyAddress
from gateway.core.settings import Settings


@dataclass(frozen=True)
class TelegramRates:
    chat_rate: float = 1.0
    chat_burst: float = 3.0
    group_per_minute: float = 20.0
    bot_rate: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramRates:
        return cls(
            settings.telegram_chat_rate,
            settings.telegram_chat_burst,
            settings.telegram_group_per_minute,
            settings.telegram_bot_rate,
        )

    def local(self, to: ReplyAddress) -> Sequence[Bucket]:
        chat = f"telegram:{to.bot}:{to.channel}"
        buckets = [Bucket(chat, self.chat_rate, self.chat_burst)]
        if to.channel.startswith("-"):  # groups, supergroups and channels have negative ids
            buckets.append(Bucket(chat + ":min", self.group_per_minute / 60, self.group_per_minute))
        return buckets

    def shared(self, to: ReplyAddress) -> Sequence[Bucket]:
        return (Bucket(f"telegram:{to.bot}", self.bot_rate, self.bot_rate),)


def inbound(parts: Parts, notes: list[str]) -> Connector | None:
    settings, file = parts.settings, parts.file
    secrets: dict[str, str] = {}
    if settings.telegram_bot_token and settings.telegram_secret_token:
        secrets["default"] = settings.telegram_secret_token.get_secret_value()
    elif settings.telegram_bot_token or settings.telegram_secret_token:
        missing = "TELEGRAM_SECRET_TOKEN" if settings.telegram_bot_token else "TELEGRAM_BOT_TOKEN"
        notes.append(f"{missing} is not set: the Telegram bot 'default' is disabled (404)")
    else:
        notes.append("TELEGRAM_BOT_TOKEN is not set: the Telegram bot 'default' is disabled (404)")
    for name, bot in file.telegram.bots.items():
        bot.token(name)  # fail at start-up when the token's variable is missing
        secrets[name] = bot.secret_token(name).get_secret_value()
    if not secrets:
        return None
    notes.append(f"Telegram connector enabled for bots: {', '.join(sorted(secrets))}")
    return TelegramConnector(secrets)


def outbound(parts: Parts) -> PlatformSender | None:
    tokens: dict[str, str] = {}
    if parts.settings.telegram_bot_token is not None:
        tokens["default"] = parts.settings.telegram_bot_token.get_secret_value()
    for name, bot in parts.file.telegram.bots.items():
        tokens[name] = bot.token(name).get_secret_value()
    return TelegramSender(tokens, parts.settings.telegram_api_url) if tokens else None


def send_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text")
    p.add_argument("--bot", default="default")
    p.add_argument("--chat", type=int, default=1111111)
    p.add_argument("--topic", type=int, help="forum topic (message_thread_id)")
    p.description = (
        "POST a Telegram message update to /telegram/BOT with that bot's secret token (TELEGRAM_SECRET_TOKEN for "
        "'default', the bot's secret_token_env from gateway.toml otherwise)."
    )


def sample(settings: Settings, args: argparse.Namespace) -> SampleRequest:
    if args.bot == "default":
        if settings.telegram_secret_token is None:
            raise ConfigError("TELEGRAM_SECRET_TOKEN is not set: set it to the gateway's secret token")
        secret = settings.telegram_secret_token.get_secret_value()
    else:
        bots = settings.load_file().telegram.bots
        if args.bot not in bots:
            raise ConfigError(f"no Telegram bot {args.bot!r} in gateway.toml")
        secret = bots[args.bot].secret_token(args.bot).get_secret_value()
    body = samples.telegram_message(args.text, chat_id=args.chat, topic=args.topic)
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}
    return SampleRequest(f"/telegram/{args.bot}", body, headers)


PLATFORM = Platform(
    name="telegram",
    rate_policy=TelegramRates.from_settings,
    conversation_key="telegram:{bot}:{chat}[:{topic}]",
    endpoints=(Endpoint("/telegram/{bot}"),),
    inbound=inbound,
    outbound=outbound,
    send_arguments=send_arguments,
    sample=sample,
    send_help="a Telegram message update",
)
