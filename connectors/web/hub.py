"""Per serve process: the listeners of each web conversation, woken by the ``{ns}.web`` fanout exchange.

One exclusive, auto-deleted, length-capped queue per process (the same kind ``gateway tail`` uses) is
bound to the fanout; a hint names a conversation key, and only that conversation's open SSE or WebSocket
connections wake up and re-read its transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import structlog

from gateway.core.bus.base import Bus, Delivery, Subscription

log = structlog.get_logger(__name__)
QUEUE_CAP = 10_000


class WebHub:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._listeners: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._subscription: Subscription | None = None
        self._starting = asyncio.Lock()

    @property
    def connections(self) -> int:
        return sum(len(v) for v in self._listeners.values())

    async def ensure_started(self) -> None:
        """Bind this process's queue to the fanout (on first use: the broker may connect late)."""
        async with self._starting:
            if self._subscription is None:
                bindings = [(self._bus.topology.web_exchange, "")]
                self._subscription = await self._bus.tap(bindings, self._on_hint, max_length=QUEUE_CAP)

    async def _on_hint(self, delivery: Delivery) -> None:
        try:
            note = json.loads(delivery.body)
            key = note["key"]
        except (ValueError, KeyError, TypeError):
            log.warning("web_hint_unreadable")
            return
        for queue in tuple(self._listeners.get(key, ())):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(note)

    @contextlib.contextmanager
    def listen(self, key: str) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=256)
        self._listeners[key].add(queue)
        try:
            yield queue
        finally:
            self._listeners[key].discard(queue)
            if not self._listeners[key]:
                del self._listeners[key]

    async def close(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.close()
            self._subscription = None
