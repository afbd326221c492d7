"""The bus contract, written once, run against the in-process twin (``memory``) and RabbitMQ (``real``).

Every wait is on a condition (``eventually``); "nothing more arrived" is asserted only after a condition
that the broker itself reports (a queue's ready count) shows the messages are where we expect them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from gateway.core.bus.amqp import AmqpBus
from gateway.core.bus.base import Bus, Delivery, QueueInfo
from gateway.core.bus.topology import Topology
from gateway.core.errors import PublishError
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(30)


class Recorder:
    """A handler that keeps every delivery; acks at once unless ``ack`` is False."""

    def __init__(self, *, ack: bool = True) -> None:
        self.ack = ack
        self.deliveries: list[Delivery] = []

    async def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        if self.ack:
            await delivery.ack()

    def bodies(self) -> list[bytes]:
        return [d.body for d in self.deliveries]

    def __len__(self) -> int:
        return len(self.deliveries)


async def ready_count(bus: Bus, queue: str, expected: int, timeout: float = 10.0) -> None:
    async def probe() -> int:
        return (await bus.queue_info(queue)).messages

    await eventually(probe, until=lambda n: n == expected, timeout=timeout, what=f"{queue} to hold {expected}")


def body(i: int) -> bytes:
    return f'{{"n": {i}}}'.encode()


async def publish_many(bus: Bus, key: str, n: int, start: int = 0) -> list[bytes]:
    bodies = [body(i) for i in range(start, start + n)]
    for i, b in enumerate(bodies, start):
        await bus.publish(bus.topology.events_exchange, key, b, message_id=f"m-{i}")
    return bodies


# -- publishing and routing -------------------------------------------------------------------------------


async def test_publish_lands_only_in_its_partition_queue_intact(bus: Bus) -> None:
    topo = bus.topology
    headers = {"event-id": "ev-1", "attempt": 3}
    await bus.publish(topo.events_exchange, "2", b'{"hello": "world"}', headers=headers, message_id="msg-1")

    await ready_count(bus, topo.dispatch_queue(2), 1)
    for p in (0, 1, 3):
        assert (await bus.queue_info(topo.dispatch_queue(p))).messages == 0
        assert (await bus.queue_info(topo.outbound_queue(p))).messages == 0
    assert (await bus.queue_info(topo.dead_queue)).messages == 0

    rec = Recorder()
    sub = await bus.subscribe(topo.dispatch_queue(2), rec, prefetch=10)
    await eventually(lambda: len(rec) == 1, what="the delivery")
    d = rec.deliveries[0]
    assert d.body == b'{"hello": "world"}'
    assert d.headers == headers
    assert d.message_id == "msg-1"
    assert d.routing_key == "2"
    assert d.exchange == topo.events_exchange
    assert d.redeliveries == 0
    await sub.close()


@pytest.mark.parametrize("exchange", ["events", "outbound"])
async def test_publish_to_unbound_routing_key_raises(bus: Bus, exchange: str) -> None:
    name = f"{bus.topology.namespace}.{exchange}"
    with pytest.raises(PublishError):
        await bus.publish(name, "99", b"{}", message_id="lost")
    # The bus is still usable afterwards.
    await bus.publish(name, "0", b"{}", message_id="kept")


async def test_publish_routed_only_to_a_tap_is_accepted(bus: Bus, kind: str, request: pytest.FixtureRequest) -> None:
    """RabbitMQ's ``mandatory`` only returns messages no queue took: a tap queue counts as a queue."""
    rec = Recorder()
    tap = await bus.tap([(bus.topology.events_exchange, "99")], rec, max_length=5)
    await bus.publish(bus.topology.events_exchange, "99", b"{}", message_id="tap-only")
    await eventually(lambda: len(rec) == 1, what="the tap copy")
    await tap.close()


# -- consuming ---------------------------------------------------------------------------------------------


async def test_per_key_fifo_with_prefetch(bus: Bus) -> None:
    sent = await publish_many(bus, "1", 200)
    rec = Recorder()
    sub = await bus.subscribe(bus.topology.dispatch_queue(1), rec, prefetch=50)
    await eventually(lambda: len(rec) == 200, what="200 deliveries")
    assert rec.bodies() == sent
    await sub.close()


