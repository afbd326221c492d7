"""Discord replies through the REST API (``DISCORD_API_URL``, v10), paced by Discord's own headers (buckets.py).

- A reply to a Gateway message: ``POST /channels/{channel or thread}/messages`` with ``Authorization: Bot
  <token>``, a ``message_reference`` to the message, and a ``nonce`` derived from the outbound message id with
  ``enforce_nonce: true``: Discord then answers a repeated post of the same nonce (within a few minutes) with the
  message it already created instead of a second one, so a call that failed after it left may be sent again.
- A reply to an interaction (its address has ``response_url = "webhooks/{application}/{token}"``): the first
  reply of the interaction edits the deferred "thinking..." response, ``PATCH /webhooks/{application}/{token}/
  messages/@original`` (idempotent: sent twice it edits twice to the same text); later ones are follow-ups,
  ``POST /webhooks/{application}/{token}?wait=true``. Which reply is first is claimed in the store per
  interaction (``discord:original:{interaction id}``), so a redelivered first reply edits again and never posts;
  a failed edit gives the claim back, so the next reply edits "thinking..." rather than leaving it there.
  Interaction webhooks need no bot token; the interaction token lasts 15 minutes: a reply refused for an expired
  token (401) goes to the interaction's channel as a plain message instead, when ``DISCORD_BOT_TOKEN`` is set.
- ``typing``: ``POST /channels/{id}/typing`` (nothing for an interaction: Discord shows "thinking..."),
  ``react``: ``PUT /channels/{id}/messages/{message}/reactions/{emoji}/@me``, ``edit``: ``PATCH`` of the message.

Text over Discord's 2,000 characters is cut (with ``…``); ``allowed_mentions`` is empty, so an echoed
``@everyone`` pings nobody. A 429 is :class:`RateLimited` with the body's ``retry_after``; 401 (a wrong bot token
or interaction token), 403 and 404 (unknown channel, message or webhook) are not retried; a 5xx or a failure
after sending is retried only for the idempotent calls (nonce'd posts, edits, reactions).

Followed: Discord developer docs "Message" (Create Message, ``nonce``, ``enforce_nonce``, ``message_reference``,
``allowed_mentions``), "Receiving and Responding" (followup messages, Edit Original Interaction Response),
"Channel" (Trigger Typing Indicator), "Rate Limits", API v10, checked 2026-12.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from connectors.discord.buckets import Buckets
from connectors.outbound import TRANSPORT_ERRORS
from gateway.core.errors import RateLimited, SendError
from gateway.core.events import OutboundMessage
from gateway.core.store.base import Store

MAX_TEXT = 2000
#: How long the interaction's "first reply" claim is kept: the interaction token's lifetime.
TOKEN_LIFETIME = 15 * 60.0
NO_MENTIONS: dict[str, Any] = {"parse": []}
#: Discord asks bots for ``DiscordBot ($url, $versionNumber)``.
USER_AGENT = "DiscordBot (chat-gateway, 0.1.0)"


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def nonce(message_id: str) -> str:
    """Discord's nonce is at most 25 characters: the outbound id's digest, stable across redeliveries."""
    return hashlib.sha256(message_id.encode()).hexdigest()[:25]


class TokenExpired(SendError):
    """401 on an interaction webhook: its token is past its 15 minutes (or was never deferred)."""


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    #: The rate limit route: method + the top-level resource (``channels/{id}``, ``webhooks/{id}/{token}``).
    route: str
    body: dict[str, Any] | None
    bot_auth: bool
    #: Safe to send again after it may have left (nonce'd, or an edit to the same text).
    idempotent: bool


class DiscordSender:
    platform = "discord"

    def __init__(
        self, bot_token: str | None, api_url: str, store: Store | None, *, timeout: float = 10.0, max_wait: float = 60.0
    ) -> None:
        self._token = bot_token
        self._api_url = api_url.rstrip("/")
        self._store = store
        self._claims: dict[str, str] = {}  # without a store (unit tests)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_wait = max_wait
        self._session: aiohttp.ClientSession | None = None
        self.buckets = Buckets()

    async def _first_reply(self, message: OutboundMessage) -> bool:
        key = _original_key(message)
        if self._store is not None:
            existing = await self._store.claim(key, message.id, TOKEN_LIFETIME)
        else:
            existing = self._claims.setdefault(key, message.id)
            existing = None if existing == message.id else existing
        return existing is None or existing == message.id

    async def _release_first(self, message: OutboundMessage) -> None:
        """The edit of ``@original`` failed: the next reply of the interaction is its first again."""
        key = _original_key(message)
        self._claims.pop(key, None)
        if self._store is not None:
            with contextlib.suppress(Exception):
                await self._store.delete(key)

    async def _interaction_call(self, message: OutboundMessage, hook: str) -> Call | None:
        if message.action in ("typing", "react"):
            return None
        route = f"webhooks:{hook}"
        body = {"content": _cut(message.text), "allowed_mentions": NO_MENTIONS}
        if message.action == "edit":
            target = message.target_message or "@original"
            return Call("PATCH", f"{hook}/messages/{target}", route, body, False, True)
        if message.action != "reply":
            raise SendError(f"Discord does not support action {message.action!r}", platform="discord")
        if await self._first_reply(message):
            return Call("PATCH", f"{hook}/messages/@original", route, body, False, True)
        return Call("POST", f"{hook}?wait=true", route, body, False, False)

    def _channel_call(self, message: OutboundMessage) -> Call:
        to = message.to
        channel = to.thread or to.channel
        route, base = f"channels:{channel}", f"channels/{channel}"
        if message.action == "typing":
            return Call("POST", f"{base}/typing", route, None, True, True)
        if message.action == "react":
            target = message.target_message or to.message
            if target is None:
                raise SendError("nothing to react to: no Discord message id", platform="discord")
            emoji = quote(message.emoji or "👀", safe="")
            return Call("PUT", f"{base}/messages/{target}/reactions/{emoji}/@me", route + ":react", None, True, True)
        body: dict[str, Any] = {"content": _cut(message.text), "allowed_mentions": NO_MENTIONS}
        if message.action == "edit":
            if message.target_message is None:
                raise SendError("nothing to edit: no Discord message id", platform="discord")
            return Call("PATCH", f"{base}/messages/{message.target_message}", route, body, True, True)
        if message.action != "reply":
            raise SendError(f"Discord does not support action {message.action!r}", platform="discord")
        body |= {"nonce": nonce(message.id), "enforce_nonce": True}
        if to.message:
            body["message_reference"] = {"message_id": to.message, "fail_if_not_exists": False}
        return Call("POST", f"{base}/messages", route, body, True, True)

    async def send(self, message: OutboundMessage) -> dict[str, Any]:
        hook = message.to.response_url
        call = await self._interaction_call(message, hook) if hook else self._channel_call(message)
        if call is None:
            return {"skipped": f"no {message.action} for a Discord interaction"}
        if call.bot_auth and not self._token:
            raise SendError("DISCORD_BOT_TOKEN is not set: cannot post to a Discord channel", platform="discord")
        try:
            return await self._call(call)
        except TokenExpired:
            if message.action != "reply" or not self._token:
                raise
            return await self._in_channel(message)
        except SendError:
            if call.path.endswith("/messages/@original") and message.action == "reply":
                await self._release_first(message)
            raise

    async def _in_channel(self, message: OutboundMessage) -> dict[str, Any]:
        """An interaction's reply after its token expired (a turn that waited over 15 minutes): a channel
        message instead, so the answer is not lost (Discord refused the edit, so it is not a second copy)."""
        to = message.to.model_copy(update={"message": None, "response_url": None})
        answer = await self._call(self._channel_call(message.model_copy(update={"to": to})))
        return {**answer, "fallback": "channel message: the interaction token had expired"}

    async def _call(self, call: Call) -> dict[str, Any]:
        wait = self.buckets.wait_for(call.route)
        if wait > self._max_wait:
            raise RateLimited("Discord's rate limit bucket is spent", platform="discord", retry_after=wait)
        if wait > 0:
            await asyncio.sleep(wait)
        headers = {"User-Agent": USER_AGENT}
        if call.bot_auth:
            headers["Authorization"] = f"Bot {self._token}"
        data = None
        if call.body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(call.body).encode()
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = f"{self._api_url}/{call.path}"
        try:
            async with self._session.request(call.method, url, data=data, headers=headers) as resp:
                raw = await resp.read()
                status, answer_headers = resp.status, resp.headers
        except TRANSPORT_ERRORS as exc:
            connected = not isinstance(exc, aiohttp.ClientConnectorError)
            where = f"{call.method} {call.route.split(':')[0]}"
            raise SendError(
                f"Discord call {where} failed{' after sending' if connected else ''}: {type(exc).__name__}",
                platform="discord",
                retryable=call.idempotent or not connected,
            ) from exc
        return self._answer(call, status, answer_headers, raw)

    def _answer(self, call: Call, status: int, headers: Any, raw: bytes) -> dict[str, Any]:
        self.buckets.update(call.route, headers)
        if status < 300:
            answer = json.loads(raw) if raw else {}
            return {"message_id": str(answer["id"])} if isinstance(answer, dict) and "id" in answer else {}
        if status == 429:
            wait = self.buckets.limited(call.route, headers, raw)
            raise RateLimited(f"Discord answered 429 on {call.method}", platform="discord", retry_after=wait)
        detail = _error(raw)
        if status == 401 and call.route.startswith("webhooks:"):
            raise TokenExpired(f"Discord refused the interaction token: HTTP 401 {detail}", platform="discord")
        retry = status >= 500 and call.idempotent
        raise SendError(f"Discord refused {call.method}: HTTP {status} {detail}", platform="discord", retryable=retry)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _original_key(message: OutboundMessage) -> str:
    return f"discord:original:{message.to.message}"


def _error(raw: bytes) -> str:
    """Discord's error body: ``{"message": "Unknown Channel", "code": 10003}``."""
    try:
        answer = json.loads(raw)
    except ValueError:
        return raw[:200].decode(errors="replace")
    if not isinstance(answer, dict):
        return ""
    return f"code {answer.get('code')}: {str(answer.get('message', ''))[:200]}"
