"""Toy chat: ``POST /toy/{bot}`` with ``{"id", "chat", "user", "text"}``, signed ``X-Toy-Signature: hex
HMAC-SHA256(TOY_SECRET, timestamp + "." + body)`` with ``X-Toy-Timestamp``; replies go to
``POST {TOY_API_URL}/send`` with ``Authorization: Bearer TOY_TOKEN``."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from typing import Any

import aiohttp

from connectors.base import Connector, ConnectorResult, InboundRequest, check_timestamp, parse_json_object
from connectors.outbound import TRANSPORT_ERRORS, PlatformSender, transport_error
from connectors.platform import Bucket, Endpoint, Parts, Platform
from gateway.core.errors import BadSignature, MalformedPayload, RateLimited, SendError
from gateway.core.events import Event, EventKind, OutboundMessage, ReplyAddress, Sender
from gateway.core.routing import conversation_key


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class ToyConnector:
    platform = "toy"

    def __init__(self, secret: str, window: int) -> None:
        self._secret = secret
        self._window = window

    def handles(self, target: str) -> bool:
        return target == "main"

    def handle(self, request: InboundRequest) -> ConnectorResult:
        ts = request.headers.get("x-toy-timestamp")
        check_timestamp(ts, request.now, self._window, platform="toy", header="X-Toy-Timestamp")
        expected = sign(self._secret, ts or "", request.body)
        if not hmac.compare_digest(expected, request.headers.get("x-toy-signature", "")):
            raise BadSignature("X-Toy-Signature does not match", platform="toy")
        data = parse_json_object(request.body, platform="toy")
        if not all(isinstance(data.get(k), str) for k in ("id", "chat", "user", "text")):
            raise MalformedPayload("id, chat, user and text must be strings", platform="toy")
        to = ReplyAddress(platform="toy", bot=request.target, channel=data["chat"], user=data["user"])
        event = Event(
            platform="toy",
            delivery_id=data["id"],
            kind=EventKind.MESSAGE,
            conversation_key=conversation_key(to),
            sender=Sender(id=data["user"]),
            text=data["text"],
            reply_to=to,
            message_ref=data["id"],
            raw=data,
        )
        return ConnectorResult([event], body=b'{"ok":true}', content_type="application/json")


class ToySender:
    platform = "toy"

    def __init__(self, api_url: str, token: str) -> None:
        self._url = api_url.rstrip("/") + "/send"
        self._token = token
        self._session: aiohttp.ClientSession | None = None

    async def send(self, message: OutboundMessage) -> dict[str, Any]:
        if message.action != "reply":
            return {"skipped": f"toy chat has no {message.action}"}
        self._session = self._session or aiohttp.ClientSession()
        body = {"chat": message.to.channel, "text": message.text, "id": message.id}
        try:
            async with self._session.post(
                self._url, json=body, headers={"Authorization": f"Bearer {self._token}"}
            ) as resp:
                if resp.status == 429:
                    raise RateLimited("toy API answered 429", platform="toy", retry_after=1.0)
                if resp.status != 200:
                    raise SendError(f"toy API answered {resp.status}", platform="toy")
                answer: dict[str, Any] = await resp.json()
                return answer
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, platform="toy", target=self._url) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class ToyRates:
    def local(self, to: ReplyAddress) -> Sequence[Bucket]:
        return (Bucket(f"toy:{to.bot}:{to.channel}", 100.0, 10.0),)

    def shared(self, to: ReplyAddress) -> Sequence[Bucket]:
        return ()


def inbound(parts: Parts, notes: list[str]) -> Connector | None:
    secret = os.environ.get("TOY_SECRET")
    if not secret:
        notes.append("TOY_SECRET is not set: the toy connector is disabled (404)")
        return None
    notes.append("Toy connector enabled: POST /toy/main")
    return ToyConnector(secret, parts.settings.replay_window)


def outbound(parts: Parts) -> PlatformSender | None:
    url, token = os.environ.get("TOY_API_URL"), os.environ.get("TOY_TOKEN")
    return ToySender(url, token) if url and token else None


PLATFORM = Platform(
    name="toy",
    rate_policy=lambda _settings: ToyRates(),
    conversation_key="toy:{bot}:{chat}",
    endpoints=(Endpoint("/toy/{bot}"),),
    inbound=inbound,
    outbound=outbound,
)
