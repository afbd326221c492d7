"""Fake WhatsApp Cloud API (the Graph API's ``/{phone number id}/messages``), in Meta's wire format.

``POST {base_url}/{phone_number_id}/messages`` with ``Authorization: Bearer <token>`` and a JSON body:

- a wrong or missing token: HTTP 401, Graph error 190 "Invalid OAuth access token";
- ``messaging_product`` other than ``"whatsapp"``, an unknown ``type``, an empty text body or one over 4,096
  characters: HTTP 400, error 100 "Invalid parameter";
- a ``text`` message to a user who has not written to that business number in the last 24 hours (as told
  with :meth:`FakeWhatsApp.customer_wrote`): HTTP 400, error 131047 "Re-engagement message" (Meta reports it
  on the call or in a ``failed`` status; this fake always on the call);
- an injected rate limit (``rate_limit_next``): HTTP 400, error 130429 "Rate limit hit" (Meta's throttling
  answers are recognised by ``error.code``; ``retry_after`` is not a Graph header);
- otherwise 200 ``{"messaging_product": "whatsapp", "contacts": [...], "messages": [{"id": "wamid..."}]}``
  for messages and reactions, ``{"success": true}`` for a read receipt with a typing indicator.

``messages`` holds the JSON bodies of the accepted ``text`` messages, ``reactions`` of the reactions.
Followed: Cloud API "Send messages", "Typing indicators" and "Error codes", Graph API v25.0 (2026-12).
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from tests.fakes.base import ChatFake, json_response, run_token_cli

__all__ = ["FakeWhatsApp"]

VERSION = "v25.0"
WINDOW = 24 * 3600.0


def graph_error(status: int, code: int, message: str, details: str | None = None) -> web.Response:
    error: dict[str, Any] = {"message": f"(#{code}) {message}", "type": "OAuthException", "code": code}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = "AbCdEfGhIjKlMnOpQrStUvW"
    return json_response({"error": error}, status=status)


class _Invalid(Exception):
    pass


class FakeWhatsApp(ChatFake):
    name = "FakeWhatsApp"

    def __init__(self, token: str = "EAAG-test-token", host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.token = token
        self._last_inbound: dict[tuple[str, str], float] = {}
        self._serial = 0

    @property
    def base_url(self) -> str:
        """What to set ``WHATSAPP_API_URL`` to: the root with the Graph API version."""
        return f"{self.root_url}/{VERSION}"

    def customer_wrote(self, number: str, user: str, at: float | None = None) -> None:
        """Meta's view of the 24-hour window: ``user`` wrote to business number ``number`` at ``at``."""
        self._last_inbound[(number, user)] = time.time() if at is None else at

    def reset(self) -> None:
        super().reset()
        self._last_inbound.clear()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/{number}/messages", self._messages_endpoint)

    def rate_limit_response(self, method: str, retry_after: int) -> web.StreamResponse:
        # tests/fixtures/whatsapp_error_130429.json
        return graph_error(
            400,
            130429,
            "Rate limit hit",
            "Message failed to send because there were too many messages sent from this phone number in a short "
            "period of time",
        )

    def failure_response(self, method: str, status: int) -> web.StreamResponse:
        return graph_error(status, 2, "Service temporarily unavailable")

    async def _messages_endpoint(self, request: web.Request) -> web.StreamResponse:
        number = request.match_info["number"]
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        args: dict[str, Any] = body if isinstance(body, dict) else {"_unparsed": raw[:200].decode(errors="replace")}
        method = "typing" if "typing_indicator" in args else str(args.get("type", "?"))

        def check_auth() -> web.StreamResponse | None:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
            return None

        return await self.handle(request, method, args, lambda: self._answer(number, args), check_auth=check_auth)

    def _answer(self, number: str, args: dict[str, Any]) -> web.StreamResponse:
        try:
            return self._send(number, args)
        except _Invalid as exc:
            return graph_error(400, 100, "Invalid parameter", str(exc))

    def _send(self, number: str, args: dict[str, Any]) -> web.StreamResponse:
        if args.get("messaging_product") != "whatsapp":
            raise _Invalid("messaging_product must be 'whatsapp'")
        if args.get("status") == "read":
            if not str(args.get("message_id", "")).startswith("wamid."):
                raise _Invalid("message_id is not a WhatsApp message id")
            return json_response({"success": True})
        to = args.get("to")
        if not isinstance(to, str) or not to.isdigit():
            raise _Invalid("to must be the user's phone number (wa_id)")
        kind = args.get("type", "text")
        if kind == "text":
            body = (args.get("text") or {}).get("body") if isinstance(args.get("text"), dict) else None
            if not isinstance(body, str) or not body.strip() or len(body) > 4096:
                raise _Invalid("text.body must be 1 to 4096 characters")
            last = self._last_inbound.get((number, to))
            if last is None or time.time() - last > WINDOW:
                return graph_error(
                    400,
                    131047,
                    "Re-engagement message",
                    "Message failed to send because more than 24 hours have passed since the customer last "
                    "replied to this number.",
                )
            self._messages.append({"phone_number_id": number, **args})
        elif kind == "reaction":
            reaction = args.get("reaction")
            if not isinstance(reaction, dict) or not str(reaction.get("message_id", "")).startswith("wamid."):
                raise _Invalid("reaction.message_id is not a WhatsApp message id")
            self._reactions.append({"phone_number_id": number, **args})
        else:
            raise _Invalid(f"type {kind!r} is not supported by this fake")
        self._serial += 1
        return json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": f"wamid.FAKE{self._serial:010d}"}],
            }
        )


if __name__ == "__main__":
    raise SystemExit(run_token_cli(FakeWhatsApp, "EAAG-test-token"))