async def test_requeued_delivery_comes_back_with_redeliveries(bus: Bus) -> None:
    sent = await publish_many(bus, "0", 5)
    seen: list[Delivery] = []

    async def handler(d: Delivery) -> None:
        seen.append(d)
        if len(seen) == 1:
            await d.requeue()
        else:
            await d.ack()

    sub = await bus.subscribe(bus.topology.dispatch_queue(0), handler, prefetch=1)
    await eventually(lambda: len(seen) == 6, what="6 deliveries")
    assert sorted(d.body for d in seen) == sorted([sent[0], *sent])
    again = [d for d in seen[1:] if d.body == sent[0]]
    assert len(again) == 1
    assert again[0].redeliveries >= 1
    assert seen[0].redeliveries == 0
    assert all(d.redeliveries == 0 for d in seen[1:] if d.body != sent[0])
    await ready_count(bus, bus.topology.dispatch_queue(0), 0)
    await sub.close()


async def test_requeue_puts_the_message_behind_those_waiting(
    bus: Bus, kind: str, request: pytest.FixtureRequest
) -> None:
    """RabbitMQ 3.10 quorum queues re-enqueue a nacked (requeue=True) message at the BACK of the queue.

    Only a consumer that goes away (channel closed) gives its messages back at the front, in order: see
    ``test_close_gives_unsettled_back_in_order_to_the_next_subscriber``.
    """
    sent = await publish_many(bus, "0", 5)
    seen: list[Delivery] = []

    async def handler(d: Delivery) -> None:
        seen.append(d)
        if len(seen) == 1:
            await d.requeue()
        else:
            await d.ack()

    sub = await bus.subscribe(bus.topology.dispatch_queue(0), handler, prefetch=1)
    await eventually(lambda: len(seen) == 6, what="6 deliveries")
    assert [d.body for d in seen] == [*sent, sent[0]]
    await sub.close()


async def test_requeue_of_one_of_many_unsettled_is_not_lost(bus: Bus) -> None:
    """Prefetch 3: m0..m2 are out, m0 is requeued while m1, m2 are unsettled; everything arrives once more."""
    sent = await publish_many(bus, "0", 6)
    rec = Recorder(ack=False)
    sub = await bus.subscribe(bus.topology.dispatch_queue(0), rec, prefetch=3)
    await eventually(lambda: len(rec) == 3, what="3 deliveries")
    await rec.deliveries[0].requeue()
    await eventually(lambda: len(rec) == 4, what="one more delivery after the requeue")
    for d in rec.deliveries[1:]:
        await d.ack()
    await eventually(lambda: len(rec) == 7, what="the rest")
    for d in rec.deliveries[4:]:
        await d.ack()
    assert sorted(rec.bodies()[3:]) == sorted([sent[0], *sent[3:]])
    # The three never-requeued ones keep their relative order.
    assert [b for b in rec.bodies()[3:] if b != sent[0]] == sent[3:]
    await ready_count(bus, bus.topology.dispatch_queue(0), 0)
    await sub.close()


async def test_redelivered_headers_carry_the_delivery_count(
    bus: Bus, kind: str, request: pytest.FixtureRequest
) -> None:
    """Quorum queues add ``x-delivery-count`` to a redelivered message; consumers must tolerate x- headers."""
    await bus.publish(bus.topology.events_exchange, "2", b"{}", headers={"a": "b"})
    rec = Recorder(ack=False)
    sub = await bus.subscribe(bus.topology.dispatch_queue(2), rec, prefetch=1)
    await eventually(lambda: len(rec) == 1, what="the delivery")
    assert rec.deliveries[0].headers == {"a": "b"}
    await rec.deliveries[0].requeue()
    await eventually(lambda: len(rec) == 2, what="the redelivery")
    assert rec.deliveries[1].headers == {"a": "b", "x-delivery-count": 1}
    await rec.deliveries[1].ack()
    await sub.close()


