"""Signed requests built with the gateway's own signing routines."""

from __future__ import annotations

import time
import uuid
from typing import Any

from connectors.slack.verify import sign as slack_sign
from connectors.webhooks.signing import secret_key, signature_headers
from gateway.core import samples


def slack_headers(secret: str, body: bytes, *, ts: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": slack_sign(secret, stamp, body),
        "Content-Type": "application/json",
    }


def slack_message(text: str, *, channel: str = "C111", team: str = "T111", user: str = "W222", **kw: Any) -> bytes:
    """:func:`gateway.core.samples.slack_message` with the fixtures' team, channel and user."""
    return samples.slack_message(text, channel=channel, team=team, user=user, **kw)


def telegram_message(
    text: str, *, update_id: int = 1, message_id: int = 1, thread_id: int | None = None, **kw: Any
) -> bytes:
    """:func:`gateway.core.samples.telegram_message` with fixed ids (tests choose them explicitly)."""
    return samples.telegram_message(text, update_id=update_id, message_id=message_id, topic=thread_id, **kw)


def webhook_headers(secret: str, body: bytes, *, msg_id: str | None = None, ts: int | None = None) -> dict[str, str]:
    headers = signature_headers(
        secret_key(secret), msg_id or f"msg_{uuid.uuid4().hex}", int(time.time()) if ts is None else ts, body
    )
    headers["content-type"] = "application/json"
    return headers
