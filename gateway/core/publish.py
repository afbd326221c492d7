"""Publishing envelopes to their partition, confirmed and timed."""

from __future__ import annotations

import time
from typing import Any

from gateway.core import tracing
from gateway.core.bus.base import Bus
from gateway.core.events import Event, OutboundMessage
from gateway.core.metrics import Metrics


def event_headers(event: Event) -> dict[str, Any]:
    """Small headers that let a tail filter without parsing bodies."""
    headers: dict[str, Any] = {
        "platform": event.platform,
        "kind": str(event.kind),
        "conversation_key": event.conversation_key,
        "agent": event.agent or "",
        "busy": event.busy,
    }
    if event.control is not None:
        headers["control"] = event.control
    return headers


_NO_RAW = {"raw"}
# ``raw`` is the last field, so the envelope without it, then ``"raw":`` and the original bytes, reads as
# the same object with the same field order.
assert list(Event.model_fields)[-1] == "raw"


def event_json(event: Event, raw_json: bytes | None = None) -> bytes:
    """The event's wire JSON. With ``raw_json`` (the body ``event.raw`` was parsed from, strict JSON) the
    payload is not serialized again: its bytes are written in place (an object either way)."""
    if raw_json is None:
        return event.model_dump_json().encode()
    head = event.model_dump_json(exclude=_NO_RAW).encode()
    return b"".join((head[:-1], b',"raw":', raw_json, b"}"))


class Publisher:
    def __init__(self, bus: Bus, metrics: Metrics, *, timeout: float = 2.0) -> None:
        self.bus = bus
        self.topology = bus.topology
        self._metrics = metrics
        self._timeout = timeout

    async def _publish(self, exchange: str, key: str, body: bytes, headers: dict[str, Any], msg_id: str) -> None:
        with tracing.span(
            f"publish {exchange}",
            kind="producer",
            attributes=lambda: {
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "publish",
                "messaging.destination.name": exchange,
                "messaging.rabbitmq.destination.routing_key": key,
                "messaging.message.id": msg_id,
            },
        ):
            tracing.inject(headers)
            start = time.perf_counter()
            await self.bus.publish(exchange, key, body, headers=headers, message_id=msg_id, timeout=self._timeout)
        self._metrics.observe_publish(exchange, time.perf_counter() - start)

    async def event(self, event: Event, *, raw_json: bytes | None = None) -> None:
        """``raw_json``: strict JSON whose parsed value is ``event.raw`` (the webhook's body), written as it is."""
        partition = self.topology.partition_of(event.conversation_key)
        await self._publish(
            self.topology.events_exchange,
            str(partition),
            event_json(event, raw_json),
            event_headers(event),
            event.id,
        )

    async def outbound(self, message: OutboundMessage, *, recheck: bool = False) -> None:
        """``recheck``: the turn that made it may have run before, so the sender looks up its sent marker."""
        partition = self.topology.partition_of(message.conversation_key)
        headers: dict[str, Any] = {
            "platform": message.to.platform,
            "kind": message.action,
            "conversation_key": message.conversation_key,
            "event_id": message.event_id,
        }
        if recheck:
            headers["recheck"] = 1
        await self._publish(
            self.topology.outbound_exchange, str(partition), message.model_dump_json().encode(), headers, message.id
        )

    async def dead(self, body: bytes, headers: dict[str, Any], msg_id: str | None) -> None:
        await self._publish(self.topology.dead_exchange, "", body, headers, msg_id or "")
