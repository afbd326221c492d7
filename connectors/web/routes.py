"""The web surface served by ``gateway serve``/``dev``: the chat page, the widget, the app API.

GET  /chat                               the chat page (vendored HTML/JS, no build step)
GET  /chat/widget.js                     a <script> a site embeds: a button that opens the chat
POST /chat/session                       a visitor token for a new (or returning) visitor of a site
GET  /v1/openapi.json                    the API, described
POST /v1/conversations/{key}/messages    a message in (through the spine: 202 only once queued)
GET  /v1/conversations/{key}/events      server-sent events, resumable with Last-Event-ID
GET  /v1/conversations/{key}/state       the public part of a session's state (?session=NAME)
GET  /v1/ws                              the same over a WebSocket (subscribe + send)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from connectors.web import token as tokens
from connectors.web import transcript
from connectors.web.auth import Caller, WebAuth
from connectors.web.hub import WebHub
from gateway.core import sessions
from gateway.core.bus.base import Bus
from gateway.core.config import WebSection
from gateway.core.errors import MalformedPayload, PublishError, RequestError, StoreUnavailable
from gateway.core.events import Event, EventKind, ReplyAddress, Sender
from gateway.core.ingest import Ingestor, Outcome
from gateway.core.metrics import Metrics
from gateway.core.store.base import Store

log = structlog.get_logger(__name__)
HEARTBEAT = 15.0
STATIC = resources.files("connectors.web") / "static"


@dataclass
class WebState:
    auth: WebAuth
    section: WebSection
    hub: WebHub
    store: Store
    bus: Bus
    ingestor: Ingestor
    metrics: Metrics
    default_site: str = "default"
    #: Seconds a transcript lives after its last entry (GATEWAY_HISTORY_TTL).
    ttl: float | None = transcript.TTL


WEB = web.AppKey("web", WebState)


def _error(status: int, reason: str, **headers: str) -> web.Response:
    return web.json_response({"ok": False, "error": reason}, status=status, headers=headers or None)


def _credential(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()
    return request.query.get("token")


def _own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _authorize(request: web.Request, key: str) -> Caller:
    state = request.app[WEB]
    caller = state.auth.caller(_credential(request), key)
    state.auth.check_origin(request.headers.get("Origin"), _own_origin(request), caller.site)
    return caller


async def accept_message(state: WebState, key: str, caller: Caller, data: Any) -> dict[str, Any]:
    """Validate one inbound message and put it through the spine; raise RequestError when refused."""
    if not isinstance(data, dict) or not isinstance(data.get("text"), str) or not data["text"].strip():
        raise MalformedPayload('expected a JSON object {"text": "...", "id": "optional client message id"}')
    text: str = data["text"]
    if len(text) > state.section.max_text:
        raise MalformedPayload(f"text is {len(text)} characters; the limit is {state.section.max_text}")
    client_id = data.get("id")
    if client_id is not None and (not isinstance(client_id, str) or not tokens.NAME.match(client_id)):
        raise MalformedPayload("id must be 1-64 of A-Z a-z 0-9 _ -")
    wait = await state.store.reserve_token(f"web:rate:{caller.who}", state.section.rate, state.section.burst)
    if wait > 0:
        raise RateLimitedRequest(wait)
    entry_id = client_id or uuid.uuid4().hex
    event = Event(
        platform="web",
        delivery_id=f"{caller.who}:{entry_id}",
        kind=EventKind.MESSAGE,
        conversation_key=key,
        sender=Sender(id=caller.visitor),
        text=text,
        reply_to=ReplyAddress(platform="web", bot=caller.site, channel=caller.visitor, user=caller.visitor),
        message_ref=f"web:{key}:{entry_id}",
    )
    outcome = await state.ingestor.accept(event)
    if outcome is Outcome.IN_FLIGHT:
        raise RateLimitedRequest(1.0, reason="this message is being accepted by another request; retry")
    if outcome is Outcome.PUBLISHED:
        with contextlib.suppress(Exception):  # queued: the reply will come; the page shows its own copy
            item = transcript.entry(entry_id, "user", text)
            await transcript.append(state.store, state.bus, key, item, ttl=state.ttl)
    state.metrics.requests.labels("web", str(outcome)).inc()
    return {"ok": True, "id": entry_id, "event_id": event.id, "duplicate": outcome is Outcome.DUPLICATE}


class RateLimitedRequest(RequestError):
    status = 429

    def __init__(self, wait: float, *, reason: str = "too many messages; slow down") -> None:
        super().__init__(reason, platform="web")
        self.retry_after = max(1, round(wait))


async def post_message(request: web.Request) -> web.Response:
    state = request.app[WEB]
    key = request.match_info["key"]
    try:
        caller = _authorize(request, key)
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise MalformedPayload("the body is not JSON") from None
        answer = await accept_message(state, key, caller, data)
    except RateLimitedRequest as exc:
        return _error(429, exc.reason, **{"Retry-After": str(exc.retry_after)})
    except RequestError as exc:
        state.metrics.requests.labels("web", type(exc).__name__).inc()
        return _error(exc.status, exc.reason)
    except (PublishError, StoreUnavailable):
        state.metrics.requests.labels("web", "unavailable").inc()
        return _error(503, "the message could not be queued durably; retry", **{"Retry-After": "1"})
    return web.json_response(answer, status=202)


async def _entries(state: WebState, key: str, last: str | None) -> list[dict[str, Any]]:
    return await transcript.read_after(state.store, key, last)


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the transcript after Last-Event-ID, then each new entry as it comes."""
    state = request.app[WEB]
    key = request.match_info["key"]
    try:
        _authorize(request, key)
        await state.hub.ensure_started()
    except RequestError as exc:
        return _error(exc.status, exc.reason)
    except Exception:
        return _error(503, "replies cannot be streamed right now; retry", **{"Retry-After": "1"})
    last = request.headers.get("Last-Event-ID") or request.query.get("last_id")
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    with state.hub.listen(key) as hints, contextlib.suppress(ConnectionError, asyncio.CancelledError):
        await response.write(b"retry: 1000\n\n")
        last = await _send_sse(response, await _entries(state, key, last), last)
        while True:
            try:
                note = await asyncio.wait_for(hints.get(), HEARTBEAT)
            except TimeoutError:  # a ping, and a re-read in case a hint was lost
                await response.write(b": ping\n\n")
                note = {"type": "changed"}
            if note.get("type") == "typing":
                await response.write(b"event: typing\ndata: {}\n\n")
            else:
                last = await _send_sse(response, await _entries(state, key, last), last)
    return response


