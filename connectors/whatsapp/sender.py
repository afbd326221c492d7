"""WhatsApp replies: ``POST {WHATSAPP_API_URL}/{phone number id}/messages`` with the access token as Bearer.

- ``reply``: a ``text`` message to the user's ``wa_id`` (bodies over Meta's 4,096 characters are cut, with
  ``…``). Before the call, the 24-hour customer service window (window.py): a reply to a user who has not
  written for 24 hours is refused here, not retried, and dead-lettered with a reason saying a template
  message is needed; Meta's own 131047 "Re-engagement message" says the same.
- ``react``: a ``reaction`` message on the user's message. ``typing``: marks the user's message read and shows
  the typing indicator (dismissed by the reply or after 25 s). WhatsApp has no edits of business messages.

Graph errors are read by ``error.code``, not the HTTP status (Meta answers most with 400): 130429 (throughput
of the business number), 131056 (pair rate limit: one business number to one user), 4 (the app's call
limit) and 80007 (the WhatsApp Business Account's limit) are :class:`RateLimited`, waited and retried in the
chat's lane; everything else after the request left is a :class:`SendError` that is not retried (a resent
message that Meta had accepted would be a duplicate).

Followed: Cloud API "Send messages", "Typing indicators", "Error codes" and "Throughput", Graph API v25.0,
checked 2026-12.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp

from connectors.outbound import TRANSPORT_ERRORS, transport_error
from connectors.whatsapp import window
from gateway.core.errors import RateLimited, SendError
from gateway.core.events import OutboundMessage
from gateway.core.store.base import Store

MAX_TEXT = 4096
#: Meta's throttling codes, and how long to wait when the answer names no Retry-After.
RATE_LIMIT_WAIT = {130429: 1.0, 131056: 6.0, 4: 30.0, 80007: 30.0}
RE_ENGAGEMENT = 131047
TEMPLATE_NEEDED = "a template message is needed (WhatsApp's 24-hour customer service window is closed)"


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _graph_error(body: bytes) -> tuple[int | None, str]:
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        return None, body[:200].decode(errors="replace")
    code = error.get("code") if isinstance(error, dict) else None
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    details = (error.get("error_data") or {}).get("details") if isinstance(error, dict) else None
    return (code if isinstance(code, int) else None), (f"{message}: {details}" if details else message)[:500]


class WhatsAppSender:
    platform = "whatsapp"

    def __init__(self, access_token: str, api_url: str, store: Store | None, *, timeout: float = 10.0) -> None:
        self._token = access_token
        self._api_url = api_url.rstrip("/")
        self._store = store
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _body(self, message: OutboundMessage) -> dict[str, Any]:
        to = message.to
        if message.action == "reply":
            return {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to.channel,
                "type": "text",
                "text": {"preview_url": False, "body": _cut(message.text)},
            }
        target = message.target_message or to.message
        if target is None:
            raise SendError(f"nothing to {message.action}: no WhatsApp message id", platform="whatsapp")
        if message.action == "react":
            reaction = {"message_id": target, "emoji": message.emoji or "👀"}
            return {"messaging_product": "whatsapp", "to": to.channel, "type": "reaction", "reaction": reaction}
        if message.action == "typing":
            return {
                "messaging_product": "whatsapp",
                "status": "read",
                "message_id": target,
                "typing_indicator": {"type": "text"},
            }
        raise SendError(f"WhatsApp does not support action {message.action!r}", platform="whatsapp")

    async def _check_window(self, message: OutboundMessage) -> None:
        if self._store is None or message.action == "typing":
            return
        last = await window.last_inbound(self._store, message.to.bot, message.to.channel)
        if last is None:
            raise SendError(f"{TEMPLATE_NEEDED}: the user has not written in the last 24 hours", platform="whatsapp")
        age = time.time() - last
        if age > window.WINDOW:
            raise SendError(f"{TEMPLATE_NEEDED}: the user last wrote {age / 3600:.1f} h ago", platform="whatsapp")

    async def send(self, message: OutboundMessage) -> dict[str, Any]:
        body = self._body(message)
        await self._check_window(message)
        url = f"{self._api_url}/{message.to.bot}/messages"
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(url, data=json.dumps(body).encode(), headers=headers) as resp:
                raw = await resp.read()
                if resp.status < 300:
                    answer = json.loads(raw or b"{}")
                    ids = [m.get("id") for m in answer.get("messages", []) if isinstance(m, dict)]
                    return {"message_id": ids[0]} if ids else {}
                retry_after = resp.headers.get("Retry-After")
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, platform="whatsapp", target=url) from exc
        code, reason = _graph_error(raw)
        if code in RATE_LIMIT_WAIT or resp.status == 429:
            wait = float(retry_after) if retry_after and retry_after.isdigit() else RATE_LIMIT_WAIT.get(code or 0, 1.0)
            raise RateLimited(f"WhatsApp rate limit ({code}): {reason}", platform="whatsapp", retry_after=wait)
        if code == RE_ENGAGEMENT:
            raise SendError(f"{TEMPLATE_NEEDED}: Meta answered {code} {reason}", platform="whatsapp")
        raise SendError(f"WhatsApp refused: HTTP {resp.status}, code {code}: {reason}", platform="whatsapp")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
