"""The Gateway half of the fake Discord (tests/fakes/discord_api.py): a WebSocket speaking Discord's Gateway.

At ``ws://.../gateway`` (and ``ws://.../resume``, the sessions' ``resume_gateway_url``): HELLO with
:attr:`heartbeat_interval`, ACKs (unless :attr:`ack_heartbeats` is off), IDENTIFY checked against the bot token
(else close 4004) answered with READY and a GUILD_CREATE per guild, dispatches with ``s`` per session, RESUME
replaying what came after its ``seq`` (and :attr:`replay_overlap` before it), INVALID_SESSION for an unknown
session; :meth:`drop`, :meth:`invalidate` and :meth:`reconnect` for the tests. Followed: Discord "Gateway",
"Gateway Events", "Opcodes and Status Codes", API v10 (2026-12).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from connectors.discord.platform import snowflake_now

__all__ = ["FakeGateway", "Session"]


@dataclass
class Session:
    id: str
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seq(self) -> int:
        return len(self.events)


class FakeGateway:
    """Mixed into FakeDiscord, whose token, bot user, application id and channels it uses."""

    if TYPE_CHECKING:
        token: str
        application_id: str
        bot_user: dict[str, Any]
        channels: dict[str, dict[str, Any]]
        root_url: str

        async def notify(self) -> None: ...

    def init_gateway(self) -> None:
        self.heartbeat_interval = 41250
        self.ack_heartbeats = True
        self.replay_overlap = 0
        self.sessions: dict[str, Session] = {}
        #: Every payload a Gateway client sent, with the path it came on: {"path", "op", "d"}.
        self.gateway_ops: list[dict[str, Any]] = []
        self.connections = 0
        self._live: tuple[web.WebSocketResponse, Session | None, web.Request] | None = None
        self._gateway_tasks: set[asyncio.Task[None]] = set()

    def add_gateway_routes(self, app: web.Application) -> None:
        for path in ("/gateway", "/gateway/", "/resume", "/resume/"):  # clients connect to {url}/?v=10
            app.router.add_get(path, self._gateway)

    async def stop_gateway(self) -> None:
        if self._live is not None:
            await self._live[0].close()
        for task in list(self._gateway_tasks):
            task.cancel()

    @property
    def ws_url(self) -> str:
        return f"ws://{self.root_url.removeprefix('http://')}/gateway"

    @property
    def resume_url(self) -> str:
        return f"ws://{self.root_url.removeprefix('http://')}/resume"

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._gateway_tasks.add(task)
        task.add_done_callback(self._gateway_tasks.discard)

    @property
    def session(self) -> Session | None:
        """The session of the live connection, or the last one started."""
        if self._live is not None and self._live[1] is not None:
            return self._live[1]
        return list(self.sessions.values())[-1] if self.sessions else None

    @property
    def connected(self) -> bool:
        return self._live is not None and self._live[1] is not None and not self._live[0].closed

    def ops(self, op: int) -> list[dict[str, Any]]:
        return [p for p in self.gateway_ops if p["op"] == op]

    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Add a dispatch to the session (its next ``s``) and send it when a client is connected; its seq."""
        session = self.session
        if session is None:
            return 0
        payload = {"op": 0, "t": event, "s": session.seq + 1, "d": data}
        session.events.append(payload)
        live = self._live
        if live is not None and live[1] is session and not live[0].closed:
            await live[0].send_str(json.dumps(payload))
        await self.notify()
        return int(payload["s"])

    async def message_create(
        self,
        content: str,
        *,
        channel: str,
        guild: str | None = None,
        author: dict[str, Any] | None = None,
        mention_bot: bool = False,
    ) -> dict[str, Any]:
        """A user's message as Discord dispatches it (shaped like tests/fixtures/discord_message_create.json)."""
        author = author or {
            "id": "1100000000000000004",
            "username": "nelly",
            "global_name": "Nelly",
            "discriminator": "0",
        }
        message: dict[str, Any] = {
            "id": snowflake_now(),
            "type": 0,
            "channel_id": channel,
            "content": (f"<@{self.bot_user['id']}> " if mention_bot else "") + content,
            "author": {"avatar": None, "public_flags": 0, **author},
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime()),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [self.bot_user] if mention_bot else [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "flags": 0,
            "components": [],
        }
        if guild:
            message["guild_id"] = guild
            message["member"] = {
                "roles": [],
                "joined_at": "2026-01-02T03:04:05.000000+00:00",
                "deaf": False,
                "mute": False,
            }
        await self.dispatch("MESSAGE_CREATE", message)
        return message

    async def drop(self) -> None:
        """Cut the live connection without a close frame (a network failure); the session stays resumable."""
        if self._live is not None:
            ws, _, request = self._live
            self._live = (ws, None, request)
            if request.transport is not None:
                request.transport.abort()

    async def invalidate(self, *, resumable: bool = False) -> None:
        """INVALID_SESSION on the live connection; a session that is not resumable is forgotten."""
        if self._live is not None and self._live[1] is not None:
            ws, session, _ = self._live
            if not resumable:
                self.sessions.pop(session.id, None)
            await ws.send_str(json.dumps({"op": 9, "d": resumable}))

    async def reconnect(self) -> None:
        """RECONNECT (op 7): the client should close and resume."""
        if self._live is not None:
            await self._live[0].send_str(json.dumps({"op": 7, "d": None}))

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections += 1
        self._live = (ws, None, request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval}}))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._on_client(ws, request, json.loads(msg.data))
        finally:
            if self._live is not None and self._live[0] is ws:
                self._live = None
            await self.notify()
        return ws

    async def _on_client(self, ws: web.WebSocketResponse, request: web.Request, payload: dict[str, Any]) -> None:
        op, data = payload.get("op"), payload.get("d")
        self.gateway_ops.append({"path": request.path.rstrip("/"), "op": op, "d": data})
        await self.notify()
        if op == 1 and self.ack_heartbeats:
            await ws.send_str(json.dumps({"op": 11}))
        elif op == 2:
            await self._identify(ws, request, data if isinstance(data, dict) else {})
        elif op == 6:
            await self._resume(ws, request, data if isinstance(data, dict) else {})

    async def _identify(self, ws: web.WebSocketResponse, request: web.Request, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        session = Session(os.urandom(16).hex())
        self.sessions[session.id] = session
        self._live = (ws, session, request)
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": g, "unavailable": True} for g in self._guilds()],
            "session_id": session.id,
            "resume_gateway_url": self.resume_url,
            "shard": [0, 1],
            "application": {"id": self.application_id, "flags": 0},
        }
        await self.dispatch("READY", ready)
        for guild in self._guilds():
            channels = [c for c in self.channels.values() if c.get("guild_id") == guild]
            await self.dispatch(
                "GUILD_CREATE",
                {
                    "id": guild,
                    "name": "Fake guild",
                    "channels": [c for c in channels if c["type"] not in (10, 11, 12)],
                    "threads": [c for c in channels if c["type"] in (10, 11, 12)],
                },
            )

    def _guilds(self) -> list[str]:
        return sorted({str(c["guild_id"]) for c in self.channels.values() if c.get("guild_id")})

    async def _resume(self, ws: web.WebSocketResponse, request: web.Request, data: dict[str, Any]) -> None:
        session = self.sessions.get(str(data.get("session_id")))
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        if session is None:
            await ws.send_str(json.dumps({"op": 9, "d": False}))
            return
        self._live = (ws, session, request)
        after = int(data.get("seq") or 0) - self.replay_overlap
        for payload in session.events[max(after, 0) :]:
            await ws.send_str(json.dumps(payload))
        await self.dispatch("RESUMED", {})
