"""Signed callbacks to a webhook source's ``reply_url`` (Standard Webhooks).

The ``webhook-id`` of a callback is the outbound message id, stable across
redeliveries, so the receiver can deduplicate exactly as we do.

A streamed answer reaches a source whose ``stream = "chunked"`` as ``agent.reply.delta`` callbacks (``delta``:
the new text, at ``offset`` in the answer; ``text``: all of it so far; ``webhook-id`` ``{id}:delta:{offset}``),
then the usual ``agent.reply`` with the whole text and the answer's id. Every other source gets the final
``agent.reply`` only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp

from connectors.outbound import TRANSPORT_ERRORS, transport_error
from connectors.streaming import Part, StreamIO, StreamState
from connectors.webhooks.signing import signature_headers
from gateway.core.errors import RateLimited, SendError
from gateway.core.events import OutboundMessage


class WebhookSender:
    platform = "webhook"

    def __init__(self, keys: Mapping[str, bytes], timeout: float = 10.0, *, chunked: Iterable[str] = ()) -> None:
        """``keys`` maps each source name to the key that signs its callbacks; ``chunked`` names the sources
        that get a streamed answer's deltas."""
        self._keys = dict(keys)
        self._chunked = frozenset(chunked)
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
        return await self._post(message, message.id, self._body(message))

    async def stream(self, message: OutboundMessage, state: StreamState, io: StreamIO) -> None:
        if message.final:
            await io.pace()
            await self._post(message, message.id, self._body(message.model_copy(update={"action": "reply"})))
            return
        if message.to.bot not in self._chunked:
            return
        if not state.parts:
            state.parts.append(Part())
            state.mode = "native"
        part = state.parts[0]
        if part.text.startswith(message.text):
            return  # nothing new (a retried turn catching up with what was delivered)
        offset = len(part.text) if message.text.startswith(part.text) else 0
        delta = message.text[offset:]
        if not delta:
            return
        body = json.dumps(
            {
                "type": "agent.reply.delta",
                "id": message.id,
                "in_reply_to": message.event_id,
                "conversation_key": message.conversation_key,
                "customer": message.to.channel,
                "offset": offset,
                "delta": delta,
                "text": message.text,
            }
        ).encode()
        await io.pace()
        await self._post(message, f"{message.id}:delta:{offset}", body)
        part.text = message.text
        await io.save()

    async def _post(self, message: OutboundMessage, webhook_id: str, body: bytes) -> dict[str, Any]:
        url = message.to.reply_url
        key = self._keys.get(message.to.bot)
        if not url or key is None:
            raise SendError(f"webhook source {message.to.bot!r} has no reply_url or key", platform="webhook")
        headers = signature_headers(key, webhook_id, int(time.time()), body)
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
