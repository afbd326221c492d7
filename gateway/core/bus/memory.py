"""The in-process bus twin: RabbitMQ's semantics that the gateway relies on.

Direct and fanout routing, per-subscription prefetch, single active consumer
(the first subscriber gets everything until it leaves), what RabbitMQ 3.x quorum
queues do with returned messages (a nack with requeue goes to the *back*; the
unsettled deliveries of a closed subscription go back to the *front*, in order),
``x-delivery-count``, and length-capped taps that drop their oldest item.
``tests/integration/test_bus_contract.py`` runs the same cases on both.
Everything is lost when the process exits; ``gateway dev`` says so at start-up.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from gateway.core.bus.base import Delivery, Handler, QueueInfo
from gateway.core.bus.topology import Topology
from gateway.core.errors import PublishError


@dataclass
class _Msg:
    seq: int
    body: bytes
    headers: dict[str, Any]
    exchange: str
    routing_key: str
    message_id: str | None
    redeliveries: int = 0


@dataclass(eq=False)
class _Consumer:
    queue: _Queue
    handler: Handler
    prefetch: int
    unacked: dict[int, _Msg] = field(default_factory=dict)
    active: bool = True
    auto_ack: bool = False


class _Queue:
    def __init__(self, name: str, *, single_active: bool, max_length: int | None = None) -> None:
        self.name = name
        self.single_active = single_active
        self.max_length = max_length
        self.ready: deque[_Msg] = deque()
        self.consumers: list[_Consumer] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._rr = 0

    def put(self, msg: _Msg) -> None:
        self.ready.append(msg)
        if self.max_length is not None and len(self.ready) > self.max_length:
            self.ready.popleft()
        self.pump()

    def requeue(self, msgs: list[_Msg], *, front: bool) -> None:
        ordered = sorted(msgs, key=lambda m: m.seq)
        for msg in ordered:
            msg.redeliveries += 1
            msg.headers["x-delivery-count"] = msg.redeliveries
        if front:
            self.ready.extendleft(reversed(ordered))
        else:
            self.ready.extend(ordered)
        self.pump()

    def _eligible(self) -> list[_Consumer]:
        live = [c for c in self.consumers if c.active]
        return live[:1] if self.single_active else live

    def pump(self) -> None:
        while self.ready:
            eligible = [c for c in self._eligible() if c.auto_ack or len(c.unacked) < c.prefetch]
            if not eligible:
                return
            consumer = eligible[self._rr % len(eligible)]
            self._rr += 1
            msg = self.ready.popleft()
            if not consumer.auto_ack:
                consumer.unacked[msg.seq] = msg
            self._dispatch(consumer, msg)

    def _dispatch(self, consumer: _Consumer, msg: _Msg) -> None:
        async def settle(how: str) -> None:
            if consumer.unacked.pop(msg.seq, None) is None:
                return
            if how == "requeue":
                self.requeue([msg], front=False)
            else:
                self.pump()

        delivery = Delivery(
            body=msg.body,
            headers=dict(msg.headers),
            routing_key=msg.routing_key,
            exchange=msg.exchange,
            message_id=msg.message_id,
            redeliveries=msg.redeliveries,
            _settle=settle,
        )
        # A fresh context: a delivery must not inherit the publishing request's log context.
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            _run(consumer.handler, delivery), context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _run(handler: Handler, delivery: Delivery) -> None:
    await handler(delivery)


class _MemorySubscription:
    def __init__(self, consumer: _Consumer) -> None:
        self._consumer = consumer

    async def cancel(self) -> None:
        c = self._consumer
        if c.active:
            c.active = False
            c.queue.consumers.remove(c)
            c.queue.pump()

    async def close(self) -> None:
        await self.cancel()
        c = self._consumer
        pending, c.unacked = list(c.unacked.values()), {}
        if pending:
            c.queue.requeue(pending, front=True)


class MemoryBus:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._queues: dict[str, _Queue] = {}
        self._bindings: dict[tuple[str, str], list[_Queue]] = {}
        self._fanout: dict[str, list[_Queue]] = {}
        self._kinds: dict[str, str] = {}
        self._seq = itertools.count()
        self._closed = False
        self._taps = itertools.count()

    async def start(self) -> None:
        self._closed = False
        if self._kinds:
            return  # declared already: start() is idempotent, like declaring on RabbitMQ
        self._kinds.update(dict(self.topology.exchanges()))
        for spec in self.topology.queues():
            self._queues.setdefault(spec.name, _Queue(spec.name, single_active=spec.single_active))
        for b in self.topology.bindings():
            self._bind(b.exchange, b.routing_key, self._queues[b.queue])

    def _bind(self, exchange: str, key: str, queue: _Queue) -> None:
        if self._kinds.get(exchange) == "fanout":
            self._fanout.setdefault(exchange, []).append(queue)
        else:
            self._bindings.setdefault((exchange, key), []).append(queue)

    async def close(self) -> None:
        self._closed = True

    async def ping(self) -> bool:
        return not self._closed

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
        if self._closed:
            raise PublishError("the in-process bus is closed", event_id=message_id)
        if self._kinds.get(exchange) == "fanout":
            targets = self._fanout.get(exchange, [])
        else:
            targets = self._bindings.get((exchange, routing_key), [])
        if not targets:
            raise PublishError(f"no queue is bound to {exchange!r} with key {routing_key!r}", event_id=message_id)
        for queue in targets:
            queue.put(_Msg(next(self._seq), body, dict(headers or {}), exchange, routing_key, message_id))

    async def subscribe(self, queue: str, handler: Handler, *, prefetch: int) -> _MemorySubscription:
        return self._attach(self._queues[queue], handler, prefetch, auto_ack=False)

    def _attach(self, queue: _Queue, handler: Handler, prefetch: int, *, auto_ack: bool) -> _MemorySubscription:
        consumer = _Consumer(queue, handler, prefetch, auto_ack=auto_ack)
        queue.consumers.append(consumer)
        queue.pump()
        return _MemorySubscription(consumer)

    async def get(self, queue: str) -> Delivery | None:
        q = self._queues.get(queue)
        if q is None:
            raise PublishError(f"cannot read {queue}: no such queue")
        if q.single_active:
            raise PublishError(f"cannot read {queue}: basic.get is refused on single-active-consumer queues")
        if not q.ready:
            return None
        result: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()

        async def grab(delivery: Delivery) -> None:
            result.set_result(delivery)

        consumer = _Consumer(q, grab, prefetch=1)
        msg = q.ready.popleft()
        consumer.unacked[msg.seq] = msg
        q._dispatch(consumer, msg)
        return await result

    async def tap(self, bindings: list[tuple[str, str]], handler: Handler, *, max_length: int) -> _MemorySubscription:
        queue = _Queue(f"tap.{next(self._taps)}", single_active=False, max_length=max_length)
        for exchange, key in bindings:
            self._bind(exchange, key, queue)
        return self._attach(queue, handler, prefetch=max_length, auto_ack=True)

    async def queue_info(self, queue: str) -> QueueInfo:
        q = self._queues[queue]
        consumers = min(1, len(q.consumers)) if q.single_active else len(q.consumers)  # RabbitMQ counts the active one
        return QueueInfo(queue, len(q.ready), consumers)
