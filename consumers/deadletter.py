"""Dead-lettering: keep the original body, say why, never lose it.

Headers carry the stage (``dispatch`` or ``outbound``), the reason, the last
error, the attempts, when it failed and where it came from, so ``gateway dlq``
can show and replay it without parsing anything else.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog

from gateway.core.bus.base import Delivery
from gateway.core.errors import PublishError
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.tracebacks import LIMIT

log = structlog.get_logger(__name__)


def dead_headers(
    delivery: Delivery, *, stage: str, reason: str, error: str, attempts: int, traceback: str | None = None
) -> dict[str, Any]:
    headers = {k: v for k, v in delivery.headers.items() if not k.startswith("x-")}
    headers.update(
        {
            "x-stage": stage,
            "x-reason": reason,
            "x-error": error[:2000],
            "x-attempts": attempts,
            "x-failed-at": datetime.now(UTC).isoformat(),
            "x-origin-exchange": delivery.exchange,
            "x-origin-routing-key": delivery.routing_key,
        }
    )
    if traceback:
        headers["x-traceback"] = traceback[-LIMIT:]
    return headers


class DeadLetters:
    def __init__(self, publisher: Publisher, metrics: Metrics) -> None:
        self._publisher = publisher
        self._metrics = metrics

    async def send(
        self, delivery: Delivery, *, stage: str, reason: str, error: str, attempts: int, traceback: str | None = None
    ) -> None:
        """Publish to the dead-letter queue (confirmed), then ack the original."""
        headers = dead_headers(
            delivery, stage=stage, reason=reason, error=error, attempts=attempts, traceback=traceback
        )
        delay = 0.5
        while True:
            # Keep trying rather than requeue: a quorum queue puts a requeued message at the back,
            # behind later events of its conversation. The conversation waits here instead; if the
            # connection dies meanwhile, the broker redelivers the message in its place.
            try:
                await self._publisher.dead(delivery.body, headers, delivery.message_id)
                break
            except PublishError as exc:
                if not delivery.alive():
                    return  # the broker takes the original back and delivers it again
                log.warning("dead_letter_publish_failed", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        self._metrics.dead_letters.labels(stage).inc()
        log.warning(
            "dead_lettered",
            stage=stage,
            reason=reason,
            error=error[:300],
            attempts=attempts,
            message_id=delivery.message_id,
        )
        await delivery.ack()
