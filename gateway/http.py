"""The only module that imports aiohttp's server.

Two small conversions, as in bolt-python's aiohttp adapter: a web request
into a neutral :class:`InboundRequest`, a :class:`ConnectorResult` or error
into a web response. Agents never run here: verify, normalize, dedupe,
publish, answer.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from structlog.contextvars import bind_contextvars, reset_contextvars

from connectors import InboundRequest, Registry
from connectors.base import ConnectorResult, async_handler
from gateway.core import tracing
from gateway.core.bounds import clip
from gateway.core.bus.base import Bus
from gateway.core.errors import PayloadTooLarge, PublishError, RequestError, StoreUnavailable
from gateway.core.events import Event
from gateway.core.ingest import Ingestor, Outcome
from gateway.core.metrics import Metrics
from gateway.core.store.base import Store

log = structlog.get_logger(__name__)


@dataclass
class HttpState:
    bus: Bus
    store: Store
    metrics: Metrics
    registry: Registry | None = None
    ingestor: Ingestor | None = None
    max_body: int = 1024 * 1024
    body_timeout: float = 10.0
    draining: bool = False
    #: Extra readiness checks (e.g. "consumer holds its leases"); name -> async check.
    checks: dict[str, Callable[[], Awaitable[bool]]] = field(default_factory=dict)
    #: Platforms' own routes (the web chat's pages, streams and sockets), mounted beside the webhooks.
    mounts: list[Callable[[web.Application], None]] = field(default_factory=list)


STATE = web.AppKey("state", HttpState)


def _error(status: int, reason: str, *, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return web.json_response({"ok": False, "error": reason}, status=status, headers=headers)


class ClientGone(Exception):
    """The client went away before its request was read: nobody to answer."""


class SlowBody(RequestError):
    status = 408


async def _read_body(request: web.Request, limit: int, timeout: float = 10.0) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body is {request.content_length} bytes; the limit is {limit}")
    if request.content.is_eof():  # the whole body arrived with the headers: no timer to arm
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit") from exc
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(f"body is over the {limit}-byte limit") from exc
    except TimeoutError:
        raise SlowBody(f"the body did not arrive within {timeout:g} s") from None
    except ConnectionError as exc:  # aiohttp's ClientConnectionResetError is one
        raise ClientGone from exc


async def _ingest(state: HttpState, platform: str, result: ConnectorResult) -> web.Response:
    assert state.ingestor is not None
    for effect in result.effects:
        await effect()
    for event in result.events:
        # Every line logged while the event is accepted carries its id (bound and reset by hand: the
        # generator-based context manager costs more than the binding itself on this path).
        tokens = bind_contextvars(event_id=event.id, platform=platform)
        try:
            if tracing.enabled():
                with tracing.span("accept", attributes=functools.partial(_accept_attributes, event)) as current:
                    outcome = await state.ingestor.accept(event, raw_json=result.raw_json)
                    tracing.set_attributes(current, **{"gateway.outcome": str(outcome)})
            else:
                outcome = await state.ingestor.accept(event, raw_json=result.raw_json)
        finally:
            reset_contextvars(**tokens)
        if outcome is Outcome.IN_FLIGHT:
            state.metrics.count_request(platform, "in_flight")
            return _error(503, "this delivery is being accepted by another request; retry", retry_after=1)
        state.metrics.count_request(platform, outcome.value)
    if not result.events:
        state.metrics.count_request(platform, "answered")
    return web.Response(status=result.status, body=result.body, content_type=result.content_type)


def _accept_attributes(event: Event) -> dict[str, Any]:
    return {
        "gateway.event_id": event.id,
        "gateway.kind": str(event.kind),
        "gateway.conversation_key": event.conversation_key,
    }


def _webhook(platform: str, route: str, param: str, method: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    span_name = f"{method} {route}"
    span_attributes = {"http.request.method": method, "http.route": route, "gateway.platform": platform}

    async def traced(request: web.Request) -> web.Response:
        if not tracing.enabled():
            return await handler(request)
        with tracing.span(span_name, kind="server", parent=request.headers, attributes=span_attributes) as current:
            response = await handler(request)
            tracing.set_attributes(current, **{"http.response.status_code": response.status})
            if response.status >= 500:
                tracing.set_error(current, f"answered {response.status}")
            return response

    async def handler(request: web.Request) -> web.Response:
        state = request.app[STATE]
        target = request.match_info[param]
        connector = state.registry.get(platform) if state.registry else None
        if connector is None or not connector.handles(target):
            state.metrics.requests.labels(platform, "not_found").inc()
            return _error(404, f"the {platform} connector is not enabled for {clip(target)!r}")
        try:
            body = await _read_body(request, state.max_body, state.body_timeout)
            headers = {k.lower(): v for k, v in request.headers.items()}
            inbound = InboundRequest(target, headers, body, time.time(), method=request.method, query=request.query)
            handle_async = async_handler(connector)
            result = connector.handle(inbound) if handle_async is None else await handle_async(inbound)
        except RequestError as exc:
            state.metrics.requests.labels(platform, type(exc).__name__).inc()
            log.info("request_refused", platform=platform, target=clip(target), status=exc.status, reason=exc.reason)
            return _error(exc.status, exc.reason)
        except StoreUnavailable as exc:  # a connector's own store write (handle_async): the platform retries
            state.metrics.requests.labels(platform, "unavailable").inc()
            log.warning("event_not_queued", platform=platform, error=str(exc))
            return _error(503, "the event could not be recorded; retry", retry_after=1)
        except ClientGone:
            state.metrics.requests.labels(platform, "client_gone").inc()
            log.info("client_disconnected", platform=platform, target=clip(target))
            return _error(400, "the client disconnected")
        except Exception as exc:  # a parser bug must not become a 500 the platform retries forever
            state.metrics.requests.labels(platform, "unparseable").inc()
            error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("request_unparseable", platform=platform, target=clip(target), error=error)
            return _error(400, "the payload could not be parsed")
        try:
            return await _ingest(state, platform, result)
        except RequestError as exc:  # an event over the gateway's own limits (gateway/core/bounds.py)
            state.metrics.requests.labels(platform, type(exc).__name__).inc()
            log.warning("request_refused", platform=platform, target=clip(target), status=exc.status, reason=exc.reason)
            return _error(exc.status, exc.reason)
        except (PublishError, StoreUnavailable) as exc:
            state.metrics.requests.labels(platform, "unavailable").inc()
            log.warning("event_not_queued", platform=platform, error=str(exc))
            return _error(503, "the event could not be queued durably; retry", retry_after=1)
        except Exception:
            state.metrics.requests.labels(platform, "unavailable").inc()
            log.exception("event_not_queued", platform=platform)
            return _error(503, "the event could not be queued durably; retry", retry_after=1)

    return traced


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    checks = {"broker": await state.bus.ping(), "store": await state.store.ping()}
    for name, check in state.checks.items():
        checks[name] = await check()
    ready = all(checks.values()) and not state.draining
    body = {"ok": ready, "draining": state.draining, **checks}
    return web.json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    data = request.app[STATE].metrics.render()
    return web.Response(body=data, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def build_app(state: HttpState, *, webhooks: bool = True) -> web.Application:
    """The web app. ``webhooks=False`` serves only health and metrics (for ``gateway consume``)."""
    app = web.Application(client_max_size=state.max_body)
    app[STATE] = state
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    if not webhooks:
        return app
    for mount in state.mounts:
        mount(app)
    for platform in state.registry.platforms.values() if state.registry else ():
        for endpoint in platform.endpoints:
            handler = _webhook(platform.name, endpoint.path, endpoint.param, endpoint.method)
            app.router.add_route(endpoint.method, endpoint.path, handler)
    return app
