"""Telegram ingress: ``POST /telegram/{bot}``.

Telegram sends the ``secret_token`` given to ``setWebhook`` in
``X-Telegram-Bot-Api-Secret-Token``; it is compared in constant time. There
is no timestamp to check: ``update_id`` dedupe covers replays.
https://core.telegram.org/bots/api#setwebhook
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.base import ConnectorResult, InboundRequest, parse_json_object, secrets_equal
from connectors.telegram.parse import event_from_update
from gateway.core.errors import BadSignature, NotFound

SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name


class TelegramConnector:
    platform = "telegram"

    def __init__(self, secret_tokens: Mapping[str, str]) -> None:
        """``secret_tokens`` maps each enabled bot name to its webhook secret token."""
        self._secrets = dict(secret_tokens)

    def handles(self, target: str) -> bool:
        return target in self._secrets

    def handle(self, request: InboundRequest) -> ConnectorResult:
        expected = self._secrets.get(request.target)
        if expected is None:
            raise NotFound(f"no Telegram bot named {request.target!r} is enabled", platform="telegram")
        given = request.headers.get(SECRET_HEADER)
        if not given:
            raise BadSignature("missing X-Telegram-Bot-Api-Secret-Token header", platform="telegram")
        if not secrets_equal(given, expected):
            raise BadSignature("X-Telegram-Bot-Api-Secret-Token does not match", platform="telegram")
        data = parse_json_object(request.body, platform="telegram")
        return ConnectorResult(events=[event_from_update(request.target, data)])
