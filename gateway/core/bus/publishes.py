"""Confirmed publishes of one event-loop iteration leave in one socket write per connection.

aiormq's ``basic_publish`` takes the channel lock, builds three pamqp frame objects, marshals them
through ``io.BytesIO``, puts one item per message on the connection's write queue (so one ``send()``
each) and waits for the socket to drain, all before it waits for the broker's confirm. At a few
thousand webhooks a second that was the biggest single cost of ``gateway serve`` (docs/benchmarks.md,
issue 17).

:class:`PublishBatcher` does the same protocol work without the per-message machinery: it takes the
channel's next delivery tag and registers the confirmation future where aiormq's reader resolves it
(``channel.confirmations``, ``message_id_delivery_tag``: acks, nacks, returns of mandatory messages
and a channel close are handled by aiormq exactly as for its own publishes), packs the method and body
frames with ``struct`` and the content header with pamqp, and at the next loop iteration puts one
blob per connection on aiormq's write queue. Frames leave in delivery-tag order per channel, which is
the order in which the broker numbers its confirms.

A channel must be published on only through one batcher (``AmqpBus`` publishes only through its
own): a ``basic_publish`` on the same channel between a publish and its flush would take a tag out of
wire order.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any
from uuid import uuid4

from pamqp.commands import Basic
from pamqp.frame import marshal
from pamqp.header import ContentHeader

try:  # aiormq internals this module writes through (tested against aiormq 7.2, pinned in pyproject.toml)
    from aiormq.abc import ChannelFrame
    from aiormq.exceptions import ChannelInvalidStateError
except ImportError:  # pragma: no cover
    ChannelFrame = None  # type: ignore[assignment,misc]
    ChannelInvalidStateError = RuntimeError  # type: ignore[assignment,misc]

#: frame type 1 (method), channel, payload size; class 60 (basic), method 40 (publish), reserved short 0.
_METHOD_HEAD = struct.Struct(">BHIHHH")
#: frame type 3 (body), channel, payload size.
_BODY_HEAD = struct.Struct(">BHI")
_FRAME_END = b"\xce"
#: aiormq's frame overhead (``Channel.CONTENT_FRAME_SIZE``): header 7 + frame end 1.
_CONTENT_FRAME_SIZE = 8


def _shortstr(value: str) -> bytes:
    data = value.encode()
    if len(data) > 255:
        raise ValueError(f"AMQP short string over 255 bytes: {value[:40]!r}...")
    return bytes((len(data),)) + data


def publish_frames(
    channel_number: int,
    exchange: str,
    routing_key: str,
    body: bytes,
    properties: Basic.Properties,
    *,
    mandatory: bool,
    frame_max: int,
) -> bytes:
    """``basic.publish`` + content header + body frames, as aiormq/pamqp would put them on the wire."""
    args = _shortstr(exchange) + _shortstr(routing_key) + (b"\x01" if mandatory else b"\x00")
    method = _METHOD_HEAD.pack(1, channel_number, 6 + len(args), 60, 40, 0) + args + _FRAME_END
    header = marshal(ContentHeader(0, len(body), properties), channel_number)
    if not body:
        return method + header
    size = frame_max - _CONTENT_FRAME_SIZE
    if len(body) < size:
        return b"".join((method, header, _BODY_HEAD.pack(3, channel_number, len(body)), body, _FRAME_END))
    parts = [method, header]
    for start in range(0, len(body), size):
        chunk = body[start : start + size]
        parts += (_BODY_HEAD.pack(3, channel_number, len(chunk)), chunk, _FRAME_END)
    return b"".join(parts)


class PublishBatcher:
    def __init__(self) -> None:
        # connection -> (channel, frames, confirmation) queued this iteration, in delivery-tag order per channel
        self._pending: dict[Any, list[tuple[Any, bytes, asyncio.Future[Any]]]] = {}
        # connection -> frames waiting for room on its write queue (kept in order behind each other)
        self._backlog: dict[Any, list[Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def publish(
        self,
        channel: Any,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Basic.Properties,
        *,
        mandatory: bool = True,
    ) -> asyncio.Future[Any]:
        """Queue a confirmed publish on ``channel`` (an aiormq channel with publisher confirms).

        The future gets what aiormq gives its own publishes: the ``Basic.Ack`` frame, or an exception
        (``DeliveryError`` on a nack, ``PublishError`` on a return with ``on_return_raises``, the
        channel's close reason). The caller owns the timeout; :meth:`forget` after it is settled.
        """
        if channel.is_closed:
            raise ChannelInvalidStateError(f"{channel!r} is closed")
        if not properties.message_id:  # aiormq finds a returned message by its id
            properties.message_id = uuid4().hex
        connection = channel.connection
        frames = publish_frames(
            channel.number,
            exchange,
            routing_key,
            body,
            properties,
            mandatory=mandatory,
            frame_max=connection.connection_tune.frame_max,
        )
        channel.delivery_tag += 1
        tag = channel.delivery_tag
        confirmation: asyncio.Future[Any] = channel.create_future()
        channel.confirmations[tag] = confirmation
        channel.message_id_delivery_tag[properties.message_id] = tag
        pending = self._pending
        if not pending:
            asyncio.get_running_loop().call_soon(self.flush)
        queued = pending.get(connection)
        if queued is None:
            pending[connection] = [(channel, frames, confirmation)]
        else:
            queued.append((channel, frames, confirmation))
        return confirmation

    @staticmethod
    def forget(channel: Any, message_id: str | None) -> None:
        """Drop the message-id -> tag entry aiormq keeps to match returns (it only removes its own)."""
        if message_id:
            channel.message_id_delivery_tag.pop(message_id, None)

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for connection, entries in pending.items():
            parts = []
            for channel, frames, confirmation in entries:
                if channel.is_closed:  # nothing was written: the publish fails (aiormq rejected it already)
                    if not confirmation.done():
                        confirmation.set_exception(ChannelInvalidStateError(f"{channel!r} closed"))
                    continue
                parts.append(frames)
            if not parts:
                continue
            frame = ChannelFrame(payload=b"".join(parts), should_close=False)
            backlog = self._backlog.get(connection)
            if backlog is not None:  # behind frames still waiting for room: keep the order
                backlog.append(frame)
                continue
            queue: asyncio.Queue[Any] = connection.write_queue
            try:
                queue.put_nowait(frame)
            except asyncio.QueueFull:  # aiormq's writer is behind: wait for room like its own frames do
                self._backlog[connection] = [frame]
                task = asyncio.get_running_loop().create_task(self._drain(connection, queue))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _drain(self, connection: Any, queue: asyncio.Queue[Any]) -> None:
        backlog = self._backlog[connection]
        try:
            while backlog:
                await queue.put(backlog[0])
                backlog.pop(0)
        finally:
            del self._backlog[connection]