async def test_close_gives_unsettled_back_in_order_to_the_next_subscriber(bus: Bus) -> None:
    queue = bus.topology.dispatch_queue(3)
    sent = await publish_many(bus, "3", 3)
    first = Recorder(ack=False)
    sub1 = await bus.subscribe(queue, first, prefetch=3)
    await eventually(lambda: len(first) == 3, what="3 unsettled deliveries")
    sent += await publish_many(bus, "3", 3, start=3)
    await ready_count(bus, queue, 3)

    await sub1.close()
    await ready_count(bus, queue, 6)
    second = Recorder()
    sub2 = await bus.subscribe(queue, second, prefetch=50)
    await eventually(lambda: len(second) == 6, what="6 deliveries to the next subscriber")
    assert second.bodies() == sent
    assert all(d.redeliveries >= 1 for d in second.deliveries[:3])
    assert all(d.redeliveries == 0 for d in second.deliveries[3:])
    # Settling a delivery of the closed subscription is harmless.
    await first.deliveries[0].ack()
    await sub2.close()


async def test_single_active_consumer(bus: Bus) -> None:
    queue = bus.topology.dispatch_queue(1)
    a, b = Recorder(), Recorder()
    sub_a = await bus.subscribe(queue, a, prefetch=10)
    sub_b = await bus.subscribe(queue, b, prefetch=10)
    sent = await publish_many(bus, "1", 6)
    await eventually(lambda: len(a) == 6, what="the first subscriber to get everything")
    assert len(b) == 0
    assert a.bodies() == sent

    await sub_a.close()
    rest = await publish_many(bus, "1", 4, start=6)
    await eventually(lambda: len(b) == 4, what="the second subscriber to take over")
    assert b.bodies() == rest
    assert len(a) == 6
    await sub_b.close()


async def test_prefetch_limits_unsettled_deliveries(bus: Bus) -> None:
    queue = bus.topology.dispatch_queue(2)
    await publish_many(bus, "2", 10)
    rec = Recorder(ack=False)
    sub = await bus.subscribe(queue, rec, prefetch=3)
    await eventually(lambda: len(rec) == 3, what="3 deliveries")
    await ready_count(bus, queue, 7)
    assert len(rec) == 3
    # Acking one makes room for exactly one more.
    await rec.deliveries[0].ack()
    await eventually(lambda: len(rec) == 4, what="a 4th delivery after one ack")
    await ready_count(bus, queue, 6)
    assert len(rec) == 4
    await sub.close()


async def test_acks_given_right_before_close_all_count(bus: Bus) -> None:
    """The AMQP bus sends the acks of one loop iteration together: closing in that same iteration must
    still let them all reach the broker, or the next subscriber would get those messages again."""
    queue = bus.topology.dispatch_queue(0)
    await publish_many(bus, "0", 20)
    first = Recorder(ack=False)
    sub1 = await bus.subscribe(queue, first, prefetch=50)
    await eventually(lambda: len(first) == 20, what="20 unsettled deliveries")
    for d in first.deliveries:
        await d.ack()
    await sub1.close()
    marker = (await publish_many(bus, "0", 1, start=99))[0]
    second = Recorder()
    sub2 = await bus.subscribe(queue, second, prefetch=50)
    await eventually(lambda: marker in second.bodies(), what="the message published after the close")
    assert second.bodies() == [marker]
    await sub2.close()


# -- tap, dead letters, get -------------------------------------------------------------------------------


