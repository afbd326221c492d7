"""WhatsApp Cloud API as a :class:`~connectors.platform.Platform`: Meta's webhook on ``GET``/``POST
/whatsapp`` in (handshake with the verify token, ``X-Hub-Signature-256`` with the app secret), Graph API
``/{phone number id}/messages`` out, paced per business number and per user.

Limits followed (Cloud API "Throughput" and "Pair rate limits", checked 2026-12): 80 messages per second per
business phone number by default (up to 1,000 after Meta's upgrade: raise ``GATEWAY_WHATSAPP_NUMBER_RATE``),
and one message every 6 seconds from a business number to one user, with short bursts (error 131056 past it).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from connectors.base import Connector
from connectors.outbound import PlatformSender
from connectors.platform import ChatRates, Endpoint, Parts, Platform, SampleRequest
from connectors.whatsapp.connector import WhatsAppConnector
from connectors.whatsapp.sender import WhatsAppSender
from connectors.whatsapp.verify import sign
from gateway.core.errors import ConfigError
from gateway.core.events import new_id
from gateway.core.settings import Settings


def rates(settings: Settings) -> ChatRates:
    """Per user (about one message every 6 s to one user) and per business phone number (80/s)."""
    return ChatRates(
        "whatsapp", settings.whatsapp_user_rate, settings.whatsapp_user_burst, settings.whatsapp_number_rate
    )


def inbound(parts: Parts, notes: list[str]) -> Connector | None:
    settings = parts.settings
    secret, token = settings.whatsapp_app_secret, settings.whatsapp_verify_token
    if secret is None or token is None:
        missing = [n for n, v in (("WHATSAPP_APP_SECRET", secret), ("WHATSAPP_VERIFY_TOKEN", token)) if v is None]
        notes.append(f"{' and '.join(missing)} not set: WhatsApp is disabled (GET/POST /whatsapp answer 404)")
        return None
    notes.append("WhatsApp connector enabled on /whatsapp")
    return WhatsAppConnector(secret.get_secret_value(), token.get_secret_value(), parts.store)


def outbound(parts: Parts) -> PlatformSender | None:
    token = parts.settings.whatsapp_access_token
    if token is None:
        return None
    return WhatsAppSender(token.get_secret_value(), parts.settings.whatsapp_api_url, parts.store)


def text_notification(
    text: str, *, user: str = "16505551234", number: str = "106540352242922", at: float | None = None
) -> dict[str, Any]:
    """A ``messages`` notification of one text message, shaped like Meta's (tests/fixtures/whatsapp_text.json)."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550783881", "phone_number_id": number},
                            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": user}],
                            "messages": [
                                {
                                    "from": user,
                                    "id": f"wamid.{new_id()}",
                                    "timestamp": str(int(time.time() if at is None else at)),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def send_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text")
    p.add_argument("--user", default="16505551234", help="the user's wa_id")
    p.add_argument("--number", default="106540352242922", help="the business phone number id")
    p.description = "POST a WhatsApp text message notification to /whatsapp, signed with WHATSAPP_APP_SECRET."


def sample(settings: Settings, args: argparse.Namespace) -> SampleRequest:
    if settings.whatsapp_app_secret is None:
        raise ConfigError("WHATSAPP_APP_SECRET is not set: set it to the gateway's Meta app secret")
    body = json.dumps(text_notification(args.text, user=args.user, number=args.number)).encode()
    headers = {
        "X-Hub-Signature-256": sign(settings.whatsapp_app_secret.get_secret_value(), body),
        "Content-Type": "application/json",
    }
    return SampleRequest("/whatsapp", body, headers)


PLATFORM = Platform(
    name="whatsapp",
    rate_policy=rates,
    conversation_key="whatsapp:{phone number id}:{wa_id}",
    endpoints=(Endpoint("/{target:whatsapp}", "GET"), Endpoint("/{target:whatsapp}")),
    inbound=inbound,
    outbound=outbound,
    send_arguments=send_arguments,
    sample=sample,
    send_help="a WhatsApp text message notification",
)
