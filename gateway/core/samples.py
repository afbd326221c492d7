"""Sample platform payloads, shaped like the real ones, for ``gateway send`` and tests."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any


def slack_message(
    text: str,
    *,
    channel: str = "C0DEV",
    thread_ts: str | None = None,
    ts: str | None = None,
    user: str = "U0DEV",
    event_id: str | None = None,
    team: str = "T0DEV",
    **event_extra: Any,
) -> bytes:
    """An Events API ``event_callback`` envelope carrying a ``message`` event."""
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
        "token": "unused",
        "team_id": team,
        "api_app_id": "A0DEV",
        "type": "event_callback",
        "event": event,
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:12].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team, "user_id": "UBOT", "is_bot": True}],
    }
    return json.dumps(envelope).encode()


def telegram_message(
    text: str,
    *,
    chat_id: int = 1111111,
    update_id: int | None = None,
    message_id: int | None = None,
    topic: int | None = None,
    is_bot: bool = False,
    user_id: int = 42,
) -> bytes:
    """A webhook ``Update`` with a text message (in a forum topic when ``topic`` is given)."""
    stamp = time.time_ns()
    message: dict[str, Any] = {
        "message_id": message_id if message_id is not None else stamp % 2_000_000_000,
        "date": int(time.time()),
        "text": text,
        "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
        "from": {"id": user_id, "is_bot": is_bot, "first_name": "Dev"},
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    if topic is not None:
        message["message_thread_id"] = topic
        message["is_topic_message"] = True
        message["chat"]["is_forum"] = True
    uid = update_id if update_id is not None else stamp // 1000 % 2_000_000_000
    return json.dumps({"update_id": uid, "message": message}).encode()


def webhook_payload(text: str, *, customer: str = "cus_dev", kind: str = "message.created") -> bytes:
    """A generic JSON event for a webhook source using the default pointers (/customer_id, /text)."""
    return json.dumps({"type": kind, "customer_id": customer, "text": text}).encode()
