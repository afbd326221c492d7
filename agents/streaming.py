"""Replies that show as they are written: ``ctx.stream()``, for any framework.

    async with ctx.stream() as s:
        async for delta in my_framework.run(event.text):   # any source of text deltas
            await s.write(delta)
    # leaving the block finishes the reply (``await s.finish()`` does it by hand)

While the block runs, the text written so far goes out as *snapshots* (each carries all the text, not a delta):
the first one at once, then at most one every ``every`` seconds, never more than one publish in flight, so a
fast model costs a handful of publishes per answer. The sender turns them into the platform's own streaming
(Slack ``chat.startStream``/``appendStream``/``stopStream``, Telegram drafts) or into post-and-edit, paced by
the platform's rate limits (consumers/streams.py). ``write`` never waits for the network.

The last snapshot (``final``) joins the turn's other replies when the block ends: it is published and
confirmed before the turn is acknowledged, like any reply, so the answer is never lost. An exception inside the
block leaves the reply unfinished: the turn is retried with the same ids, and the retry continues the same
platform message. ``ctx.finish_streams()`` finishes every open stream with what it has (a turn cut short).

On a route that does not stream (``stream`` unset and no ``GATEWAY_STREAM``) the same code sends one ordinary
reply at the end: agents need not know how their route is configured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

import structlog

from gateway.core.events import OutboundMessage

log = structlog.get_logger(__name__)
#: Seconds between two snapshots of one stream (the first goes at once): far below what a user notices,
#: far above what would load the broker with a token per publish.
SNAPSHOT_EVERY = 0.25

Publish = Callable[[OutboundMessage], Awaitable[None]]


class StreamClosed(RuntimeError):
    """``write`` after ``finish``."""


class ReplyStream:
    """One streamed reply. Made by :meth:`agents.context.TurnContext.stream`."""

    def __init__(
        self,
        template: OutboundMessage,
        *,
        publish: Publish | None,
        on_finish: Callable[[OutboundMessage], None],
        every: float = SNAPSHOT_EVERY,
    ) -> None:
        """``template``: the message every snapshot copies (id, address); ``publish``: sends a snapshot now
        (None: the route does not stream); ``on_finish``: takes the final message into the turn's outbox."""
        self.id = template.id
        self._template = template
        self._publish = publish
        self._on_finish = on_finish
        self._every = every
        self._deltas: list[str] = []
        self._seq = 0
        self._shown = ""
        self._wake = asyncio.Event()
        self._closing = False
        self._pump: asyncio.Task[None] | None = None
        self.finished = False

    @property
    def text(self) -> str:
        """Everything written so far."""
        if len(self._deltas) > 1:
            self._deltas = ["".join(self._deltas)]
        return self._deltas[0] if self._deltas else ""

    @property
    def live(self) -> bool:
        """True when the route streams (snapshots go out while writing)."""
        return self._publish is not None

    async def write(self, delta: str) -> None:
        """Add ``delta`` to the reply; it shows on the platform shortly after."""
        if self.finished:
            raise StreamClosed(f"stream {self.id} is finished")
        if not delta:
            return
        self._deltas.append(delta)
        if self._publish is None:
            return
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    async def finish(self, text: str | None = None) -> str:
        """End the reply (``text`` replaces what was written); returns its message id. Idempotent."""
        if self.finished:
            return self.id
        if text is not None:
            self._deltas = [text]
        await self._stop_pump()
        self.finished = True
        final = self.text
        if not final.strip():
            if self._seq:  # snapshots showed text: keep it rather than leave a message half-open
                final = self._shown
            else:
                return self.id  # nothing was written: no message at all
        if self._publish is None:
            self._on_finish(self._template.model_copy(update={"action": "reply", "text": final}))
        else:
            self._on_finish(self._template.model_copy(update={"text": final, "seq": self._seq + 1, "final": True}))
        return self.id

    async def abandon(self) -> None:
        """Stop sending snapshots without finishing (the turn failed and will be retried)."""
        await self._stop_pump()

    async def _stop_pump(self) -> None:
        pump, self._pump = self._pump, None
        if pump is None:
            return
        self._closing = True
        self._wake.set()
        try:
            await pump
        except asyncio.CancelledError:
            if not pump.cancelled():
                raise

    async def _run(self) -> None:
        publish = self._publish
        assert publish is not None
        last = 0.0
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            pause = last + self._every - time.monotonic()
            if pause > 0:
                try:  # woken early only to close: the final carries the text
                    await asyncio.wait_for(self._closed(), pause)
                    return
                except TimeoutError:
                    pass
            text = self.text
            if not text.strip() or text == self._shown:
                continue
            self._seq += 1
            last = time.monotonic()
            try:
                await publish(self._template.model_copy(update={"text": text, "seq": self._seq}))
                self._shown = text
            except Exception as exc:  # a snapshot is a preview; the final is what must arrive
                log.info("stream_snapshot_not_sent", message_id=self.id, error=str(exc))

    async def _closed(self) -> None:
        while not self._closing:
            self._wake.clear()
            await self._wake.wait()

    async def __aenter__(self) -> ReplyStream:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if et is None:
            await self.finish()
        else:
            await self.abandon()