async def conversation_state(request: web.Request) -> web.Response:
    """The public part of a session's state (``ctx.state.public``); the private part never leaves Redis."""
    state = request.app[WEB]
    key = request.match_info["key"]
    session = request.query.get("session", sessions.DEFAULT)
    try:
        _authorize(request, key)
        sessions.check_name(session)
    except RequestError as exc:
        return _error(exc.status, exc.reason)
    except ValueError as exc:
        return _error(400, str(exc))
    try:
        public = await sessions.public_state(state.store, key, session)
    except StoreUnavailable:
        return _error(503, "the store is unavailable; try again", **{"Retry-After": "1"})
    return web.json_response({"ok": True, "key": key, "session": session, "state": public})


async def _send_sse(response: web.StreamResponse, items: list[dict[str, Any]], last: str | None) -> str | None:
    for item in items:
        data = json.dumps(item, separators=(",", ":"))
        await response.write(f"id: {item['id']}\nevent: message\ndata: {data}\n\n".encode())
        last = item["id"]
    return last


async def websocket(request: web.Request) -> web.StreamResponse:
    """``/v1/ws?key=...&token=...&last_id=...``: entries out as ``{"type": "message", ...}``; in, send
    ``{"type": "message", "text": "...", "id": "..."}`` and get ``{"type": "accepted"|"error", ...}``."""
    state = request.app[WEB]
    key = request.query.get("key", "")
    try:
        caller = _authorize(request, key)
        await state.hub.ensure_started()
    except RequestError as exc:
        return _error(exc.status, exc.reason)
    except Exception:
        return _error(503, "replies cannot be streamed right now; retry", **{"Retry-After": "1"})
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=64 * 1024)
    await ws.prepare(request)
    last = request.query.get("last_id")
    with state.hub.listen(key) as hints:
        pusher = asyncio.create_task(_push_ws(ws, state, key, hints, last))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await ws.send_json(await _ws_in(state, key, caller, msg.data))
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pusher
    return ws


