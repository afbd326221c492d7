"""The batched ack frame is byte for byte what pamqp would write, and a batch goes out as one frame."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from aiormq.abc import ChannelFrame
from pamqp import commands, frame

from gateway.core.bus.acks import AckBatcher, ack_frame


@pytest.mark.parametrize(("channel", "tag"), [(1, 1), (3, 5), (65535, 2**63 - 1)])
def test_ack_frame_matches_pamqp(channel: int, tag: int) -> None:
    assert ack_frame(channel, tag) == frame.marshal(commands.Basic.Ack(delivery_tag=tag), channel)


@dataclass(eq=False)
class FakeConnection:
    write_queue: asyncio.Queue[ChannelFrame] = field(default_factory=lambda: asyncio.Queue(maxsize=10))


@dataclass(eq=False)
class FakeChannel:
    connection: FakeConnection
    number: int
    is_closed: bool = False


async def test_acks_of_one_iteration_leave_as_one_frame_per_connection_in_order() -> None:
    a, b = FakeConnection(), FakeConnection()
    ch1, ch2, ch3 = FakeChannel(a, 1), FakeChannel(a, 2), FakeChannel(b, 1)
    batcher = AckBatcher()
    for ch, tag in [(ch1, 7), (ch3, 1), (ch2, 3), (ch1, 8)]:
        batcher.ack(ch, tag)
    assert a.write_queue.empty()  # nothing written before the next iteration
    await asyncio.sleep(0)
    assert a.write_queue.qsize() == 1
    assert b.write_queue.qsize() == 1
    assert a.write_queue.get_nowait().payload == ack_frame(1, 7) + ack_frame(2, 3) + ack_frame(1, 8)
    assert b.write_queue.get_nowait().payload == ack_frame(1, 1)


async def test_acks_on_a_closed_channel_are_dropped_and_the_rest_sent() -> None:
    conn = FakeConnection()
    live, dead = FakeChannel(conn, 1), FakeChannel(conn, 2, is_closed=True)
    batcher = AckBatcher()
    batcher.ack(dead, 1)
    batcher.ack(live, 2)
    batcher.flush()
    assert conn.write_queue.get_nowait().payload == ack_frame(1, 2)
    batcher.flush()  # nothing pending: nothing written
    assert conn.write_queue.empty()


async def test_a_full_write_queue_delays_the_acks_without_losing_them() -> None:
    conn = FakeConnection()
    for _ in range(10):
        conn.write_queue.put_nowait(ChannelFrame(payload=b"x", should_close=False))
    batcher = AckBatcher()
    batcher.ack(FakeChannel(conn, 1), 4)
    batcher.flush()
    assert conn.write_queue.qsize() == 10
    payloads = []
    for _ in range(11):
        payloads.append((await asyncio.wait_for(conn.write_queue.get(), 5)).payload)
    assert payloads[-1] == ack_frame(1, 4)


async def test_without_aiormqs_write_queue_acks_go_through_the_public_basic_ack() -> None:
    acked: list[int] = []

    class PublicOnly:  # an aiormq whose connection no longer has the internals the batcher writes through
        connection = object()
        number = 1
        is_closed = False

        async def basic_ack(self, tag: int) -> None:
            acked.append(tag)

    batcher = AckBatcher()
    for tag in (4, 5, 6):
        batcher.ack(PublicOnly(), tag)
    await asyncio.sleep(0)  # the next iteration: the flush
    await asyncio.gather(*batcher._tasks)
    assert acked == [4, 5, 6]
