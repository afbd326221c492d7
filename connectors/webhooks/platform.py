"""Signed webhooks as a :class:`~connectors.platform.Platform`: any service that signs the Standard Webhooks
way (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``; https://www.standardwebhooks.com/) in,
signed ``reply`` callbacks to the source's ``reply_url`` out.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

from connectors.base import Connector
from connectors.outbound import PlatformSender
from connectors.platform import Endpoint, Parts, Platform, SampleRequest, Unlimited
from connectors.webhooks import jsonpointer
from connectors.webhooks.connector import WebhookConnector, WebhookSource
from connectors.webhooks.sender import WebhookSender
from connectors.webhooks.signing import secret_key, signature_headers
from gateway.core.config import WebhookSourceConfig
from gateway.core.errors import ConfigError
from gateway.core.handoff import WEBHOOK_SIGNER
from gateway.core.settings import Settings


def inbound(parts: Parts, notes: list[str]) -> Connector | None:
    sources = {
        name: WebhookSource(
            name=name,
            keys=tuple(secret_key(s.get_secret_value()) for s in src.secrets(name)),
            customer_pointer=src.customer_pointer,
            text_pointer=src.text_pointer,
            type_pointer=src.type_pointer,
            reply_url=src.reply_url,
        )
        for name, src in parts.file.webhooks.sources.items()
    }
    if not sources:
        notes.append("no [webhooks.sources] in gateway.toml: POST /webhooks/{source} answers 404")
        return None
    notes.append(f"Webhook sources enabled: {', '.join(sorted(sources))}")
    return WebhookConnector(sources, parts.settings.replay_window)


def outbound(parts: Parts) -> PlatformSender | None:
    keys = {
        name: secret_key(src.reply_secret(name).get_secret_value())
        for name, src in parts.file.webhooks.sources.items()
        if src.reply_url
    }
    handoff = parts.file.handoff.webhook_secret()
    if handoff is not None:  # handoff notices (gateway/core/handoff.py) are signed callbacks too
        keys[WEBHOOK_SIGNER] = secret_key(handoff.get_secret_value())
    chunked = {name for name, src in parts.file.webhooks.sources.items() if src.stream == "chunked"}
    return WebhookSender(keys, chunked=chunked) if keys else None


def webhook_body(source: WebhookSourceConfig, name: str, text: str, customer: str) -> bytes:
    """A sample event shaped by the source's own JSON pointers (``customer_pointer``, ``text_pointer``,
    ``type_pointer``), so the gateway finds the customer and text where that source puts them."""
    values: dict[str, str] = {source.customer_pointer: customer, source.text_pointer: text}
    if source.type_pointer:
        values.setdefault(source.type_pointer, "message.created")
    try:
        return json.dumps(jsonpointer.build(values)).encode()
    except ValueError as exc:
        raise ConfigError(f"webhooks.sources.{name}: cannot build a sample event: {exc}") from exc


def send_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source")
    p.add_argument("text")
    p.add_argument("--customer", default="cus_dev")
    p.description = (
        "POST a Standard Webhooks event to /webhooks/SOURCE, signed with the first secret of SOURCE's secret_env; "
        "the body puts the customer and text where SOURCE's customer_pointer and text_pointer say."
    )


def sample(settings: Settings, args: argparse.Namespace) -> SampleRequest:
    sources = settings.load_file().webhooks.sources
    if args.source not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise ConfigError(f"no webhook source {args.source!r} in gateway.toml (GATEWAY_CONFIG); known: {known}")
    source = sources[args.source]
    key = secret_key(source.secrets(args.source)[0].get_secret_value())
    body = webhook_body(source, args.source, args.text, args.customer)
    headers = signature_headers(key, f"msg_{uuid.uuid4().hex}", int(time.time()), body)
    headers["Content-Type"] = "application/json"
    return SampleRequest(f"/webhooks/{args.source}", body, headers)


PLATFORM = Platform(
    name="webhook",
    rate_policy=lambda _settings: Unlimited(
        why="the source's own service; its 429 and Retry-After are honoured by the sender's retries"
    ),
    conversation_key="webhook:{source}:{customer}",
    endpoints=(Endpoint("/webhooks/{source}"),),
    inbound=inbound,
    outbound=outbound,
    send_arguments=send_arguments,
    sample=sample,
    send_help="a Standard Webhooks event for a configured source",
)
