"""The bus interface: confirmed publishing and acknowledged consuming.

Two implementations pass one contract suite: :mod:`gateway.core.bus.amqp`
(RabbitMQ through aio-pika) and :mod:`gateway.core.bus.memory` (in-process, used
by ``gateway dev`` without ``AMQP_URL``). Handlers never touch raw AMQP
objects: they get a :class:`Delivery` and settle it once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.core.bus.topology import Topology


@dataclass(eq=False, slots=True)
class Delivery:
    body: bytes
    headers: dict[str, Any]
    routing_key: str
    exchange: str
    message_id: str | None
    #: How many times the broker delivered this message before (0 on first delivery).
    redeliveries: int
    _settle: Callable[[str], Awaitable[None]] = field(repr=False)
    settled: bool = False
    #: False once the channel it came on is gone: the broker will deliver it again, so skip it.
    alive: Callable[[], bool] = field(default=lambda: True, repr=False)
    #: What the consumer worked out on arrival, before the delivery's turn (the decoded event...).
    prepared: object = field(default=None, repr=False)

    @property
    def repeated(self) -> bool:
        """Delivered before by the broker, or replayed by an operator from the dead-letter queue."""
        return self.redeliveries > 0 or "replays" in self.headers

    async def ack(self) -> None:
        await self._once("ack")

    async def requeue(self) -> None:
        await self._once("requeue")

    async def drop(self) -> None:
        """Reject without requeue (only after the message was dead-lettered by us)."""
        await self._once("drop")

    async def _once(self, how: str) -> None:
        if self.settled:
            return
        self.settled = True
        await self._settle(how)


Handler = Callable[[Delivery], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class QueueInfo:
    name: str
    messages: int
    consumers: int


class Subscription(Protocol):
    async def cancel(self) -> None:
        """Stop new deliveries; those already delivered can still be settled."""
        ...

    async def close(self) -> None:
        """Cancel, and give every unsettled delivery back to the queue."""
        ...


class Bus(Protocol):
    topology: Topology

    async def start(self) -> None:
        """Connect and declare the topology (idempotent)."""
        ...

    async def close(self) -> None: ...
    async def ping(self) -> bool: ...

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        headers: dict[str, Any] | None = None,
        message_id: str | None = None,
        timeout: float = 2.0,
    ) -> None:
        """Publish persistently; return only once the broker confirmed. Raises PublishError."""
        ...

    async def subscribe(self, queue: str, handler: Handler, *, prefetch: int) -> Subscription: ...
    async def get(self, queue: str) -> Delivery | None:
        """Take one message without subscribing (for ``dlq``); settle it like any delivery."""
        ...

    async def tap(self, bindings: list[tuple[str, str]], handler: Handler, *, max_length: int) -> Subscription:
        """An exclusive, auto-deleted, length-capped queue bound to ``bindings`` (for ``tail``)."""
        ...

    async def queue_info(self, queue: str) -> QueueInfo: ...