async def _ws_in(state: WebState, key: str, caller: Caller, raw: str) -> dict[str, Any]:
    try:
        answer = await accept_message(state, key, caller, json.loads(raw))
        return {"type": "accepted", **answer}
    except ValueError:
        return {"type": "error", "status": 400, "error": "not JSON"}
    except RequestError as exc:
        return {"type": "error", "status": exc.status, "error": exc.reason}
    except (PublishError, StoreUnavailable):
        return {"type": "error", "status": 503, "error": "the message could not be queued durably; retry"}


async def _push_ws(
    ws: web.WebSocketResponse, state: WebState, key: str, hints: asyncio.Queue[dict[str, Any]], last: str | None
) -> None:
    with contextlib.suppress(ConnectionError):
        while True:
            for item in await _entries(state, key, last):
                await ws.send_json({"type": "message", **item})
                last = item["id"]
            try:
                note = await asyncio.wait_for(hints.get(), HEARTBEAT)
            except TimeoutError:  # re-read in case a hint was lost
                continue
            if note.get("type") == "typing":
                await ws.send_json({"type": "typing"})


async def session(request: web.Request) -> web.Response:
    """A visitor token: ``{"site": "default", "token": "<a previous token, to keep the visitor>"}``."""
    state = request.app[WEB]
    try:
        data = await request.json() if request.can_read_body else {}
    except ValueError:
        return _error(400, "the body is not JSON")
    site_name = data.get("site", state.default_site) if isinstance(data, dict) else state.default_site
    site = state.auth.sites.get(site_name) if isinstance(site_name, str) else None
    if site is None:
        return _error(404, "unknown site")
    try:
        state.auth.check_origin(request.headers.get("Origin"), _own_origin(request), site.name)
    except RequestError as exc:
        return _error(exc.status, exc.reason)
    previous = data.get("token") if isinstance(data, dict) else None
    visitor = None
    if isinstance(previous, str):
        with contextlib.suppress(RequestError):
            visitor = tokens.verify(site.secret, previous, now=time.time()).visitor
    minted = tokens.mint(site.secret, site.name, visitor, now=time.time())
    v = tokens.verify(site.secret, minted, now=time.time())
    return web.json_response({"token": minted, "key": v.conversation_key, "expires": v.expires})


def _static(name: str, content_type: str) -> web.Response:
    body = (STATIC / name).read_bytes()
    return web.Response(body=body, content_type=content_type, headers={"Cache-Control": "no-cache"})


async def chat_page(request: web.Request) -> web.Response:
    response = _static("chat.html", "text/html")
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors *"
    )
    return response


async def widget(request: web.Request) -> web.Response:
    return _static("widget.js", "application/javascript")


async def chat_script(request: web.Request) -> web.Response:
    return _static("chat.js", "application/javascript")


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=(STATIC / "openapi.json").read_bytes(), content_type="application/json")


def mount(app: web.Application, state: WebState) -> None:
    app[WEB] = state
    app.router.add_get("/chat", chat_page)
    app.router.add_get("/chat/chat.js", chat_script)
    app.router.add_get("/chat/widget.js", widget)
    app.router.add_post("/chat/session", session)
    app.router.add_get("/v1/openapi.json", openapi)
    app.router.add_post("/v1/conversations/{key}/messages", post_message)
    app.router.add_get("/v1/conversations/{key}/events", events)
    app.router.add_get("/v1/conversations/{key}/state", conversation_state)
    app.router.add_get("/v1/ws", websocket)
    app.on_cleanup.append(lambda _: state.hub.close())


def throwaway_secret() -> str:
    return secrets.token_urlsafe(32)
