"""Fake Discord: the REST API (v10) and the Gateway WebSocket, in Discord's wire format.

REST, under :attr:`FakeDiscord.base_url` (``.../api/v10``, what ``DISCORD_API_URL`` is set to):

- ``GET /gateway/bot`` (bot token): ``{"url": "ws://.../gateway", "shards": 1, "session_start_limit": {...}}``;
- ``GET /channels/{id}`` (bot token): the channel object; an unknown channel is 404 ``{"message": "Unknown
  Channel", "code": 10003}``;
- ``POST /channels/{id}/messages`` (bot token): ``content`` of 1 to 2,000 characters (else 400, code 50035);
  a ``nonce`` with ``enforce_nonce`` seen from the bot in that channel within 5 minutes answers the message
  already created, and creates none; each created message is also dispatched to the live Gateway session as the
  bot's own ``MESSAGE_CREATE``, as Discord does;
- ``POST /channels/{id}/typing`` 204; ``PUT /channels/{id}/messages/{m}/reactions/{emoji}/@me`` 204;
- ``POST /interactions/{id}/{token}/callback``: the initial response as a call (within 3 s of the interaction,
  once: a second is 400 ``40060`` "Interaction has already been acknowledged."); the gateway answers in the HTTP
  response instead, which Discord treats the same;
- ``PATCH /webhooks/{application}/{token}/messages/@original`` and ``POST /webhooks/{application}/{token}``: the
  interaction's token must be one this fake delivered (:meth:`FakeDiscord.deliver`), answered with a
  deferral (type 5), and younger than 15 minutes, else 401 ``{"message": "Invalid Webhook Token", "code":
  50027}``; another application id is 404 ``Unknown Webhook`` (10015). No bot token is needed (or looked at).
- A missing or wrong ``Authorization: Bot <token>`` is 401 ``{"message": "401: Unauthorized", "code": 0}``.
- Each channel route is a bucket of ``bucket_limit`` calls per ``bucket_window`` seconds, told in
  ``X-RateLimit-Limit``/``-Remaining``/``-Reset-After``/``-Bucket``; past it (or with an injected rate limit) the
  answer is 429 ``{"message": "You are being rate limited.", "retry_after": 1.0, "global": false}`` with
  ``Retry-After`` and ``X-RateLimit-Scope: user``.

Interactions: :meth:`deliver` plays Discord's part: it signs an interaction with this fake's Ed25519 key
(:attr:`public_key`, what ``DISCORD_PUBLIC_KEY`` is set to) and POSTs it to the gateway's
``/discord/interactions``; the answer is the interaction's initial response.

Gateway (tests/fakes/discord_gateway.py), at ``ws://.../gateway`` (``resume_gateway_url``: ``ws://.../resume``):
HELLO (op 10) with ``heartbeat_interval``; a heartbeat (op 1) is ACKed (op 11) unless :attr:`ack_heartbeats` is
off; IDENTIFY (op 2) with the bot token (else close 4004) starts a session: READY (``session_id``,
``resume_gateway_url``, the bot ``user``), then a GUILD_CREATE per guild (its channels and threads); dispatches
carry ``s`` in order per session. :meth:`drop` cuts the connection; dispatches meanwhile are kept; RESUME (op 6)
with a known session replays every dispatch after its ``seq`` (and :attr:`replay_overlap` before it, as Discord
may) then RESUMED; an unknown session gets INVALID_SESSION (op 9, ``d: false``). :meth:`invalidate` and
:meth:`reconnect` send op 9 and op 7 to the live connection.

Followed: Discord developer docs "Gateway", "Gateway Events", "Opcodes and Status Codes", "Rate Limits",
"Message", "Receiving and Responding", API v10 (2026-12).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from nacl.signing import SigningKey

from connectors.discord.platform import snowflake_now
from connectors.discord.verify import sign
from tests.fakes.base import ChatFake, json_response
from tests.fakes.discord_gateway import FakeGateway

__all__ = ["FakeDiscord"]

VERSION = "v10"
TOKEN_LIFETIME = 15 * 60.0
NONCE_WINDOW = 5 * 60.0


def discord_error(status: int, code: int, message: str) -> web.Response:
    return json_response({"message": message, "code": code}, status=status)


@dataclass
class Interaction:
    id: str
    application_id: str
    channel_id: str
    created: float
    deferred: bool = False
    original: str | None = None


class FakeDiscord(FakeGateway, ChatFake):
    name = "FakeDiscord"

    def __init__(
        self,
        token: str = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.fake.bot-token",
        application_id: str = "1100000000000000001",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.application_id = application_id
        self.bot_user = {"id": application_id, "username": "gateway", "discriminator": "0", "bot": True}
        self.signing_key = SigningKey(os.urandom(32))
        self.channels: dict[str, dict[str, Any]] = {}
        self.interactions: dict[str, Interaction] = {}
        #: Accepted interaction replies: {"interaction", "kind": "original"|"followup", "content"}.
        self.interaction_replies: list[dict[str, Any]] = []
        self.bucket_limit = 5
        self.bucket_window = 5.0
        self._nonces: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._bucket_calls: dict[str, list[float]] = {}
        self.init_gateway()

    # ------------------------------------------------------------------ setup
    @property
    def base_url(self) -> str:
        return f"{self.root_url}/api/{VERSION}"

    @property
    def public_key(self) -> str:
        return bytes(self.signing_key.verify_key).hex()

    def add_channel(
        self, channel: str, *, guild: str | None = None, parent: str | None = None, kind: int | None = None
    ) -> dict[str, Any]:
        """A channel the bot can post to; with ``parent``, a public thread (type 11) of that channel."""
        data: dict[str, Any] = {"id": channel, "type": kind if kind is not None else (11 if parent else 0)}
        if guild:
            data["guild_id"] = guild
        if parent:
            data["parent_id"] = parent
        if not guild and kind is None:
            data["type"] = 1
        self.channels[channel] = data
        return data

    def add_routes(self, app: web.Application) -> None:
        api = f"/api/{VERSION}"
        app.router.add_get(f"{api}/gateway/bot", self._gateway_bot)
        app.router.add_get(f"{api}/channels/{{channel}}", self._get_channel)
        app.router.add_post(f"{api}/channels/{{channel}}/messages", self._create_message)
        app.router.add_patch(f"{api}/channels/{{channel}}/messages/{{message}}", self._edit_message)
        app.router.add_post(f"{api}/channels/{{channel}}/typing", self._typing)
        app.router.add_put(f"{api}/channels/{{channel}}/messages/{{message}}/reactions/{{emoji}}/@me", self._react)
        app.router.add_post(f"{api}/interactions/{{id}}/{{token}}/callback", self._callback)
        app.router.add_patch(f"{api}/webhooks/{{app}}/{{token}}/messages/@original", self._edit_original)
        app.router.add_post(f"{api}/webhooks/{{app}}/{{token}}", self._followup)
        self.add_gateway_routes(app)

    async def before_stop(self) -> None:
        await self.stop_gateway()

    def rate_limit_response(self, method: str, retry_after: int) -> web.StreamResponse:
        body = {"message": "You are being rate limited.", "retry_after": float(retry_after), "global": False}
        headers = {
            "Retry-After": str(retry_after),
            "X-RateLimit-Limit": str(self.bucket_limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": f"{float(retry_after):.3f}",
            "X-RateLimit-Bucket": "fakebucket-" + method,
            "X-RateLimit-Scope": "user",
        }
        return json_response(body, status=429, headers=headers)

    def failure_response(self, method: str, status: int) -> web.StreamResponse:
        return discord_error(status, 0, f"{status}: injected failure")

    # ------------------------------------------------------------------ REST helpers
    def _bot_auth(self, request: web.Request) -> web.StreamResponse | None:
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return discord_error(401, 0, "401: Unauthorized")
        return None

    def _bucket(self, route: str) -> tuple[bool, dict[str, str]]:
        """Count a call to ``route``'s bucket: whether it is over the limit, and the headers to answer."""
        now = time.monotonic()
        calls = [t for t in self._bucket_calls.get(route, []) if now - t < self.bucket_window]
        over = len(calls) >= self.bucket_limit
        if not over:
            calls.append(now)
        self._bucket_calls[route] = calls
        reset_after = self.bucket_window - (now - calls[0]) if calls else self.bucket_window
        headers = {
            "X-RateLimit-Limit": str(self.bucket_limit),
            "X-RateLimit-Remaining": str(max(self.bucket_limit - len(calls), 0)),
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": f"bucket-{abs(hash(route.split(':')[0])) % 10**8:08d}",
        }
        return over, headers

    def _limited(self, route: str, respond: Any) -> web.StreamResponse:
        over, headers = self._bucket(route)
        if over:
            retry = float(headers["X-RateLimit-Reset-After"])
            body = {"message": "You are being rate limited.", "retry_after": retry, "global": False}
            return json_response(
                body, 429, {**headers, "Retry-After": str(int(retry) + 1), "X-RateLimit-Scope": "user"}
            )
        response: web.StreamResponse = respond()
        response.headers.update(headers)
        return response

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            return {"_unparsed": True}
        return body if isinstance(body, dict) else {"_unparsed": True}

    # ------------------------------------------------------------------ REST routes
    async def _gateway_bot(self, request: web.Request) -> web.StreamResponse:
        def answer() -> web.StreamResponse:
            limit = {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}
            return json_response({"url": self.ws_url, "shards": 1, "session_start_limit": limit})

        return await self.handle(request, "gateway_bot", {}, answer, check_auth=lambda: self._bot_auth(request))

    async def _get_channel(self, request: web.Request) -> web.StreamResponse:
        channel = request.match_info["channel"]

        def answer() -> web.StreamResponse:
            data = self.channels.get(channel)
            return json_response(data) if data else discord_error(404, 10003, "Unknown Channel")

        args = {"channel": channel}
        return await self.handle(request, "get_channel", args, answer, check_auth=lambda: self._bot_auth(request))

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        channel = request.match_info["channel"]
        args = {"channel": channel, **await self._json(request)}

        def answer() -> web.StreamResponse:
            if channel not in self.channels:
                return discord_error(404, 10003, "Unknown Channel")
            content = args.get("content")
            if not isinstance(content, str) or not content.strip() or len(content) > 2000:
                return discord_error(400, 50035, "Invalid Form Body")
            return self._limited(f"channels:{channel}", lambda: json_response(self._new_message(channel, args)))

        return await self.handle(request, "create_message", args, answer, check_auth=lambda: self._bot_auth(request))

    def _new_message(self, channel: str, args: dict[str, Any]) -> dict[str, Any]:
        nonce = args.get("nonce")
        now = time.monotonic()
        if nonce is not None and args.get("enforce_nonce"):
            seen = self._nonces.get((channel, str(nonce)))
            if seen is not None and now - seen[0] < NONCE_WINDOW:
                return seen[1]
        message: dict[str, Any] = {
            "id": snowflake_now(),
            "type": 19 if args.get("message_reference") else 0,
            "channel_id": channel,
            "content": args["content"],
            "author": self.bot_user,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime()),
            "nonce": nonce,
            "tts": False,
            "mentions": [],
            "attachments": [],
            "embeds": [],
        }
        if args.get("message_reference"):
            message["message_reference"] = args["message_reference"]
        guild = self.channels[channel].get("guild_id")
        if guild:
            message["guild_id"] = guild
        if nonce is not None:
            self._nonces[(channel, str(nonce))] = (now, message)
        self._messages.append({"channel": channel, **args})
        self._spawn(self.dispatch("MESSAGE_CREATE", message))  # Discord tells the bot of its own message too
        return message

    async def _edit_message(self, request: web.Request) -> web.StreamResponse:
        channel = request.match_info["channel"]
        args = {"channel": channel, "message": request.match_info["message"], **await self._json(request)}
        return await self.handle(
            request,
            "edit_message",
            args,
            lambda: json_response({"id": args["message"], "channel_id": channel, "content": args.get("content")}),
            check_auth=lambda: self._bot_auth(request),
        )

    async def _typing(self, request: web.Request) -> web.StreamResponse:
        channel = request.match_info["channel"]

        def answer() -> web.StreamResponse:
            if channel not in self.channels:
                return discord_error(404, 10003, "Unknown Channel")
            return web.Response(status=204)

        args = {"channel": channel}
        return await self.handle(request, "typing", args, answer, check_auth=lambda: self._bot_auth(request))

    async def _react(self, request: web.Request) -> web.StreamResponse:
        args = dict(request.match_info)

        def answer() -> web.StreamResponse:
            self._reactions.append(args)
            return web.Response(status=204)

        return await self.handle(request, "react", args, answer, check_auth=lambda: self._bot_auth(request))

    def _interaction(self, request: web.Request) -> Interaction | web.StreamResponse:
        app, token = request.match_info["app"], request.match_info["token"]
        if app != self.application_id:
            return discord_error(404, 10015, "Unknown Webhook")
        found = self.interactions.get(token)
        if found is None or not found.deferred or time.time() - found.created > TOKEN_LIFETIME:
            return discord_error(401, 50027, "Invalid Webhook Token")
        return found

    async def _callback(self, request: web.Request) -> web.StreamResponse:
        """The initial response sent as a REST call instead of the HTTP answer (both are Discord's ways)."""
        args = await self._json(request)
        token = request.match_info["token"]

        def answer() -> web.StreamResponse:
            found = self.interactions.get(token)
            if found is None or found.id != request.match_info["id"] or time.time() - found.created > 3.0:
                return discord_error(404, 10062, "Unknown interaction")
            if found.deferred:
                return discord_error(400, 40060, "Interaction has already been acknowledged.")
            if args.get("type") not in (4, 5, 6, 7, 8, 9):
                return discord_error(400, 50035, "Invalid Form Body")
            found.deferred = True
            return web.Response(status=204)

        return await self.handle(request, "callback", args, answer)

    async def _edit_original(self, request: web.Request) -> web.StreamResponse:
        args = await self._json(request)

        def answer() -> web.StreamResponse:
            found = self._interaction(request)
            if not isinstance(found, Interaction):
                return found
            content = args.get("content")
            if not isinstance(content, str) or len(content) > 2000:
                return discord_error(400, 50035, "Invalid Form Body")
            found.original = content
            route = f"webhooks:{request.match_info['token']}"
            reply = {"interaction": found.id, "kind": "original", "content": content}
            return self._limited(route, lambda: self._reply(found, reply, edited=True))

        return await self.handle(request, "edit_original", args, answer)

    async def _followup(self, request: web.Request) -> web.StreamResponse:
        args = await self._json(request)

        def answer() -> web.StreamResponse:
            found = self._interaction(request)
            if not isinstance(found, Interaction):
                return found
            content = args.get("content")
            if not isinstance(content, str) or not content.strip() or len(content) > 2000:
                return discord_error(400, 50035, "Invalid Form Body")
            route = f"webhooks:{request.match_info['token']}"
            reply = {"interaction": found.id, "kind": "followup", "content": content}
            return self._limited(route, lambda: self._reply(found, reply, edited=False))

        return await self.handle(request, "followup", args, answer)

    def _reply(self, found: Interaction, reply: dict[str, Any], *, edited: bool) -> web.StreamResponse:
        if edited:  # an edit of the original replaces what it said
            self.interaction_replies = [
                r for r in self.interaction_replies if not (r["interaction"] == found.id and r["kind"] == "original")
            ]
        self.interaction_replies.append(reply)
        message = {"id": snowflake_now(), "channel_id": found.channel_id, "content": reply["content"], "type": 20}
        return json_response({**message, "author": self.bot_user, "webhook_id": self.application_id})

    async def wait_for_interaction_replies(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        await self.wait_until(lambda: len(self.interaction_replies) >= n, timeout, f"{n} interaction repl(ies)")
        return list(self.interaction_replies)

    # ------------------------------------------------------------------ interactions
    async def deliver(self, gateway_url: str, interaction: dict[str, Any], *, forged: bool = False) -> tuple[int, Any]:
        """Sign ``interaction`` and POST it to the gateway as Discord does; the answer becomes its initial
        response (a deferral makes its token usable for the follow-ups). ``forged`` signs with another key."""
        body = json.dumps(interaction).encode()
        timestamp = str(int(time.time()))
        key = SigningKey(os.urandom(32)) if forged else self.signing_key
        headers = {
            "X-Signature-Ed25519": sign(key, timestamp, body),
            "X-Signature-Timestamp": timestamp,
            "Content-Type": "application/json",
            "User-Agent": "Discord-Interactions/1.0 (+https://discord.com)",
        }
        async with (
            aiohttp.ClientSession() as s,
            s.post(f"{gateway_url}/discord/interactions", data=body, headers=headers) as r,
        ):
            raw = await r.read()
            answer = json.loads(raw) if r.content_type == "application/json" else raw.decode()
            status = r.status
        token = str(interaction.get("token", ""))
        if not forged and token:
            found = self.interactions.setdefault(
                token,
                Interaction(
                    str(interaction["id"]),
                    str(interaction["application_id"]),
                    str(interaction.get("channel_id", "")),
                    time.time(),
                ),
            )
            found.deferred = found.deferred or (status == 200 and isinstance(answer, dict) and answer.get("type") == 5)
        return status, answer
