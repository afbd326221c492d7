"""RabbitMQ through aio-pika: persistent, confirmed, mandatory publishes.

The connection is robust (aio-pika reconnects and restores channels and
consumers by itself). While it is down every publish fails fast with
:class:`PublishError`, so the HTTP layer answers 503 and the platform retries.
Acks on a delivery from a connection that died fail quietly: the broker has
already put that message back and will deliver it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aio_pika.connection import make_url
from aio_pika.exceptions import AMQPError, DeliveryError
from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic

from gateway.core.bus.acks import AckBatcher
from gateway.core.bus.base import Delivery, Handler, QueueInfo
from gateway.core.bus.publishes import PublishBatcher
from gateway.core.bus.reconnect import BackoffConnection
from gateway.core.bus.topology import Topology
from gateway.core.errors import PublishError

log = structlog.get_logger(__name__)
#: Confirmed publishes on one channel queue behind each other (aiormq holds a per-channel lock until the
#: frame is written); a few channels, chosen by partition, let concurrent requests publish in parallel.
PUBLISH_CHANNELS = 4
_PUBLISH_ERRORS = (AMQPError, aiormq.exceptions.AMQPError, ConnectionError, OSError, RuntimeError)


def _delivered(raw: DeliveredMessage, *, auto_acked: bool = False, acks: AckBatcher | None = None) -> Delivery:
    """A :class:`Delivery` over aiormq's frame data, settled straight on the aiormq channel (acks through
    ``acks``, one write per loop iteration, when given)."""
    frame, channel, properties = raw.delivery, raw.channel, raw.header.properties
    assert isinstance(frame, Basic.Deliver | Basic.GetOk)
    delivery_tag = frame.delivery_tag or 0
    headers = dict(properties.headers or {})
    count = headers.get("x-delivery-count")
    redeliveries = int(count) if isinstance(count, int) else (1 if frame.redelivered else 0)

    async def settle(how: str) -> None:
        if auto_acked:
            return
        if how == "ack" and acks is not None:
            acks.ack(channel, delivery_tag)
            return
        try:
            if how == "ack":
                # No wait for the socket drain: an ack has no reply.
                await channel.basic_ack(delivery_tag, wait=False)
            elif how == "requeue":
                await channel.basic_nack(delivery_tag, requeue=True)
            else:
                await channel.basic_reject(delivery_tag, requeue=False)
        except _PUBLISH_ERRORS as exc:
            log.warning("settle_failed", how=how, error=str(exc), hint="the broker will redeliver it")

    return Delivery(
        body=raw.body,
        headers=headers,
        routing_key=frame.routing_key or "",
        exchange=frame.exchange or "",
        message_id=properties.message_id,
        redeliveries=redeliveries,
        _settle=settle,
        # After a reconnection the old channel is closed: the broker has put the message back and will
        # deliver it again on the new one, so work on this copy would be done twice.
        alive=lambda: not channel.is_closed,
    )


def _underlay(channel: AbstractChannel) -> aiormq.abc.AbstractChannel | None:
    """The aiormq channel under an aio-pika one right now (None while it is being restored)."""
    underlay = getattr(channel, "_channel", None)
    return None if underlay is None else underlay.channel


class _AmqpSubscription:
    """A consumer that re-attaches itself when the robust connection comes back.

    aio-pika reopens channels after a broker restart but does not restore consumers started on a
    queue obtained with ``get_queue(ensure=False)``; without ``reopen`` a consumer process would
    sit idle on a live connection while its queues fill up.
    """

    def __init__(
        self,
        bus: AmqpBus,
        queue: str,
        handler: Handler,
        prefetch: int,
        tap: tuple[list[tuple[str, str]], int] | None = None,
    ) -> None:
        self._bus = bus
        self._queue_name = queue
        self._handler = handler
        self._prefetch = prefetch
        self._tap = tap
        self._channel: AbstractChannel | None = None
        self._underlay: aiormq.abc.AbstractChannel | None = None
        self._tag = ""
        self._cancelled = False

    async def open(self) -> None:
        channel = await self._bus._consumer_channel(self._prefetch)
        if self._tap is None:
            queue = await channel.get_queue(self._queue_name, ensure=False)
        else:
            bindings, max_length = self._tap
            queue = await channel.declare_queue(
                "",
                exclusive=True,
                auto_delete=True,
                durable=False,
                arguments={"x-max-length": max_length, "x-overflow": "drop-head"},
            )
            for exchange, key in bindings:
                await queue.bind(exchange, routing_key=key)
        auto_acked = self._tap is not None
        handler = self._handler
        acks = self._bus._acks

        # Straight on aiormq: aio-pika's consumer wraps each delivery in an IncomingMessage and a second
        # Task, a fifth of the consumer's CPU per turn. Re-attaching after a reconnection is ours anyway.
        async def on_message(raw: DeliveredMessage) -> None:
            await handler(_delivered(raw, auto_acked=auto_acked, acks=acks))

        underlay = await channel.get_underlay_channel()
        ok = await underlay.basic_consume(queue.name, on_message, no_ack=auto_acked)
        self._tag = ok.consumer_tag or ""
        self._channel, self._underlay = channel, underlay

    async def reopen(self) -> None:
        if self._cancelled:
            return
        old = self._channel
        if old is not None:
            with contextlib.suppress(*_PUBLISH_ERRORS, asyncio.TimeoutError):
                await old.close()
        await self.open()
        log.info("consumer_reattached", queue=self._queue_name or "tap")

    async def cancel(self) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        self._bus._subscriptions.discard(self)
        if self._underlay is not None and not self._underlay.is_closed:
            with contextlib.suppress(*_PUBLISH_ERRORS, asyncio.TimeoutError):
                await self._underlay.basic_cancel(self._tag, timeout=5)

    async def close(self) -> None:
        await self.cancel()
        self._bus._acks.flush()  # acks given this iteration go out before the channel closes
        if self._channel is not None:
            with contextlib.suppress(*_PUBLISH_ERRORS, asyncio.TimeoutError):
                await self._channel.close()


class AmqpBus:
    def __init__(self, url: str, topology: Topology, *, connect_timeout: float = 5.0) -> None:
        self.topology = topology
        self._url = url
        self._timeout = connect_timeout
        self._conn: AbstractRobustConnection | None = None
        self._publishers: list[tuple[AbstractChannel, dict[str, AbstractExchange]]] = []
        self._subscriptions: set[_AmqpSubscription] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._acks = AckBatcher()
        self._publishes = PublishBatcher()
        self._ready = False

    async def start(self) -> None:
        """Connect, declare the topology on its own channel, then open the publishing channel.

        Nothing is published (and ``ping`` stays False, so ``/readyz`` says 503) until every
        exchange, queue and binding exists: an early publish would be returned unroutable.
        """
        self._ready = False
        if self._conn is not None:  # a retried start must not leave the previous connection reconnecting forever
            await self.close()
        # The connection object exists before it connects, so a start cancelled mid-handshake (SIGTERM
        # while the broker is unreachable) leaves nothing reconnecting behind: close() closes it.
        self._conn = BackoffConnection(make_url(self._url), client_properties={"connection_name": "chat-gateway"})
        await self._conn.connect(timeout=self._timeout)
        self._conn.reconnect_callbacks.add(self._on_reconnect)
        declaring = await self._conn.channel(publisher_confirms=False)
        try:
            await self._declare(declaring)
        finally:
            with contextlib.suppress(*_PUBLISH_ERRORS):
                await declaring.close()
        self._publishers = []
        for _ in range(PUBLISH_CHANNELS):
            channel = await self._conn.channel(publisher_confirms=True, on_return_raises=True)
            exchanges = {name: await channel.get_exchange(name, ensure=False) for name, _ in self.topology.exchanges()}
            self._publishers.append((channel, exchanges))
        self._ready = True

    async def _declare(self, channel: AbstractChannel) -> None:
        kinds = {"direct": aio_pika.ExchangeType.DIRECT, "fanout": aio_pika.ExchangeType.FANOUT}
        exchanges = {}
        for name, kind in self.topology.exchanges():
            exchanges[name] = await channel.declare_exchange(name, kinds[kind], durable=True)
        for spec in self.topology.queues():
            args: dict[str, Any] = {"x-queue-type": "quorum"}
            if spec.single_active:
                args["x-single-active-consumer"] = True
            await channel.declare_queue(spec.name, durable=True, arguments=args)
        for b in self.topology.bindings():
            queue = await channel.get_queue(b.queue, ensure=False)
            await queue.bind(exchanges[b.exchange], routing_key=b.routing_key)

    async def close(self) -> None:
        self._acks.flush()
        self._publishes.flush()
        if self._conn is not None:
            with contextlib.suppress(*_PUBLISH_ERRORS):
                await self._conn.close()
        self._conn = None
        self._ready = False

    async def ping(self) -> bool:
        return (
            self._ready
            and self._conn is not None
            and not self._conn.is_closed
            and all(not channel.is_closed for channel, _ in self._publishers)
        )

    def _publisher_for(self, routing_key: str) -> tuple[AbstractChannel, dict[str, AbstractExchange]] | None:
        """A partition always publishes on the same channel, so its messages keep their order."""
        if not self._publishers:
            return None
        index = int(routing_key) if routing_key.isdigit() else zlib.crc32(routing_key.encode())
        return self._publishers[index % len(self._publishers)]

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
        publisher = self._publisher_for(routing_key)
        target = publisher[1].get(exchange) if publisher else None
        underlay = _underlay(publisher[0]) if publisher else None
        if not self._ready or target is None or underlay is None or underlay.is_closed:
            raise PublishError("RabbitMQ is not connected", event_id=message_id)
        properties = Basic.Properties(
            content_type="application/json",
            delivery_mode=2,  # persistent
            headers=headers or {},
            message_id=message_id,
            priority=0,  # as aio-pika's Message sets it
        )
        try:
            confirmation = self._publishes.publish(underlay, target.name, routing_key, body, properties)
        except _PUBLISH_ERRORS as exc:
            raise PublishError(f"RabbitMQ is unavailable: {exc!r}", event_id=message_id) from exc
        try:
            async with asyncio.timeout(timeout):  # no extra task per publish, unlike wait_for on 3.11
                await confirmation
        except TimeoutError as exc:
            raise PublishError(f"RabbitMQ did not confirm within {timeout} s", event_id=message_id) from exc
        except DeliveryError as exc:
            raise PublishError(f"RabbitMQ refused the message: {exc}", event_id=message_id) from exc
        except _PUBLISH_ERRORS as exc:
            raise PublishError(f"RabbitMQ is unavailable: {exc!r}", event_id=message_id) from exc
        finally:
            self._publishes.forget(underlay, properties.message_id)

    async def _consumer_channel(self, prefetch: int) -> AbstractChannel:
        if self._conn is None:
            raise PublishError("RabbitMQ is not connected")
        channel = await self._conn.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def subscribe(self, queue: str, handler: Handler, *, prefetch: int) -> _AmqpSubscription:
        sub = _AmqpSubscription(self, queue, handler, prefetch)
        await sub.open()
        self._subscriptions.add(sub)
        return sub

    def _on_reconnect(self, *_: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._reattach())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reattach(self) -> None:
        log.warning("broker_reconnected", consumers=len(self._subscriptions))
        for sub in list(self._subscriptions):
            try:
                await sub.reopen()
            except Exception as exc:  # the connection dropped again: the next reconnect retries
                log.warning("consumer_reattach_failed", error=repr(exc))
                return

    async def get(self, queue: str) -> Delivery | None:
        """basic.get on a channel of its own: a refusal (RabbitMQ refuses it on single-active-consumer
        queues) closes that channel, never the publishing one. The channel closes once the delivery
        is settled."""
        if self._conn is None:
            raise PublishError("RabbitMQ is not connected")
        channel = await self._conn.channel(publisher_confirms=False)
        try:
            underlay = await channel.get_underlay_channel()
            raw = await underlay.basic_get(queue, no_ack=False, timeout=5)
        except (*_PUBLISH_ERRORS, TimeoutError) as exc:
            with contextlib.suppress(*_PUBLISH_ERRORS):
                await channel.close()
            raise PublishError(f"cannot read {queue}: {exc!r}") from exc
        if not isinstance(raw.delivery, Basic.GetOk):
            with contextlib.suppress(*_PUBLISH_ERRORS):
                await channel.close()
            return None
        delivery = _delivered(raw)
        settle = delivery._settle

        async def settle_then_close(how: str) -> None:
            try:
                await settle(how)
            finally:
                with contextlib.suppress(*_PUBLISH_ERRORS):
                    await channel.close()

        delivery._settle = settle_then_close
        return delivery

    async def tap(self, bindings: list[tuple[str, str]], handler: Handler, *, max_length: int) -> _AmqpSubscription:
        sub = _AmqpSubscription(self, "", handler, max(100, min(max_length, 1000)), tap=(bindings, max_length))
        await sub.open()
        self._subscriptions.add(sub)
        return sub

    async def queue_info(self, queue: str) -> QueueInfo:
        if self._conn is None:
            raise PublishError("RabbitMQ is not connected")
        channel = await self._conn.channel(publisher_confirms=False)
        try:
            q = await channel.declare_queue(queue, passive=True)
            result = q.declaration_result
            return QueueInfo(queue, int(result.message_count or 0), int(result.consumer_count or 0))
        finally:
            with contextlib.suppress(*_PUBLISH_ERRORS):
                await channel.close()
