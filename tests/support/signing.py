"""Signed requests built with the gateway's own signing routines."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from connectors.slack.verify import sign as slack_sign
from connectors.webhooks.signing import secret_key, signature_headers


def slack_headers(secret: str, body: bytes, *, ts: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": slack_sign(secret, stamp, body),
        "Content-Type": "application/json",
    }


def slack_message(
    text: str,
    *,
    channel: str = "C111",
    thread_ts: str | None = None,
    ts: str | None = None,
    user: str = "W222",
    event_id: str | None = None,
    team: str = "T111",
    **event_extra: Any,
) -> bytes:
    ts = ts or f"{time.time():.6f}"
    event: dict[str, Any] = {
        "type": "message",
        "text": text,
        "user": user,
        "ts": ts,
        "channel": channel,
        "team": team,
        "event_ts": ts,
        "channel_type": "channel",
        **event_extra,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    envelope = {
        "token": "verification_token",
        "team_id": team,
        "api_app_id": "A111",
        "type": "event_callback",
        "event": event,
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:12]}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team, "user_id": "UBOT", "is_bot": True}],
    }
    return json.dumps(envelope).encode()


def telegram_message(
    text: str,
    *,
    chat_id: int = 1111111,
    update_id: int = 1,
    message_id: int = 1,
    thread_id: int | None = None,
    is_bot: bool = False,
) -> bytes:
    message: dict[str, Any] = {
        "message_id": message_id,
        "date": int(time.time()),
        "text": text,
        "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
        "from": {"id": 42, "is_bot": is_bot, "first_name": "Test"},
    }
    if thread_id is not None:
        message["message_thread_id"] = thread_id
        message["is_topic_message"] = True
        message["chat"]["is_forum"] = True
    return json.dumps({"update_id": update_id, "message": message}).encode()


def webhook_headers(secret: str, body: bytes, *, msg_id: str | None = None, ts: int | None = None) -> dict[str, str]:
    headers = signature_headers(
        secret_key(secret), msg_id or f"msg_{uuid.uuid4().hex}", int(time.time()) if ts is None else ts, body
    )
    headers["content-type"] = "application/json"
    return headers