async def test_tap_sees_copies_without_stealing(bus: Bus) -> None:
    topo = bus.topology
    rec = Recorder()
    tap = await bus.tap(topo.tap_bindings(), rec, max_length=5)
    await bus.publish(topo.events_exchange, "1", b"in", message_id="i")
    await bus.publish(topo.outbound_exchange, "2", b"out", message_id="o")
    await bus.publish(topo.dead_exchange, "whatever", b"dead", message_id="d")
    await eventually(lambda: len(rec) == 3, what="3 tap copies")
    assert sorted((d.exchange, d.body) for d in rec.deliveries) == sorted(
        [(topo.events_exchange, b"in"), (topo.outbound_exchange, b"out"), (topo.dead_exchange, b"dead")]
    )
    # Settling a tap copy (auto-acked) is a no-op and must not disturb anything.
    for d in rec.deliveries:
        await d.requeue()

    await ready_count(bus, topo.dispatch_queue(1), 1)
    await ready_count(bus, topo.outbound_queue(2), 1)
    await ready_count(bus, topo.dead_queue, 1)
    inbound, outbound = Recorder(), Recorder()
    subs = [
        await bus.subscribe(topo.dispatch_queue(1), inbound, prefetch=10),
        await bus.subscribe(topo.outbound_queue(2), outbound, prefetch=10),
    ]
    await eventually(lambda: inbound.bodies() == [b"in"] and outbound.bodies() == [b"out"], what="the originals")
    dead = await bus.get(topo.dead_queue)
    assert dead is not None
    assert dead.body == b"dead"
    await dead.ack()
    for sub in subs:
        await sub.close()
    await tap.close()


async def test_tap_with_max_length_sees_the_newest_and_originals_stay(bus: Bus) -> None:
    topo = bus.topology
    rec = Recorder()
    tap = await bus.tap(topo.tap_bindings(), rec, max_length=5)
    sent = await publish_many(bus, "0", 20)
    await eventually(lambda: bool(rec.deliveries) and rec.deliveries[-1].body == sent[-1], what="the newest copy")
    assert len(rec) >= 5
    assert rec.bodies()[-5:] == sent[-5:]
    await ready_count(bus, topo.dispatch_queue(0), 20)
    consumer = Recorder()
    sub = await bus.subscribe(topo.dispatch_queue(0), consumer, prefetch=50)
    await eventually(lambda: len(consumer) == 20, what="the originals")
    assert consumer.bodies() == sent
    await sub.close()
    await tap.close()


async def test_tap_close_stops_copies(bus: Bus) -> None:
    topo = bus.topology
    rec = Recorder()
    tap = await bus.tap(topo.tap_bindings(), rec, max_length=5)
    await bus.publish(topo.events_exchange, "0", b"before")
    await eventually(lambda: len(rec) == 1, what="a copy")
    await tap.close()
    await bus.publish(topo.events_exchange, "0", b"after")
    await ready_count(bus, topo.dispatch_queue(0), 2)
    assert rec.bodies() == [b"before"]


async def test_dead_exchange_fans_out_to_dead_queue_and_get(bus: Bus) -> None:
    topo = bus.topology
    assert await bus.get(topo.dead_queue) is None
    await bus.publish(topo.dead_exchange, "any-key", b"d1", headers={"x-reason": "boom"}, message_id="d-1")
    await bus.publish(topo.dead_exchange, "", b"d2", message_id="d-2")
    await ready_count(bus, topo.dead_queue, 2)

    got = await bus.get(topo.dead_queue)
    assert got is not None
    assert (got.body, got.message_id, got.redeliveries) == (b"d1", "d-1", 0)
    # RabbitMQ adds x-delivery-count: 0 to a basic.get from a quorum queue; the twin adds nothing.
    assert {k: v for k, v in got.headers.items() if k != "x-delivery-count"} == {"x-reason": "boom"}
    assert got.exchange == topo.dead_exchange
    await got.ack()

    second = await bus.get(topo.dead_queue)
    assert second is not None
    assert second.body == b"d2"
    await second.requeue()
    again = await bus.get(topo.dead_queue)
    assert again is not None
    assert again.body == b"d2"
    assert again.redeliveries >= 1
    await again.ack()
    assert await bus.get(topo.dead_queue) is None
    await ready_count(bus, topo.dead_queue, 0)


async def test_get_on_a_single_active_consumer_queue_is_refused(
    bus: Bus, kind: str, request: pytest.FixtureRequest
) -> None:
    """RabbitMQ refuses basic.get on quorum queues with single-active-consumer (RESOURCE_LOCKED)."""
    await bus.publish(bus.topology.events_exchange, "0", b"{}")
    await ready_count(bus, bus.topology.dispatch_queue(0), 1)
    with pytest.raises(PublishError):
        await bus.get(bus.topology.dispatch_queue(0))


