"""Signed callbacks to a webhook source's ``reply_url`` (Standard Webhooks).

The ``webhook-id`` of a callback is the outbound message id, stable across
redeliveries, so the receiver can deduplicate exactly as we do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from connectors.outbound import TRANSPORT_ERRORS, transport_error
from connectors.webhooks.signing import signature_headers
from gateway.core.errors import RateLimited, SendError
from gateway.core.events import OutboundMessage


class WebhookSender:
    platform = "webhook"

    def __init__(self, keys: Mapping[str, bytes], timeout: float = 10.0) -> None:
        """``keys`` maps each source name to the key that signs its callbacks."""
        self._keys = dict(keys)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _body(self, message: OutboundMessage) -> bytes:
        handoff = message.extra.get("handoff")
        if isinstance(handoff, dict):  # a human handoff notice (gateway/core/handoff.py)
            return json.dumps(
                {
                    "type": "gateway.handoff",
                    "id": message.id,
                    "conversation_key": message.conversation_key,
                    "text": message.text,
                    **handoff,
                }
            ).encode()
        return json.dumps(
            {
                "type": f"agent.{message.action}",
                "id": message.id,
                "in_reply_to": message.event_id,
                "conversation_key": message.conversation_key,
                "customer": message.to.channel,
                "text": message.text,
                **({"emoji": message.emoji} if message.emoji else {}),
            }
        ).encode()

    async def send(self, message: OutboundMessage) -> dict[str, Any]:
        if message.action == "typing":
            return {"skipped": "webhooks have no typing indicator"}
        url = message.to.reply_url
        key = self._keys.get(message.to.bot)
        if not url or key is None:
            raise SendError(f"webhook source {message.to.bot!r} has no reply_url or key", platform="webhook")
        body = self._body(message)
        headers = signature_headers(key, message.id, int(time.time()), body)
        headers["content-type"] = "application/json"
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(url, data=body, headers=headers) as resp:
                if resp.status == 429:
                    retry_after = float(resp.headers.get("Retry-After", "1") or 1)
                    raise RateLimited("callback answered 429", platform="webhook", retry_after=retry_after)
                if resp.status >= 300:
                    raise SendError(f"callback answered HTTP {resp.status}", platform="webhook")
                return {"status": resp.status}
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, platform="webhook", target=url) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
