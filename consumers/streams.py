"""Stream snapshots on the outbound side: the state in the store, the platform brought up to date, paced.

One state per stream (``stream:{id}``, connectors/streaming.py), read before each snapshot and written after
each platform call, so whoever handles the next snapshot (this process, or the one that took the partition
over after a crash) continues the same platform messages. A platform whose sender cannot stream shows only the
final text, as an ordinary reply. Snapshots that a later one of the same stream makes stale are dropped
before they cost a call (:func:`superseded`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.outbound import PlatformSender
from connectors.streaming import StreamState
from consumers.ratelimit import RateLimiter
from gateway.core.bus.base import Delivery
from gateway.core.events import OutboundMessage
from gateway.core.store.base import Store

STATE_TTL = 7 * 24 * 3600.0


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

    async def pace(self) -> None:
        await self._limiter.wait(self._message)

    async def save(self) -> None:
        await self._store.put(self._key, self._state.to_json(), STATE_TTL)


class Streams:
    def __init__(self, store: Store, limiter: RateLimiter) -> None:
        self._store = store
        self._limiter = limiter

    async def push(self, platform: PlatformSender, message: OutboundMessage) -> dict[str, Any]:
        """Bring the platform up to ``message`` (a snapshot); what the platform answered worth keeping."""
        streamer = getattr(platform, "stream", None)
        if streamer is None:  # no streaming here: the final text as one reply, nothing before it
            if not message.final:
                return {"skipped": f"{platform.platform} does not stream"}
            await self._limiter.wait(message)
            return await platform.send(message.model_copy(update={"action": "reply"}))
        key = stream_key(message.id)
        state = StreamState.from_json(await self._store.get(key))
        if state.done:
            return {"already": True}
        io = _IO(self._store, key, state, self._limiter, message)
        await streamer(message, state, io)
        state.done = message.final
        await io.save()
        return {"mode": state.mode, "parts": [p.ref for p in state.parts]}
