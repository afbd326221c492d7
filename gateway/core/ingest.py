"""Route, deduplicate and publish one accepted event.

Dedupe on the platform's delivery id. The claim is first a short *pending*
mark, upgraded to *done* for 24 h after RabbitMQ confirmed; it is released when
publishing fails. A retry that arrives while the first attempt is still
publishing is answered 503 (the platform retries again), never 200: a 200 for
an attempt that then fails would lose the event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog

from gateway.core.bounds import check_event
from gateway.core.events import Event
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.routing import Router
from gateway.core.signals import Signals, StopSignal
from gateway.core.store.base import Store

log = structlog.get_logger(__name__)
PENDING_TTL = 30.0


class Outcome(StrEnum):
    PUBLISHED = "published"
    DUPLICATE = "duplicate"
    IN_FLIGHT = "in_flight"


@dataclass(frozen=True)
class Admission:
    outcome: Outcome
    #: The event that carries this delivery: the one just published, or, for a duplicate, the first one.
    event_id: str


class _MarkWatch:
    """Logs a done mark that could not be written (and reads every outcome, so none goes unretrieved)."""

    __slots__ = ("event_id",)

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id

    def __call__(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            return
        if (exc := fut.exception()) is not None:
            log.warning("dedupe_mark_failed", event_id=self.event_id, error=str(exc))


def dedupe_key(event: Event) -> str:
    return f"dedupe:{event.platform}:{event.reply_to.bot}:{event.delivery_id}"


class Ingestor:
    def __init__(
        self,
        publisher: Publisher,
        store: Store,
        router: Router,
        metrics: Metrics,
        *,
        dedupe_ttl: float = 86400,
        signals: Signals | None = None,
    ) -> None:
        self._signals = signals
        self._publisher = publisher
        self._store = store
        self._router = router
        self._metrics = metrics
        self._ttl = dedupe_ttl

    async def accept(self, event: Event, *, agent: str | None = None, raw_json: bytes | None = None) -> Outcome:
        """Publish ``event`` once. Raises PublishError or StoreUnavailable when it could not be queued.

        ``agent`` overrides the route's agent (dispatch from code names its agent). ``raw_json``: the
        strict JSON whose parsed value is ``event.raw`` (written as it is, see ``Publisher.event``).
        """
        return (await self.admit(event, agent=agent, raw_json=raw_json)).outcome

    async def admit(self, event: Event, *, agent: str | None = None, raw_json: bytes | None = None) -> Admission:
        """:meth:`accept`, also saying which event carries the delivery (the first one, for a duplicate)."""
        check_event(event)
        event = self._router.apply(event)
        if agent is not None and event.agent != agent:
            event = event.model_copy(update={"agent": agent})
        key = dedupe_key(event)
        existing = await self._store.claim(key, f"pending:{event.id}", PENDING_TTL)
        if existing is not None:
            self._metrics.dedupe_hits.labels(event.platform).inc()
            state, _, first_id = existing.partition(":")
            outcome = Outcome.IN_FLIGHT if state == "pending" else Outcome.DUPLICATE
            return Admission(outcome, first_id or event.id)
        if event.control == "stop" and self._signals is not None:
            # At once to every consumer, ahead of the event's durable copy, which could wait behind the
            # partition's deliveries (gateway/core/signals.py).
            await self._signals.publish_stop(StopSignal.of(event))
        try:
            await self._publisher.event(event, raw_json=raw_json)
        except BaseException:
            await self._release(key)
            raise
        # The done mark rides with the next batch of store commands (a later claim of the same key comes
        # after it in that batch); nobody waits for it. Its failure is a warning: the event is published, the
        # pending mark answers a retry 503 until it expires, and a retry after that is caught downstream.
        self._store.put_soon(key, f"done:{event.id}", self._ttl).add_done_callback(_MarkWatch(event.id))
        log.info(
            "event_accepted",
            event_id=event.id,
            platform=event.platform,
            conversation_key=event.conversation_key,
            kind=str(event.kind),
            agent=event.agent,
        )
        return Admission(Outcome.PUBLISHED, event.id)

    async def _release(self, key: str) -> None:
        try:
            await self._store.delete(key)
        except Exception as exc:  # the pending mark expires by itself within PENDING_TTL
            log.warning("dedupe_release_failed", key=key, error=str(exc))