async def test_a_failed_get_does_not_break_publishing(bus: Bus, kind: str, request: pytest.FixtureRequest) -> None:
    with contextlib.suppress(Exception):
        await bus.get(bus.topology.dispatch_queue(0))
    assert await bus.ping() is True
    await bus.publish(bus.topology.events_exchange, "0", b"{}", message_id="right-after")


# -- queue_info and lifecycle -----------------------------------------------------------------------------


async def test_queue_info_reports_messages_and_consumers(bus: Bus) -> None:
    queue = bus.topology.dispatch_queue(3)
    assert await bus.queue_info(queue) == QueueInfo(queue, 0, 0)
    await publish_many(bus, "3", 3)
    await ready_count(bus, queue, 3)
    assert await bus.queue_info(queue) == QueueInfo(queue, 3, 0)

    rec = Recorder()
    sub = await bus.subscribe(queue, rec, prefetch=10)
    await eventually(lambda: len(rec) == 3, what="3 deliveries")

    async def info() -> QueueInfo:
        return await bus.queue_info(queue)

    await eventually(info, until=lambda i: i == QueueInfo(queue, 0, 1), what="an empty queue with one consumer")
    await sub.close()
    await eventually(info, until=lambda i: i.consumers == 0, what="no consumers")


async def test_queue_info_counts_every_consumer_of_a_shared_queue(bus: Bus) -> None:
    queue = bus.topology.dead_queue

    async def info() -> QueueInfo:
        return await bus.queue_info(queue)

    subs = [await bus.subscribe(queue, Recorder(), prefetch=1) for _ in range(2)]
    await eventually(info, until=lambda i: i.consumers == 2, what="two consumers")
    for sub in subs:
        await sub.close()
    await eventually(info, until=lambda i: i.consumers == 0, what="no consumers")


async def test_queue_info_counts_only_the_active_consumer_of_a_single_active_queue(
    bus: Bus, kind: str, request: pytest.FixtureRequest
) -> None:
    queue = bus.topology.dispatch_queue(1)
    first = await bus.subscribe(queue, Recorder(), prefetch=1)
    second = await bus.subscribe(queue, Recorder(), prefetch=1)
    assert (await bus.queue_info(queue)).consumers == 1
    await first.close()
    await second.close()


async def test_start_again_keeps_queued_messages(bus: Bus) -> None:
    await bus.publish(bus.topology.events_exchange, "0", b"kept")
    await bus.start()
    assert await bus.ping()
    await ready_count(bus, bus.topology.dispatch_queue(0), 1)


async def test_start_again_does_not_duplicate_routing(bus: Bus) -> None:
    await bus.start()
    await bus.publish(bus.topology.events_exchange, "0", b"once")
    await bus.publish(bus.topology.dead_exchange, "", b"once")
    await ready_count(bus, bus.topology.dispatch_queue(0), 1)
    await ready_count(bus, bus.topology.dead_queue, 1)


async def test_ping_and_publish_after_close(bus: Bus) -> None:
    assert await bus.ping() is True
    await bus.close()
    assert await bus.ping() is False
    with pytest.raises(PublishError):
        await bus.publish(bus.topology.events_exchange, "0", b"{}", message_id="late")


# -- real RabbitMQ only -----------------------------------------------------------------------------------


async def test_start_against_closed_port_fails_fast(namespace: str) -> None:
    bus = AmqpBus("amqp://guest:guest@127.0.0.1:1/", Topology(namespace, 4), connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(Exception) as info:  # noqa: PT011 - any connection error, but not a hang
        await asyncio.wait_for(bus.start(), 10)
    assert not isinstance(info.value, TimeoutError)
    assert time.monotonic() - started < 5
    assert await bus.ping() is False
    with pytest.raises(PublishError):
        await bus.publish(f"{namespace}.events", "0", b"{}")


@pytest.mark.integration
async def test_start_twice_then_close_leaves_no_connection_open(services: tuple[str, str, str]) -> None:
    amqp_url, _, ns = services
    bus = AmqpBus(amqp_url, Topology(ns, 4))
    await bus.start()
    first = bus._conn
    assert first is not None
    try:
        await bus.start()
        await bus.close()
        assert first.is_closed
    finally:
        await first.close()
