"""Teams replies through the Bot Connector REST API (v3), with the bot's client-credentials token.

- ``reply``: ``POST {serviceUrl}v3/conversations/{conversation id}/activities/{activity id}`` ("Reply to
  activity"), a ``message`` activity with ``replyToId``: in a channel it lands in the message's reply chain.
- ``typing``: ``POST {serviceUrl}v3/conversations/{conversation id}/activities``, a ``typing`` activity.
- ``react``: bots cannot add reactions through the Bot Framework: skipped, said so in the result.

The conversation and activity ids go into the path percent-encoded (``19:…@thread.tacv2;messageid=…``), as
the SDKs encode them. A 429 is :class:`RateLimited` with its ``Retry-After``; a 401 drops the cached token and
is retried (the connector refused it, nothing was posted); any other refusal is a :class:`SendError` that is
not retried (Teams asks to retry 502 and 504 too, but a resent post the connector had accepted would be a
duplicate in the chat).

Followed: Bot Framework REST API reference, "Reply to activity" and "Send to conversation" (v3), and Teams
"Optimize your bot with rate limiting", checked 2026-12.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from connectors.outbound import TRANSPORT_ERRORS, transport_error
from connectors.teams.token import BotToken
from gateway.core.errors import RateLimited, SendError
from gateway.core.events import OutboundMessage


def _retry_after(value: str | None) -> float:
    try:
        return max(float(value or 1), 0.0)
    except ValueError:
        return 1.0


class TeamsSender:
    platform = "teams"

    def __init__(self, app_id: str, password: str, token_url: str, *, timeout: float = 10.0) -> None:
        self._app_id = app_id
        self.token = BotToken(app_id, password, token_url)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _request(self, message: OutboundMessage) -> tuple[URL, dict[str, Any]] | None:
        to = message.to
        if not to.reply_url:
            raise SendError("this Teams address has no serviceUrl", platform="teams")
        base = to.reply_url if to.reply_url.endswith("/") else to.reply_url + "/"
        conversation = f"{base}v3/conversations/{quote(to.channel, safe='')}/activities"
        bot = {"id": f"28:{self._app_id}"}
        if message.action == "typing":
            return URL(conversation, encoded=True), {"type": "typing", "from": bot}
        if message.action == "react":
            return None
        if message.action != "reply":
            raise SendError(f"Teams does not support action {message.action!r}", platform="teams")
        body: dict[str, Any] = {
            "type": "message",
            "from": bot,
            "conversation": {"id": to.channel},
            "text": message.text,
        }
        if to.message is None:
            return URL(conversation, encoded=True), body
        body["replyToId"] = to.message
        return URL(f"{conversation}/{quote(to.message, safe='')}", encoded=True), body

    async def send(self, message: OutboundMessage) -> dict[str, Any]:
        request = self._request(message)
        if request is None:
            return {"skipped": "Teams bots cannot add reactions"}
        url, body = request
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        token = await self.token.get(self._session)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        try:
            async with self._session.post(url, data=json.dumps(body).encode(), headers=headers) as resp:
                raw = await resp.read()
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, platform="teams", target=str(url)) from exc
        if status < 300:
            answer = json.loads(raw or b"{}")
            return {"id": answer["id"]} if isinstance(answer, dict) and "id" in answer else {}
        if status == 429:
            raise RateLimited("the Bot Connector answered 429", platform="teams", retry_after=_retry_after(retry_after))
        if status == 401:
            self.token.invalidate(token)
            raise SendError(
                "the Bot Connector refused the token (401): fetching a new one", platform="teams", retryable=True
            )
        detail = raw[:300].decode(errors="replace")
        raise SendError(f"the Bot Connector refused: HTTP {status} {detail}", platform="teams")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
