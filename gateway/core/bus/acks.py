"""Acks of one event-loop iteration leave in one socket write.

aiormq writes every frame on its own: an ack is a coroutine, a marshalled frame, a trip through the
connection's write queue (ten deep, so acks can wait behind each other) and one ``send()`` per ack.
At a few thousand turns a second those writes were the consumer's biggest single cost, and the
consumer's CPU per delivery is what bounds its throughput (docs/benchmarks.md, session 4).

:class:`AckBatcher` collects the acks given during one iteration and, at the next, puts one frame
blob per connection on aiormq's write queue, so they are written once and stay in order with every
other frame of the connection. An ack is a fixed 21-byte frame (AMQP 0-9-1 ``basic.ack``, no
``multiple``), encoded here with ``struct``.

Nothing is lost by the delay: an ack that never reaches the broker (the process dies, the channel
closes first) leaves the message unacked, and the broker delivers it again; the done marker written
before the ack keeps the turn from running twice.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Coroutine
from typing import Any

import structlog

try:  # aiormq internals this module writes through (tested against aiormq 7.2, pinned in pyproject.toml)
    from aiormq.abc import ChannelFrame
except ImportError:  # pragma: no cover - another aiormq: acks go through its public basic_ack instead
    ChannelFrame = None  # type: ignore[assignment,misc]

log = structlog.get_logger(__name__)

#: frame type 1 (method), channel, payload size 13, class 60 (basic), method 80 (ack), delivery tag,
#: flags (multiple = 0), frame end 0xCE.
_ACK = struct.Struct(">BHIHHQBB")


def ack_frame(channel_number: int, delivery_tag: int) -> bytes:
    return _ACK.pack(1, channel_number, 13, 60, 80, delivery_tag, 0, 0xCE)


class AckBatcher:
    def __init__(self) -> None:
        self._pending: list[tuple[Any, int]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def ack(self, channel: Any, delivery_tag: int) -> None:
        """Queue an ack of ``delivery_tag`` on ``channel`` (an aiormq channel) for the next iteration."""
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append((channel, delivery_tag))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        blobs: dict[Any, list[bytes]] = {}
        dropped = 0
        for channel, tag in pending:
            if channel.is_closed:  # the broker has put the message back and will deliver it again
                dropped += 1
                continue
            if ChannelFrame is None or not hasattr(channel.connection, "write_queue"):
                self._spawn(channel.basic_ack(tag))  # the public API: one frame each, still in order
                continue
            blobs.setdefault(channel.connection, []).append(ack_frame(channel.number, tag))
        if dropped:
            log.warning("settle_failed", how="ack", acks=dropped, hint="channel closed; the broker will redeliver")
        for connection, frames in blobs.items():
            frame = ChannelFrame(payload=b"".join(frames), should_close=False)
            queue: asyncio.Queue[ChannelFrame] = connection.write_queue
            try:
                queue.put_nowait(frame)
            except asyncio.QueueFull:  # aiormq's writer is behind: wait for room like its own frames do
                self._spawn(queue.put(frame))

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
