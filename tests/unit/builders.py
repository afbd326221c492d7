"""Tiny builders for unit tests: recorded fixtures as bytes, variations of them, neutral requests."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connectors.base import InboundRequest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
"""Recorded payloads and official vectors, with their provenance in ``tests/fixtures/README.md``."""


def fixture_bytes(name: str) -> bytes:
    """A fixture exactly as recorded (signatures cover the exact bytes)."""
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


def lower(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lower-cased, as gateway/http.py hands them to connectors."""
    return {k.lower(): v for k, v in headers.items()}


def request(target: str, body: bytes, headers: Mapping[str, str] | None = None, *, now: float = 0.0) -> InboundRequest:
    return InboundRequest(target=target, headers=lower(headers or {}), body=body, now=now)


def slack_callback(
    event: dict[str, Any], *, event_id: str = "Ev999", team: str = "T111", bot_user: str = "UBOT"
) -> dict[str, Any]:
    """An Events API ``event_callback`` envelope around ``event``."""
    return {
        "token": "verification_token",
        "team_id": team,
        "api_app_id": "A111",
        "type": "event_callback",
        "event": event,
        "event_id": event_id,
        "event_time": 1610261659,
        "authorizations": [{"team_id": team, "user_id": bot_user, "is_bot": True}],
    }


def slack_event(**fields: Any) -> dict[str, Any]:
    """A human ``message`` event in C111, overridable field by field (None removes a field)."""
    event: dict[str, Any] = {
        "type": "message",
        "text": "hello",
        "user": "W222",
        "ts": "1610261659.001400",
        "team": "T111",
        "channel": "C111",
        "event_ts": "1610261659.001400",
        "channel_type": "channel",
    }
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def telegram_update(update_id: int = 1, *, kind: str = "message", **message_fields: Any) -> dict[str, Any]:
    """A text message update in a supergroup; ``message_fields`` override (None removes)."""
    message: dict[str, Any] = {
        "message_id": 7,
        "date": 1693533691,
        "chat": {"id": -1001234, "type": "supergroup", "title": "Group"},
        "from": {"id": 42, "is_bot": False, "first_name": "Ann", "username": "ann"},
        "text": "hello",
    }
    message.update(message_fields)
    message = {k: v for k, v in message.items() if v is not None}
    return {"update_id": update_id, kind: message}


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for key in keys:
        out.pop(key, None)
    return out


def to_bytes(data: Any) -> bytes:
    return json.dumps(data).encode()
