"""The Discord Gateway connection that ``gateway discord`` runs: messages in over a WebSocket, published once.

The lifecycle (Discord "Gateway", API v10, JSON encoding, checked 2026-12):

1. ``GET {DISCORD_API_URL}/gateway/bot`` (bot token) names the URL; connect to ``{url}/?v=10&encoding=json``.
2. HELLO (op 10) gives ``heartbeat_interval``: the first heartbeat (op 1, the last ``seq``) goes after
   ``interval * jitter`` (jitter uniform in [0, 1)), then one every interval. A heartbeat not ACKed (op 11)
   when the next is due is a zombie connection: closed (code 4000, so the session stays resumable) and resumed.
   An op 1 from Discord is answered with a heartbeat at once.
3. IDENTIFY (op 2: token, intents, properties) starts a session; READY gives ``session_id``,
   ``resume_gateway_url`` and the bot's user id. With a session (from this process, or left in the store by the
   previous one: session.py), the connection goes to ``resume_gateway_url`` and sends RESUME (op 6: token,
   session_id, seq) instead: Discord replays what was dispatched after ``seq``, then RESUMED.
4. RECONNECT (op 7): close and resume. INVALID_SESSION (op 9): ``d: true`` resume, ``d: false`` wait 1-5 s and
   IDENTIFY anew. Close codes 4004 (authentication failed), 4010-4014 (shard, version, intents) stop the process
   with the reason; 4007 (invalid seq) and 4009 (session timed out) start a new session; others resume.

MESSAGE_CREATE dispatches become events (parse.py) handed to ``accept`` (the ingestor: dedupe by message id in
the store, confirmed publish). The bot's own messages and other bots' are dropped here. ``seq`` advances, and is
saved, only once its message was accepted: when publishing keeps failing the connection is closed without
advancing, and the RESUME makes Discord send the message again. A message Discord replays after a RESUME (or a
restart) is a duplicate for the ingestor's dedupe, never published twice. Dispatches are handled one at a time,
in order. On SIGTERM the connection is closed with 4000 (1000 would end the session): the next process resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from connectors.discord import session as sessions
from connectors.discord.channels import Channels
from connectors.discord.parse import event_from_message
from gateway.core.errors import ConfigError, GatewayError, MalformedPayload
from gateway.core.events import Event
from gateway.core.store.base import Store

log = structlog.get_logger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 0, 1, 2, 6, 7, 9, 10, 11
#: Close codes after which reconnecting cannot help: the reason is the operator's to fix.
FATAL = {
    4004: "authentication failed: DISCORD_BOT_TOKEN is not this bot's token",
    4010: "invalid shard",
    4011: "sharding required: the bot is in too many guilds for one connection",
    4012: "invalid API version",
    4013: "invalid intents (GATEWAY_DISCORD_INTENTS)",
    4014: "disallowed intents: enable MESSAGE_CONTENT (and the others) for the bot in the Developer Portal",
}
#: Close codes that end the session: the next connection identifies.
NEW_SESSION = {4007, 4009}
#: We close with this to keep the session resumable (1000 and 1001 end it).
RESUMABLE_CLOSE = 4000
QUERY = "?v=10&encoding=json"
#: Seconds a shutdown waits for the message in hand to be published before it stops reading.
STOP_GRACE = 10.0
Accept = Callable[[Event], Awaitable[object]]


class Reconnect(Exception):
    """Close this connection and open the next (resuming when the session allows)."""


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.dispatches = Counter(
            "gateway_discord_dispatches", "Gateway dispatches received", ["event"], registry=registry
        )
        self.connects = Counter(
            "gateway_discord_connects", "Gateway connections opened, by how", ["how"], registry=registry
        )
        self.closes = Counter("gateway_discord_closes", "Gateway connections ended, by why", ["why"], registry=registry)
        self.messages = Counter(
            "gateway_discord_messages", "MESSAGE_CREATE dispatches by outcome", ["outcome"], registry=registry
        )
        self.live = Gauge("gateway_discord_session_live", "1 while a Gateway session is live", registry=registry)
        self.heartbeat = Gauge(
            "gateway_discord_heartbeat_seconds", "Last heartbeat round trip to the Gateway", registry=registry
        )


class GatewayClient:
    def __init__(
        self,
        token: str,
        api_url: str,
        store: Store,
        accept: Accept,
        *,
        intents: int,
        registry: CollectorRegistry | None = None,
        invalid_session_wait: tuple[float, float] = (1.0, 5.0),
        accept_attempts: int = 5,
    ) -> None:
        self._token = token
        self._api_url = api_url.rstrip("/")
        self._store = store
        self._accept = accept
        self._intents = intents
        self._invalid_wait = invalid_session_wait
        self._attempts = accept_attempts
        self.metrics = GatewayMetrics(registry or CollectorRegistry())
        self.state = sessions.ResumeState()
        self.channels = Channels()
        self._live = False
        self._was_live = False
        self._acked = True
        self._beat_at = 0.0
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def ready(self) -> bool:
        return self._live and self._ws is not None and not self._ws.closed

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until ``stop``; raises :class:`ConfigError` for a close no reconnect can mend."""
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10))
        try:
            self.state = await sessions.load(self._store)
            if self.state.resumable:
                log.info("discord_session_found", note="resuming the session the previous process left")
            failures = 0
            while not stop.is_set():
                opened = await self._connect_once(stop)
                failures = 0 if opened else failures + 1
                if not stop.is_set():
                    await _sleep_or_stop(stop, min(0.5 * 2 ** min(failures, 6), 30.0) * random.uniform(0.5, 1.0))
        finally:
            await self._http.close()

    async def _gateway_url(self) -> str:
        assert self._http is not None
        headers = {"Authorization": f"Bot {self._token}"}
        async with self._http.get(f"{self._api_url}/gateway/bot", headers=headers) as resp:
            if resp.status == 401:
                raise ConfigError(f"Discord refused the bot token (401): {FATAL[4004]}")
            resp.raise_for_status()
            answer = await resp.json()
        return str(answer["url"]).rstrip("/")

    async def _connect_once(self, stop: asyncio.Event) -> bool:
        """One connection; True when it got as far as a live session (READY or RESUMED)."""
        assert self._http is not None
        resuming = self.state.resumable
        self._live = self._was_live = False
        try:
            base = self.state.resume_url if resuming else await self._gateway_url()
            async with self._http.ws_connect(f"{(base or '').rstrip('/')}/{QUERY}", max_msg_size=0) as ws:
                self._ws = ws
                self.metrics.connects.labels("resume" if resuming else "identify").inc()
                return await self._session(ws, stop, resuming)
        except ConfigError:
            raise
        except Exception as exc:  # the network, or a payload we did not expect: reconnect, resume
            self.metrics.closes.labels("error").inc()
            log.warning("discord_connection_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return self._was_live
        finally:
            self._live = False
            self.metrics.live.set(0)
            self._ws = None

    async def _session(self, ws: aiohttp.ClientWebSocketResponse, stop: asyncio.Event, resuming: bool) -> bool:
        hello = await ws.receive_json(timeout=30)
        if hello.get("op") != HELLO:
            raise ValueError(f"expected HELLO, got op {hello.get('op')}")
        interval = float(hello["d"]["heartbeat_interval"]) / 1000
        self._acked = True
        beating = asyncio.create_task(self._heartbeat(ws, interval))
        stopping = asyncio.create_task(stop.wait())
        try:
            await ws.send_json(self._resume() if resuming else self._identify())
            reading = asyncio.create_task(self._read(ws))
            done, _ = await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stopping in done:  # let the dispatch in hand finish (its publish and seq), then stop reading
                await ws.close(code=RESUMABLE_CLOSE, message=b"shutting down")
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(reading, STOP_GRACE)
            else:
                await reading  # re-raises ConfigError from a fatal close
        finally:
            for task in (beating, stopping):
                task.cancel()
            if not ws.closed:
                await ws.close(code=RESUMABLE_CLOSE, message=b"reconnecting")
            with contextlib.suppress(Exception):
                await sessions.save(self._store, self.state)
        self._on_close(ws.close_code)
        return self._was_live

    def _identify(self) -> dict[str, Any]:
        properties = {"os": "linux", "browser": "chat-gateway", "device": "chat-gateway"}
        return {"op": IDENTIFY, "d": {"token": self._token, "intents": self._intents, "properties": properties}}

    def _resume(self) -> dict[str, Any]:
        d = {"token": self._token, "session_id": self.state.session_id, "seq": self.state.seq}
        return {"op": RESUME, "d": d}

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await self._on_payload(ws, json.loads(msg.data))
        except Reconnect as exc:
            log.info("discord_reconnect", reason=str(exc))
            self.metrics.closes.labels(str(exc).split(":")[0]).inc()
            await ws.close(code=RESUMABLE_CLOSE, message=b"reconnecting")
        code = ws.close_code
        if code in FATAL:
            raise ConfigError(f"the Discord Gateway closed the connection with {code}: {FATAL[code]}")

    def _on_close(self, code: int | None) -> None:
        if code in NEW_SESSION:
            log.info("discord_session_ended", close_code=code, note="identifying anew")
            self.state.forget()
        log.info("discord_disconnected", close_code=code, resumable=self.state.resumable)

    async def _heartbeat(self, ws: aiohttp.ClientWebSocketResponse, interval: float) -> None:
        await asyncio.sleep(interval * random.random())
        while not ws.closed:
            if not self._acked:
                log.warning("discord_zombie_connection", note="no heartbeat ACK since the last one: reconnecting")
                self.metrics.closes.labels("zombie").inc()
                await ws.close(code=RESUMABLE_CLOSE, message=b"zombie")
                return
            await self._beat(ws)
            await asyncio.sleep(interval)

    async def _beat(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._acked = False
        self._beat_at = time.monotonic()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_json({"op": HEARTBEAT, "d": self.state.seq})

    async def _on_payload(self, ws: aiohttp.ClientWebSocketResponse, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        if op == DISPATCH:
            await self._dispatch(str(payload.get("t")), payload.get("s"), payload.get("d"))
        elif op == HEARTBEAT:
            await self._beat(ws)
        elif op == HEARTBEAT_ACK:
            self._acked = True
            self.metrics.heartbeat.set(time.monotonic() - self._beat_at)
            with contextlib.suppress(Exception):  # keeps the saved session from expiring while idle
                await sessions.save(self._store, self.state)
        elif op == RECONNECT:
            raise Reconnect("reconnect: Discord asked for it (op 7)")
        elif op == INVALID_SESSION:
            await self._invalid_session(bool(payload.get("d")))

    async def _invalid_session(self, resumable: bool) -> None:
        if not resumable:
            self.state.forget()
            await sessions.save(self._store, self.state)
            await asyncio.sleep(random.uniform(*self._invalid_wait))  # Discord: wait 1-5 s before identifying
        raise Reconnect(f"invalid_session: {'resumable' if resumable else 'identifying anew'}")

    async def _dispatch(self, event: str, seq: object, data: object) -> None:
        self.metrics.dispatches.labels(event).inc()
        d = data if isinstance(data, dict) else {}
        if event == "READY":
            self.state.session_id = str(d["session_id"])
            self.state.resume_url = str(d["resume_gateway_url"])
            self.state.bot_id = str(d["user"]["id"])
            self._go_live("ready")
        elif event == "RESUMED":
            self._go_live("resumed")
        elif event == "MESSAGE_CREATE":
            await self._message(d)
        else:
            self.channels.on_dispatch(event, d)
        if isinstance(seq, int):
            self.state.seq = seq
            if event in ("READY", "MESSAGE_CREATE"):
                await sessions.save(self._store, self.state)

    def _go_live(self, how: str) -> None:
        self._live = self._was_live = True
        self.metrics.live.set(1)
        log.info("discord_session_live", how=how, session_resumable=self.state.resumable)

    async def _message(self, data: dict[str, Any]) -> None:
        author = data.get("author")
        author = author if isinstance(author, dict) else {}
        if str(author.get("id")) == self.state.bot_id or author.get("bot") or data.get("webhook_id"):
            self.metrics.messages.labels("bot").inc()  # our own replies come back as dispatches too
            return
        parent = await self._parent(data)
        try:
            event = event_from_message(data, bot_id=self.state.bot_id, parent=parent)
        except MalformedPayload as exc:  # skipped, so that its replay cannot stop the connection for good
            log.warning("discord_message_unparseable", reason=exc.reason)
            self.metrics.messages.labels("unparseable").inc()
            return
        for attempt in range(1, self._attempts + 1):
            try:
                outcome = await self._accept(event)
            except (GatewayError, ConnectionError, TimeoutError) as exc:  # PublishError, StoreUnavailable
                log.warning("discord_message_not_queued", error=str(exc)[:300], attempt=attempt)
                await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
                continue
            if str(outcome) == "in_flight":  # another process holds the claim: see whether it lands
                await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
                continue
            self.metrics.messages.labels(str(outcome)).inc()
            return
        self.metrics.messages.labels("not_queued").inc()
        raise Reconnect("not_queued: the message could not be published; Discord sends it again on RESUME")

    async def _parent(self, data: dict[str, Any]) -> str | None:
        channel = data.get("channel_id")
        if not isinstance(channel, str) or data.get("guild_id") is None:
            return None
        if not self.channels.known(channel):
            fetched = await self._fetch_channel(channel)
            if fetched is not None:  # a failed lookup is tried again with the channel's next message
                self.channels.learn(fetched)
        return self.channels.parent(channel)

    async def _fetch_channel(self, channel: str) -> dict[str, Any] | None:
        assert self._http is not None
        headers = {"Authorization": f"Bot {self._token}"}
        try:
            async with self._http.get(
                f"{self._api_url}/channels/{channel}", headers=headers, timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                answer = await resp.json() if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.info("discord_channel_lookup_failed", channel=channel, error=type(exc).__name__)
            return None
        return answer if isinstance(answer, dict) else None


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
