"""Discord as a :class:`~connectors.platform.Platform`: interactions on ``POST /discord/interactions`` (Ed25519
with the application's public key), Gateway messages from ``gateway discord`` (gateway.py), REST replies out.

Limits followed (Discord "Rate Limits" and "Channel", checked 2026-12): 50 requests a second per bot (the global
limit; interaction webhooks are not bound by it but share our bucket for simplicity), and Create Message about
5 per 5 seconds per channel (a bucket of 5 refilled at 1/s). Discord's own ``X-RateLimit-*`` headers are
followed on top (buckets.py).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from connectors.base import Connector
from connectors.discord.connector import DiscordConnector
from connectors.discord.parse import DM
from connectors.discord.sender import DiscordSender
from connectors.discord.verify import public_key, sign
from connectors.outbound import PlatformSender
from connectors.platform import Bucket, Endpoint, Parts, Platform, SampleRequest
from gateway.core.errors import ConfigError
from gateway.core.events import ReplyAddress
from gateway.core.settings import Settings


@dataclass(frozen=True)
class DiscordRates:
    channel_rate: float = 1.0
    channel_burst: float = 5.0
    bot_rate: float = 50.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DiscordRates:
        return cls(settings.discord_channel_rate, settings.discord_channel_burst, settings.discord_bot_rate)

    def local(self, to: ReplyAddress) -> Sequence[Bucket]:
        channel = to.thread or to.channel
        return (Bucket(f"discord:{to.bot}:{channel}", self.channel_rate, self.channel_burst),)

    def shared(self, to: ReplyAddress) -> Sequence[Bucket]:
        return (Bucket("discord:bot", self.bot_rate, self.bot_rate),)


def inbound(parts: Parts, notes: list[str]) -> Connector | None:
    key = parts.settings.discord_public_key
    if not key:
        notes.append(
            "DISCORD_PUBLIC_KEY is not set: Discord interactions are disabled (POST /discord/interactions answers 404)"
        )
        return None
    notes.append("Discord interactions enabled on /discord/interactions")
    return DiscordConnector(public_key(key), parts.settings.replay_window)


def outbound(parts: Parts) -> PlatformSender | None:
    settings = parts.settings
    if settings.discord_bot_token is None and not settings.discord_public_key:
        return None
    token = settings.discord_bot_token.get_secret_value() if settings.discord_bot_token else None
    return DiscordSender(token, settings.discord_api_url, parts.store)


def snowflake_now() -> str:
    """A snowflake-shaped id (ms since the Discord epoch << 22, with random low bits)."""
    ms = int(time.time() * 1000) - 1420070400000
    return str((ms << 22) | int.from_bytes(os.urandom(3), "big") & 0x3FFFFF)


def slash_command(
    name: str,
    text: str,
    *,
    application_id: str = "1100000000000000001",
    guild: str | None = "1100000000000000002",
    channel: str = "1100000000000000003",
    user: str = "1100000000000000004",
    token: str | None = None,
    interaction_id: str | None = None,
) -> dict[str, Any]:
    """An APPLICATION_COMMAND interaction shaped like Discord's (tests/fixtures/discord_slash_command.json), with
    one string option ``text``."""
    person = {"id": user, "username": "nelly", "global_name": "Nelly", "discriminator": "0", "avatar": None}
    interaction: dict[str, Any] = {
        "app_permissions": "562949953601536",
        "application_id": application_id,
        "authorizing_integration_owners": {"0": guild or user},
        "channel": {"id": channel, "type": 0 if guild else 1, "name": "general"},
        "channel_id": channel,
        "context": 0 if guild else 1,
        "data": {
            "id": "1100000000000000005",
            "name": name,
            "type": 1,
            "options": [{"name": "text", "type": 3, "value": text}],
        },
        "entitlements": [],
        "id": interaction_id or snowflake_now(),
        "locale": "en-US",
        "token": token or "aW50ZXJhY3Rpb246" + os.urandom(24).hex(),
        "type": 2,
        "version": 1,
    }
    if guild:
        interaction["guild_id"] = guild
        interaction["guild_locale"] = "en-US"
        interaction["member"] = {"user": person, "roles": [], "permissions": "2248473465835073", "nick": None}
    else:
        interaction["user"] = person
    return interaction


def send_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text")
    p.add_argument("--key", required=True, help="file with the hex Ed25519 seed whose public key is DISCORD_PUBLIC_KEY")
    p.add_argument("--command", default="ask", help="the slash command's name")
    p.add_argument("--guild", default="1100000000000000002", help=f"the guild id ({DM!r}: a DM)")
    p.add_argument("--channel", default="1100000000000000003")
    p.description = (
        "POST a slash command interaction to /discord/interactions, signed with --key. Discord signs real "
        "interactions with the application's private key: this works against a gateway whose DISCORD_PUBLIC_KEY "
        "is --key's public half (a local key pair for trying things out)."
    )


def sample(settings: Settings, args: argparse.Namespace) -> SampleRequest:
    if not settings.discord_public_key:
        raise ConfigError("DISCORD_PUBLIC_KEY is not set: set it to the application's public key")
    try:
        key = SigningKey(bytes.fromhex(Path(args.key).read_text().strip()))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--key {args.key}: not a file with a 64-character hex Ed25519 seed ({exc})") from exc
    guild = None if args.guild == DM else args.guild
    application = settings.discord_application_id or "1100000000000000001"
    body = json.dumps(
        slash_command(args.command, args.text, guild=guild, channel=args.channel, application_id=application)
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "X-Signature-Ed25519": sign(key, timestamp, body),
        "X-Signature-Timestamp": timestamp,
        "Content-Type": "application/json",
    }
    return SampleRequest("/discord/interactions", body, headers)


PLATFORM = Platform(
    name="discord",
    rate_policy=DiscordRates.from_settings,
    conversation_key="discord:{guild, or @me for a DM}:{channel}[:{thread}]",
    endpoints=(Endpoint("/discord/{target:interactions}"),),
    inbound=inbound,
    outbound=outbound,
    send_arguments=send_arguments,
    sample=sample,
    send_help="a Discord slash command interaction, signed with a local key",
)
