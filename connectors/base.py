"""The neutral connector protocol: raw body bytes and headers in, events out.

Connectors never see aiohttp. ``gateway/http.py`` turns a web request into an
:class:`InboundRequest` and a :class:`ConnectorResult` (or a
:class:`~gateway.core.errors.RequestError`) back into a response. Verification and
parsing are CPU-only, so ``handle`` is synchronous. A connector whose verification needs I/O
first (signing keys fetched from the platform, a store write after verifying) also has an
``async def handle_async(request)`` (:class:`AsyncConnector`), which ingress awaits instead.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import orjson

from gateway.core.errors import BadSignature, MalformedPayload, StaleTimestamp
from gateway.core.events import Event


@dataclass(frozen=True, slots=True)
class InboundRequest:
    #: Path parameter: Slack's endpoint (events, interactions, commands), the Telegram bot name,
    #: or the webhook source name.
    target: str
    #: Header names lower-cased.
    headers: Mapping[str, str]
    body: bytes
    #: Unix time the request arrived (injected so tests control the clock).
    now: float
    #: The HTTP method (a GET handshake such as WhatsApp's ``hub.challenge``) and the query parameters.
    method: str = "POST"
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConnectorResult:
    """What to publish, and what to answer once it is durably queued.

    ``events`` empty means nothing to publish (a challenge, a ping): answer at once. The connector itself stays
    CPU-only: an effect is built by it and run by ingress.
    """

    events: list[Event] = field(default_factory=list)
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"
    #: Store writes the request asks for (Slack's ``app_uninstalled`` removes the workspace's tokens), awaited
    #: by ingress before the events are published: if one fails the answer is 503 and the platform retries.
    effects: tuple[Callable[[], Awaitable[None]], ...] = ()
    #: The request body when it is strict JSON and every event's ``raw`` is exactly its parsed value: the
    #: publisher then writes these bytes as ``raw`` instead of serializing the parsed payload again.
    raw_json: bytes | None = None


class Connector(Protocol):
    platform: str

    def handles(self, target: str) -> bool:
        """True when ``target`` (bot, source or endpoint) is configured and enabled."""
        ...

    def handle(self, request: InboundRequest) -> ConnectorResult: ...


class AsyncConnector(Connector, Protocol):
    """A connector with I/O around its CPU-only ``handle`` (Teams fetches the Bot Framework's signing keys
    it does not know yet; WhatsApp records when a user last wrote). Ingress awaits ``handle_async``."""

    async def handle_async(self, request: InboundRequest) -> ConnectorResult: ...


def async_handler(connector: Connector) -> Callable[[InboundRequest], Awaitable[ConnectorResult]] | None:
    """The connector's ``handle_async``, or None. Looked up by attribute: ``isinstance`` on a runtime
    Protocol costs about 8 us a request."""
    handler = getattr(connector, "handle_async", None)
    return cast("Callable[[InboundRequest], Awaitable[ConnectorResult]]", handler) if callable(handler) else None


def secrets_equal(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time comparison; never short-circuits on the first differing byte."""
    left = a.encode() if isinstance(a, str) else a
    right = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


def check_timestamp(raw: str | None, now: float, window: int, *, platform: str, header: str) -> int:
    """Parse a Unix-seconds timestamp header and refuse it outside ``now ± window``."""
    if not raw:
        raise BadSignature(f"missing {header} header", platform=platform)
    try:
        ts = int(raw)
    except ValueError as exc:
        raise BadSignature(f"{header} is not a Unix timestamp", platform=platform) from exc
    if abs(now - ts) > window:
        raise StaleTimestamp(skew_message(header, ts - now, window), platform=platform)
    return ts


def skew_message(header: str, skew: float, window: int) -> str:
    """Say which way a timestamp is off: ``skew`` = timestamp - our clock, in seconds.

    Positive: the sender's clock is ahead of ours (the timestamp is in our future); negative: the
    request is old (a replay, a long delay, or the sender's clock is behind ours).
    """
    seconds = int(abs(skew))
    if skew > 0:
        return (
            f"{header} is {seconds} s in the future: the sender's clock is {seconds} s ahead of this server's, "
            f"outside the {window} s replay window (check NTP on both)"
        )
    return (
        f"{header} is {seconds} s old: the sender's clock is {seconds} s behind this server's or the request "
        f"is a replay, outside the {window} s replay window"
    )


def parse_json_object(body: bytes, *, platform: str) -> dict[str, Any]:
    return parse_json_body(body, platform=platform)[0]


def parse_json_body(body: bytes, *, platform: str) -> tuple[dict[str, Any], bool]:
    """The body's JSON object, and whether it is strict JSON (read by orjson, so any JSON parser
    reads it the same: its bytes can stand for the parsed value, see ``ConnectorResult.raw_json``)."""
    strict = True
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        strict = False
        # What orjson refuses and the standard library reads (lone surrogate escapes, NaN, integers over
        # 64 bits) is decided by the standard library, so the same bodies are accepted as before.
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedPayload("body is not valid JSON", platform=platform) from exc
    if not isinstance(data, dict):
        raise MalformedPayload("body is not a JSON object", platform=platform)
    return data, strict
