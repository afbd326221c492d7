"""What only the in-process bus does; the shared behaviour is in tests/integration/test_bus_contract.py."""

from __future__ import annotations

import contextvars

import pytest

from gateway.core.bus.base import Delivery
from gateway.core.bus.memory import MemoryBus, _Consumer, _Msg, _Queue
from gateway.core.bus.topology import Topology
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(10)


def msg(seq: int) -> _Msg:
    return _Msg(seq, f"{seq}".encode(), {}, "x", "k", None)


def test_length_capped_queue_drops_its_oldest() -> None:
    q = _Queue("tap.0", single_active=False, max_length=5)
    for i in range(20):
        q.put(msg(i))  # no consumer: they pile up
    assert [m.seq for m in q.ready] == [15, 16, 17, 18, 19]


async def test_tap_attached_late_gets_only_the_newest_kept() -> None:
    """A tap whose queue filled up before anyone consumed it delivers the newest ``max_length``."""
    q = _Queue("tap.0", single_active=False, max_length=5)
    for i in range(20):
        q.put(msg(i))
    got: list[int] = []

    async def handler(d: Delivery) -> None:
        got.append(int(d.body))

    q.consumers.append(_Consumer(q, handler, prefetch=5, auto_ack=True))
    q.pump()
    await eventually(lambda: len(got) == 5, timeout=5, what="5 deliveries")
    assert got == [15, 16, 17, 18, 19]


async def test_live_tap_copies_everything() -> None:
    bus = MemoryBus(Topology("t", 2))
    await bus.start()
    got: list[bytes] = []

    async def handler(d: Delivery) -> None:
        got.append(d.body)

    await bus.tap(bus.topology.tap_bindings(), handler, max_length=5)
    for i in range(20):
        await bus.publish(bus.topology.events_exchange, "0", str(i).encode())
    await eventually(lambda: len(got) == 20, timeout=5, what="20 copies")
    assert got == [str(i).encode() for i in range(20)]


async def test_deliveries_do_not_inherit_the_publishers_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")
    bus = MemoryBus(Topology("t", 2))
    await bus.start()
    seen: list[str] = []

    async def handler(d: Delivery) -> None:
        seen.append(var.get())
        await d.ack()

    await bus.subscribe(bus.topology.dispatch_queue(0), handler, prefetch=1)
    var.set("request-42")
    await bus.publish(bus.topology.events_exchange, "0", b"{}")
    await eventually(lambda: len(seen) == 1, timeout=5, what="a delivery")
    assert seen == ["none"]


async def test_settling_twice_is_a_no_op() -> None:
    bus = MemoryBus(Topology("t", 2))
    await bus.start()
    got: list[Delivery] = []

    async def handler(d: Delivery) -> None:
        got.append(d)

    await bus.subscribe(bus.topology.dispatch_queue(1), handler, prefetch=5)
    await bus.publish(bus.topology.events_exchange, "1", b"a")
    await eventually(lambda: len(got) == 1, timeout=5, what="a delivery")
    await got[0].ack()
    await got[0].requeue()  # already settled: must not come back
    assert got[0].settled
    assert (await bus.queue_info(bus.topology.dispatch_queue(1))).messages == 0
    assert len(got) == 1


async def test_non_single_active_queue_round_robins() -> None:
    bus = MemoryBus(Topology("t", 2))
    await bus.start()
    a: list[bytes] = []
    b: list[bytes] = []

    async def to_a(d: Delivery) -> None:
        a.append(d.body)
        await d.ack()

    async def to_b(d: Delivery) -> None:
        b.append(d.body)
        await d.ack()

    await bus.subscribe(bus.topology.dead_queue, to_a, prefetch=10)
    await bus.subscribe(bus.topology.dead_queue, to_b, prefetch=10)
    for i in range(4):
        await bus.publish(bus.topology.dead_exchange, "", str(i).encode())
    await eventually(lambda: len(a) + len(b) == 4, timeout=5, what="4 deliveries")
    assert len(a) == len(b) == 2


async def test_close_then_start_keeps_queued_messages() -> None:
    bus = MemoryBus(Topology("t", 2))
    await bus.start()
    await bus.publish(bus.topology.events_exchange, "0", b"kept")
    await bus.close()
    await bus.start()
    assert await bus.ping()
    got = await bus.get(bus.topology.dead_queue)
    assert got is None
    info = await bus.queue_info(bus.topology.dispatch_queue(0))
    assert info.messages == 1
