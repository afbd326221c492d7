"""Microsoft Teams as a :class:`~connectors.platform.Platform`: Bot Framework activities on ``POST
/teams/messages`` (the JWT of the Bot Connector checked against the Bot Framework's published keys), Bot
Connector REST API replies out (client-credentials token), paced per conversation and per tenant.

Limits followed (Teams "Optimize your bot with rate limiting", checked 2026-12): per bot per conversation
7 messages a second, 8 in 2 s, 60 in 30 s and 1,800 an hour (a bucket of 7 refilled at 0.5/s keeps under all
four), and 50 requests a second per app per tenant.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import jwt

from connectors.base import Connector
from connectors.outbound import PlatformSender
from connectors.platform import ChatRates, Endpoint, Parts, Platform, SampleRequest
from connectors.teams.auth import ISSUER
from connectors.teams.connector import TeamsConnector
from connectors.teams.keys import SigningKeys
from connectors.teams.sender import TeamsSender
from gateway.core.errors import ConfigError
from gateway.core.events import new_id
from gateway.core.settings import Settings


def rates(settings: Settings) -> ChatRates:
    """Per conversation and per tenant (the Bot Connector's documented per-conversation limits)."""
    return ChatRates(
        "teams", settings.teams_conversation_rate, settings.teams_conversation_burst, settings.teams_tenant_rate
    )


def inbound(parts: Parts, notes: list[str]) -> Connector | None:
    settings = parts.settings
    if not settings.teams_app_id or settings.teams_app_password is None:
        missing = "TEAMS_APP_ID" if not settings.teams_app_id else "TEAMS_APP_PASSWORD"
        notes.append(f"{missing} is not set: Teams is disabled (POST /teams/messages answers 404)")
        return None
    notes.append(f"Teams connector enabled on /teams/messages (keys from {settings.teams_openid_metadata_url})")
    return TeamsConnector(settings.teams_app_id, SigningKeys(settings.teams_openid_metadata_url))


def outbound(parts: Parts) -> PlatformSender | None:
    settings = parts.settings
    if not settings.teams_app_id or settings.teams_app_password is None:
        return None
    return TeamsSender(settings.teams_app_id, settings.teams_app_password.get_secret_value(), settings.teams_token_url)


def message_activity(
    text: str,
    *,
    service_url: str = "https://smba.trafficmanager.net/amer/",
    conversation: str = "19:d9d6c8f3a5b14a2c9e7f0b1a2c3d4e5f@thread.tacv2;messageid=1733500000000",
    tenant: str = "72f988bf-86f1-41af-91ab-2d7cd011db47",
    bot_id: str = "28:00000000-0000-0000-0000-000000000000",
    activity_id: str | None = None,
) -> dict[str, Any]:
    """A channel ``message`` activity shaped like Teams' (tests/fixtures/teams_channel_message.json)."""
    return {
        "type": "message",
        "id": activity_id or str(int(time.time() * 1000)) + new_id()[-6:],
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {
            "id": "29:1XJKJMvc5GBtc2JwZq0oj8tHZmzrQgFmB25ATiQWA85gQtHieVkKilBZ9XHoq9j7Zaqt7CZ-NJWi7me2kHTL3Bw",
            "name": "Megan Bowen",
            "aadObjectId": "48d31887-5fad-4d73-a9f5-3c356e68a038",
        },
        "conversation": {
            "isGroup": True,
            "conversationType": "channel",
            "id": conversation,
            "tenantId": tenant,
        },
        "recipient": {"id": bot_id, "name": "Gateway"},
        "text": f"<at>Gateway</at> {text}",
        "textFormat": "plain",
        "entities": [{"type": "mention", "mentioned": {"id": bot_id, "name": "Gateway"}, "text": "<at>Gateway</at>"}],
        "channelData": {
            "teamsChannelId": conversation.split(";")[0],
            "teamsTeamId": "19:0ab1c2d3e4f5a6b7c8d9e0f1a2b3c4d5@thread.tacv2",
            "channel": {"id": conversation.split(";")[0]},
            "team": {"id": "19:0ab1c2d3e4f5a6b7c8d9e0f1a2b3c4d5@thread.tacv2"},
            "tenant": {"id": tenant},
        },
        "locale": "en-US",
    }


def connector_token(private_key: Any, kid: str, *, app_id: str, service_url: str, lifetime: float = 3600) -> str:
    """A token shaped like the Bot Connector's (RS256, ``kid``, ``iss``, ``aud``, ``serviceurl``, ``nbf``, ``exp``).

    Only a key whose public half the gateway's ``TEAMS_OPENID_METADATA_URL`` publishes makes one it accepts:
    Microsoft's for real traffic, a local key set (tests/fakes/botframework.py) for trying things out."""
    now = int(time.time())
    claims = {"serviceurl": service_url, "nbf": now - 5, "exp": now + int(lifetime), "iss": ISSUER, "aud": app_id}
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": kid, "x5t": kid})


def send_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text")
    p.add_argument("--key", required=True, help="PEM file of an RSA private key the gateway's key set publishes")
    p.add_argument("--kid", required=True, help="that key's id in the JWKS")
    p.add_argument("--service-url", default="https://smba.trafficmanager.net/amer/")
    p.description = (
        "POST a Teams channel message activity to /teams/messages with a Bot Connector-shaped JWT signed by --key. "
        "Microsoft signs real activities: this works against a gateway whose TEAMS_OPENID_METADATA_URL serves "
        "a key set with that key (e.g. `python -m tests.fakes.botframework`)."
    )


def sample(settings: Settings, args: argparse.Namespace) -> SampleRequest:
    if not settings.teams_app_id:
        raise ConfigError("TEAMS_APP_ID is not set: set it to the gateway's Microsoft App ID")
    try:
        key = Path(args.key).read_bytes()
    except OSError as exc:
        raise ConfigError(f"--key {args.key}: {exc.strerror or exc}") from exc
    activity = message_activity(args.text, service_url=args.service_url)
    token = connector_token(key, args.kid, app_id=settings.teams_app_id, service_url=args.service_url)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return SampleRequest("/teams/messages", json.dumps(activity).encode(), headers)


PLATFORM = Platform(
    name="teams",
    rate_policy=rates,
    conversation_key="teams:{tenant}:{conversation id, with its ;messageid= reply chain}",
    endpoints=(Endpoint("/teams/{target:messages}"),),
    inbound=inbound,
    outbound=outbound,
    send_arguments=send_arguments,
    sample=sample,
    send_help="a Teams channel message activity, signed with a local key",
)
