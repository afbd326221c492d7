"""The outbound worker: one platform call per message (through that platform's sender), in order per chat, never twice.

Before a call that may have been made already (:func:`may_be_sent`), the ``sent:{id}`` marker is checked; after
a successful call it is written. A process killed between the platform's answer and the marker write leaves no
marker: then a sender that can look its message up (``connectors.outbound.FindsSent``, Slack) is asked, and a
message it finds is marked sent and not posted again. Stream snapshots (``action="stream"``) go through
consumers/streams.py, which keeps each stream's platform messages in the store; a lane run drops the
snapshots a later one of the same stream replaces. A 429 waits the platform's ``Retry-After`` and tries again in the
same lane (so later messages to that chat stay behind it); a failure before
the request was sent is retried with backoff; anything else is dead-lettered.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from pydantic import ValidationError

from connectors.outbound import DEFAULT_AMBIENT, FindsSent, PlatformSender
from consumers.deadletter import DeadLetters
from consumers.ratelimit import RateLimiter
from consumers.streams import Streams, superseded
from gateway.core import tracing
from gateway.core.bus.base import Delivery
from gateway.core.errors import RateLimited, SendError
from gateway.core.events import AMBIENT_ACTIONS, OutboundMessage
from gateway.core.metrics import Metrics
from gateway.core.store.base import Store

log = structlog.get_logger(__name__)
SENT_TTL = 7 * 24 * 3600.0
#: Seconds between sweeps of idle per-chat rate buckets.
FORGET_EVERY = 60.0


def sent_marker(message_id: str) -> str:
    return f"sent:{message_id}"


def chat_lane(message: OutboundMessage) -> str:
    to = message.to
    return f"{to.platform}:{to.bot}:{to.channel}"


def may_be_sent(d: Delivery) -> bool:
    """Only a message that may have been posted already is looked up: a redelivery, a replay, or one
    published by a turn that ran more than once (a retry, a redelivered or replayed event)."""
    return d.repeated or "recheck" in d.headers


class OutboundWorker:
    def __init__(
        self,
        platforms: dict[str, PlatformSender],
        *,
        store: Store,
        limiter: RateLimiter,
        dead: DeadLetters,
        metrics: Metrics,
        attempts: int = 5,
        retry_base: float = 0.5,
    ) -> None:
        self._platforms = platforms
        self._store = store
        self._limiter = limiter
        self._dead = dead
        self._metrics = metrics
        self._attempts = attempts
        self._retry_base = retry_base
        self._forgot_at = time.monotonic()
        self._streams = Streams(store, limiter)

    @staticmethod
    def lane_key(delivery: Delivery) -> str:
        """Lane by chat. The message is parsed here, once, and kept on the delivery for its send."""
        try:
            message = OutboundMessage.model_validate_json(delivery.body)
        except (ValidationError, ValueError):
            return "undecodable"  # dead-lettered with the parser's reason when its turn comes
        delivery.prepared = message
        return chat_lane(message)

    def arrive(self, delivery: Delivery) -> str:
        """On arrival, in queue order: the delivery's lane (:meth:`lane_key`); a stream snapshot is noted as the
        newest of its stream (consumers/streams.py)."""
        if isinstance(delivery.prepared, OutboundMessage):  # a preview from this process: parsed already
            key = chat_lane(delivery.prepared)
        else:
            key = self.lane_key(delivery)  # parses it and keeps it on the delivery
        if isinstance(delivery.prepared, OutboundMessage):
            self._streams.arrived(delivery.prepared)
        return key

    async def run(self, _chat: str, deliveries: list[Delivery]) -> None:
        stale = superseded(deliveries)
        for i, d in enumerate(deliveries):
            if i in stale:
                if d.alive():
                    await d.ack()
                continue
            await self._one(d)
        now = time.monotonic()
        if now - self._forgot_at > FORGET_EVERY:  # full per-chat buckets carry nothing: let them go
            self._forgot_at = now
            self._limiter.forget_idle()

    async def _one(self, d: Delivery) -> None:
        if not d.alive():  # its channel died: the broker delivers it again on the new one
            return
        if isinstance(d.prepared, OutboundMessage):
            message = d.prepared
        else:
            try:
                message = OutboundMessage.model_validate_json(d.body)
            except (ValidationError, ValueError) as exc:
                await self._dead.send(d, stage="outbound", reason="undecodable", error=str(exc), attempts=0)
                return
        platform = self._platforms.get(message.to.platform)
        if platform is None:
            await self._dead.send(
                d,
                stage="outbound",
                reason="no_sender",
                error=f"no credentials to send to {message.to.platform}",
                attempts=0,
            )
            return
        if message.action in AMBIENT_ACTIONS:
            if message.action in getattr(platform, "ambient", DEFAULT_AMBIENT):
                await self._typing(platform, message)
            await d.ack()
            return
        if message.action == "stream" and self._streams.stale(message):
            await d.ack()  # a newer snapshot of its stream is already shown
            return
        if may_be_sent(d) and await self._sent_before(platform, message):
            self._metrics.outbound_duplicates.labels(message.to.platform).inc()
            await d.ack()
            return
        if not d.alive():  # its channel died during the lookup
            return
        # Bound for this message only: the next log line of the lane must not carry its ids.
        with (
            structlog.contextvars.bound_contextvars(
                event_id=message.event_id, conversation_key=message.conversation_key
            ),
            tracing.span(
                f"send {message.to.platform} {message.action}",
                kind="consumer",
                parent=d.headers,
                attributes=lambda: {
                    "messaging.system": "rabbitmq",
                    "messaging.operation.type": "process",
                    "messaging.message.id": message.id,
                    "gateway.event_id": message.event_id,
                    "gateway.conversation_key": message.conversation_key,
                    "gateway.platform": message.to.platform,
                },
            ) as current,
        ):
            await self._send_with_retries(d, platform, message, current)

    async def _sent_before(self, platform: PlatformSender, message: OutboundMessage) -> bool:
        """The marker says it was sent, or (no marker) the platform shows it: then it is marked now."""
        if await self._store.get(sent_marker(message.id)) is not None:
            log.info("outbound_already_sent", message_id=message.id)
            return True
        if message.action == "stream" or not isinstance(platform, FindsSent):
            return False  # a stream keeps its own state (consumers/streams.py); the others cannot look
        found = await self._find_sent(platform, message)
        if found is None:
            return False
        log.info("outbound_found_sent", message_id=message.id, platform=message.to.platform)
        await self._mark_sent(message, found)
        return True

    async def _find_sent(self, platform: FindsSent, message: OutboundMessage) -> dict[str, Any] | None:
        """The platform's lookup, its 429s waited out like a send's; a lookup that fails otherwise finds nothing
        (the message is posted, as without a lookup)."""
        for attempt in range(1, self._attempts + 1):
            try:
                return await platform.find_sent(message)
            except RateLimited as exc:
                self._metrics.rate_limited.labels(message.to.platform).inc()
                log.info("sent_lookup_rate_limited", retry_after=exc.retry_after, attempt=attempt)
                if attempt < self._attempts:
                    await asyncio.sleep(exc.retry_after)
            except SendError as exc:
                log.warning("sent_lookup_failed", message_id=message.id, error=str(exc))
                return None
        log.warning("sent_lookup_failed", message_id=message.id, error="rate limited on every attempt")
        return None

    async def _typing(self, platform: PlatformSender, message: OutboundMessage) -> None:
        try:
            await platform.send(message)
        except SendError as exc:
            log.info("typing_failed", error=str(exc))

    async def _send_with_retries(
        self, d: Delivery, platform: PlatformSender, message: OutboundMessage, current: object = None
    ) -> None:
        name = message.to.platform
        error = ""
        call = self._call(platform, message)
        snapshot = message.action == "stream" and not message.final
        for attempt in range(1, self._attempts + 1):
            start = time.perf_counter()
            try:
                result = await call()
            except RateLimited as exc:
                self._metrics.rate_limited.labels(name).inc()
                error = str(exc)
                log.info("outbound_rate_limited", retry_after=exc.retry_after, attempt=attempt)
                tracing.add_event(current, "rate_limited", retry_after=exc.retry_after, attempt=attempt)
                if attempt < self._attempts:
                    self._metrics.send_retries.labels(name).inc()
                    await asyncio.sleep(exc.retry_after)
                continue
            except SendError as exc:
                error = str(exc)
                if not d.alive():
                    return
                if exc.retryable and attempt < self._attempts:
                    self._metrics.send_retries.labels(name).inc()
                    log.info("outbound_retry", error=error, attempt=attempt)
                    tracing.add_event(current, "retry", error=error[:500], attempt=attempt)
                    await asyncio.sleep(self._retry_base * 2 ** (attempt - 1))
                    continue
                break
            self._metrics.send_seconds.labels(name).observe(time.perf_counter() - start)
            self._metrics.sent.labels(name, message.action).inc()
            if not snapshot:  # a stream's marker is its final's: the state in the store covers the rest
                await self._mark_sent(message, result)
            log.info("outbound_sent", message_id=message.id, platform=name, action=message.action)
            tracing.set_attributes(current, **{"gateway.attempts": attempt})
            await d.ack()
            return
        tracing.set_error(current, error)
        if snapshot:  # a preview: the final snapshot brings the message up to date, or is dead-lettered
            log.info("stream_snapshot_failed", message_id=message.id, seq=message.seq, error=error)
            await d.ack()
            return
        await self._dead.send(d, stage="outbound", reason="send_failed", error=error, attempts=attempt)

    def _call(self, platform: PlatformSender, message: OutboundMessage) -> Callable[[], Awaitable[dict[str, Any]]]:
        """One attempt: paced by the limiter (a stream paces each of its platform calls itself)."""
        if message.action == "stream":
            return lambda: self._streams.push(platform, message)

        async def send() -> dict[str, Any]:
            await self._limiter.wait(message)
            return await platform.send(message)

        return send

    async def _mark_sent(self, message: OutboundMessage, result: dict[str, object]) -> None:
        try:
            await self._store.put(sent_marker(message.id), json.dumps(result, default=str), SENT_TTL)
        except Exception as exc:  # the post is out; a failed marker risks one duplicate on redelivery
            log.warning("sent_marker_failed", message_id=message.id, error=str(exc))
