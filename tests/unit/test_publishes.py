"""Batched publishes: frames byte for byte what aiormq + pamqp write, in tag order, one blob per connection."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiormq.abc import ChannelFrame
from aiormq.exceptions import ChannelInvalidStateError
from pamqp import commands, frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from gateway.core.bus.publishes import PublishBatcher, publish_frames

FRAME_MAX = 131072


def pamqp_frames(channel: int, exchange: str, key: str, body: bytes, props: commands.Basic.Properties) -> bytes:
    """What aiormq's ``basic_publish`` marshals (method, header, body split at frame_max - 8)."""
    size = FRAME_MAX - 8
    out = frame.marshal(commands.Basic.Publish(exchange=exchange, routing_key=key, mandatory=True), channel)
    out += frame.marshal(ContentHeader(0, len(body), props), channel)
    for start in range(0, len(body), size):
        out += frame.marshal(ContentBody(body[start : start + size]), channel)
    return out


def props(message_id: str = "m1") -> commands.Basic.Properties:
    return commands.Basic.Properties(
        content_type="application/json",
        delivery_mode=2,
        headers={"platform": "slack", "kind": "message", "conversation_key": "slack:T:C:1.2", "busy": "queue"},
        message_id=message_id,
        priority=0,
    )


@pytest.mark.parametrize("size", [0, 1, 1500, FRAME_MAX - 9, FRAME_MAX - 8, 3 * FRAME_MAX + 5])
def test_publish_frames_match_pamqp(size: int) -> None:
    body = bytes(i % 251 for i in range(size))
    ours = publish_frames(7, "gw.events", "12", body, props(), mandatory=True, frame_max=FRAME_MAX)
    assert ours == pamqp_frames(7, "gw.events", "12", body, props())


@dataclass(eq=False)
class FakeTune:
    frame_max: int = FRAME_MAX


@dataclass(eq=False)
class FakeConnection:
    write_queue: asyncio.Queue[ChannelFrame] = field(default_factory=lambda: asyncio.Queue(maxsize=2))
    connection_tune: FakeTune = field(default_factory=FakeTune)


@dataclass(eq=False)
class FakeChannel:
    """The attributes of an aiormq channel the batcher uses."""

    connection: FakeConnection
    number: int
    is_closed: bool = False
    delivery_tag: int = 0
    confirmations: dict[int, Any] = field(default_factory=dict)
    message_id_delivery_tag: dict[str, int] = field(default_factory=dict)

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()


async def test_publishes_of_one_iteration_leave_as_one_frame_per_connection_in_tag_order() -> None:
    a, b = FakeConnection(), FakeConnection()
    ch1, ch2, ch3 = FakeChannel(a, 1), FakeChannel(a, 2), FakeChannel(b, 1)
    batcher = PublishBatcher()
    sent = [(ch1, b"one", "m1"), (ch3, b"two", "m2"), (ch2, b"three", "m3"), (ch1, b"four", "m4")]
    futures = [batcher.publish(ch, "x", "0", body, props(mid)) for ch, body, mid in sent]
    assert a.write_queue.empty()  # nothing written before the next iteration
    assert [ch1.delivery_tag, ch2.delivery_tag, ch3.delivery_tag] == [2, 1, 1]
    assert ch1.confirmations == {1: futures[0], 2: futures[3]}
    assert ch1.message_id_delivery_tag == {"m1": 1, "m4": 2}
    await asyncio.sleep(0)
    assert a.write_queue.qsize() == 1
    assert b.write_queue.qsize() == 1
    on_a = [(ch, body, mid) for ch, body, mid in sent if ch.connection is a]
    expected_a = b"".join(pamqp_frames(ch.number, "x", "0", body, props(mid)) for ch, body, mid in on_a)
    assert a.write_queue.get_nowait().payload == expected_a
    assert b.write_queue.get_nowait().payload == pamqp_frames(1, "x", "0", b"two", props("m2"))
    batcher.forget(ch1, "m1")
    assert ch1.message_id_delivery_tag == {"m4": 2}


async def test_a_message_without_id_gets_one_so_a_return_can_find_it() -> None:
    ch = FakeChannel(FakeConnection(), 1)
    p = props("")
    PublishBatcher().publish(ch, "x", "0", b"b", p)
    assert p.message_id
    assert ch.message_id_delivery_tag == {p.message_id: 1}


async def test_a_publish_on_a_channel_closed_before_the_flush_fails_and_writes_nothing() -> None:
    conn = FakeConnection()
    ch = FakeChannel(conn, 1)
    batcher = PublishBatcher()
    fut = batcher.publish(ch, "x", "0", b"b", props())
    ch.is_closed = True
    await asyncio.sleep(0)
    assert conn.write_queue.empty()
    with pytest.raises(ChannelInvalidStateError):
        await fut
    with pytest.raises(ChannelInvalidStateError):
        batcher.publish(ch, "x", "0", b"b", props())


async def test_a_full_write_queue_keeps_later_batches_behind_in_order() -> None:
    conn = FakeConnection()  # room for two frames
    ch = FakeChannel(conn, 1)
    batcher = PublishBatcher()
    for n in range(5):  # five iterations, one publish each
        batcher.publish(ch, "x", "0", b"%d" % n, props(f"m{n}"))
        await asyncio.sleep(0)
    got: list[ChannelFrame] = []
    while len(got) < 5:
        got.append(await asyncio.wait_for(conn.write_queue.get(), 1))
    assert [f.payload for f in got] == [pamqp_frames(1, "x", "0", b"%d" % n, props(f"m{n}")) for n in range(5)]
