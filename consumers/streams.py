"""Stream snapshots on the outbound side: the state in the store, the platform brought up to date, paced.

One state per stream (``stream:{id}``, connectors/streaming.py), read before each snapshot and written after
each platform call, so whoever handles the next snapshot (this process, or the one that took the partition
over after a crash) continues the same platform messages. A platform whose sender cannot stream shows only the
final text, as an ordinary reply.

Pacing comes before choosing what to show: a snapshot first waits for its destination's rate limit, then shows
the newest snapshot of its stream that has arrived meanwhile (each carries all the text so far), and the ones
it overtook are dropped when their turn comes (:meth:`Streams.stale`, :func:`superseded`). So a model faster
than the platform's limit costs one call per token of the bucket, and the final text is never held up behind
stale updates.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from connectors.outbound import PlatformSender
from connectors.streaming import StreamState
from consumers.ratelimit import RateLimiter
from gateway.core.bus.base import Delivery
from gateway.core.events import OutboundMessage
from gateway.core.store.base import Store

STATE_TTL = 7 * 24 * 3600.0
#: Snapshots tracked for coalescing at most (forgetting them only costs calls, never correctness).
MAX_TRACKED = 50_000


def stream_key(message_id: str) -> str:
    return f"stream:{message_id}"


def superseded(deliveries: Sequence[Delivery]) -> set[int]:
    """Positions of the non-final snapshots that a later snapshot of the same stream in ``deliveries``
    replaces (each carries all the text so far, so only the last one needs to be shown)."""
    last: dict[str, int] = {}
    for i, d in enumerate(deliveries):
        m = d.prepared
        if isinstance(m, OutboundMessage) and m.action == "stream":
            last[m.id] = i
    out = set()
    for i, d in enumerate(deliveries):
        m = d.prepared
        if isinstance(m, OutboundMessage) and m.action == "stream" and not m.final and last[m.id] != i:
            out.add(i)
    return out


class _IO:
    def __init__(self, store: Store, key: str, state: StreamState, limiter: RateLimiter, message: OutboundMessage):
        self._store = store
        self._key = key
        self._state = state
        self._limiter = limiter
        self._message = message
        self._paid = True  # the first call's wait was taken before the snapshot was chosen

    async def pace(self) -> None:
        if self._paid:
            self._paid = False
            return
        await self._limiter.wait(self._message)

    async def save(self) -> None:
        await self._store.put(self._key, self._state.to_json(), STATE_TTL)


class Streams:
    def __init__(self, store: Store, limiter: RateLimiter) -> None:
        self._store = store
        self._limiter = limiter
        self._arrivals = itertools.count(1)
        #: Arrival number of each snapshot not yet handled (by object: a snapshot is one delivery's message).
        self._order: dict[int, int] = {}
        #: Per stream: the newest snapshot that arrived, and the arrival number of the newest one shown.
        self._latest: dict[str, tuple[int, OutboundMessage]] = {}
        self._shown: dict[str, int] = {}

    def arrived(self, message: OutboundMessage) -> None:
        """Called as a delivery arrives, in queue order."""
        if message.action != "stream":
            return
        if len(self._order) > MAX_TRACKED:  # partitions moved away with snapshots unhandled: start over
            self._order.clear()
            self._latest.clear()
            self._shown.clear()
        n = next(self._arrivals)
        self._order[id(message)] = n
        self._latest[message.id] = (n, message)

    def stale(self, message: OutboundMessage) -> bool:
        """A snapshot that a newer one of its stream, already shown, overtook (the final never is)."""
        n = self._order.get(id(message))
        if message.final or n is None or self._shown.get(message.id, 0) < n:
            return False
        del self._order[id(message)]
        return True

    async def push(self, platform: PlatformSender, message: OutboundMessage) -> dict[str, Any]:
        """Bring the platform up to ``message`` (a snapshot), or a newer one of its stream; what the platform
        answered worth keeping."""
        n = self._order.pop(id(message), 0)
        streamer = getattr(platform, "stream", None)
        if streamer is None:  # no streaming here: the final text as one reply, nothing before it
            if not message.final:
                return {"skipped": f"{platform.platform} does not stream"}
            self._forget(message.id)
            await self._limiter.wait(message)
            return await platform.send(message.model_copy(update={"action": "reply"}))
        await self._limiter.wait(message)
        newest, latest = self._latest.get(message.id, (0, message))
        show = latest if newest > n else message
        self._shown[message.id] = max(n, newest)
        key = stream_key(message.id)
        state = StreamState.from_json(await self._store.get(key))
        if state.done:
            self._forget(message.id, final=message.final)
            return {"already": True}
        io = _IO(self._store, key, state, self._limiter, show)
        await streamer(show, state, io)
        state.done = show.final
        if state.done:  # what it showed is no longer needed, only that it is done and where: keep the key small
            for part in state.parts:
                part.text = ""
        await io.save()
        self._forget(message.id, final=message.final)
        return {"mode": state.mode, "parts": [p.ref for p in state.parts]}

    def _forget(self, stream_id: str, *, final: bool = True) -> None:
        if final:
            self._latest.pop(stream_id, None)
            self._shown.pop(stream_id, None)
