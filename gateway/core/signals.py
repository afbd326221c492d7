"""Stop signals: "stop the turn running for this conversation", from ingress to every consumer at once.

A stop request (a route's stop word, Slack's ``agent_session_stopped``) is an event like any other: it is
published to its conversation's partition, so the consumer that owns the conversation receives it, in
order, and acks it. That copy can wait behind the partition's other deliveries (prefetch full, or the
partition being handed over while the turn drains), so ingress also publishes it here, on Redis pub/sub
channel ``{namespace}:signals:stop``; every consumer listens and the one running the conversation's turn
stops it (consumers/interrupts.py). Pub/sub is fire and forget: a consumer that was not listening misses
the signal and acts on the queued copy. Without Redis (``gateway dev`` on the twins) the signal goes to the
consumer of the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import redis.asyncio as aioredis
import structlog

from gateway.core.backoff import Backoff
from gateway.core.events import Event

log = structlog.get_logger(__name__)
#: Seconds ingress waits for Redis to take a signal; the queued copy of the event stops the turn anyway.
PUBLISH_TIMEOUT = 0.5


@dataclass(frozen=True, slots=True)
class StopSignal:
    #: The stop event's id: its queued copy carries the same, so one request stops one turn.
    id: str
    key: str
    received_at: datetime
    reason: str

    @classmethod
    def of(cls, event: Event) -> StopSignal:
        return cls(event.id, event.conversation_key, event.received_at, stop_reason(event))

    def to_json(self) -> str:
        return json.dumps(
            {"id": self.id, "key": self.key, "received_at": self.received_at.isoformat(), "reason": self.reason}
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> StopSignal:
        d = json.loads(raw)
        return cls(str(d["id"]), str(d["key"]), datetime.fromisoformat(d["received_at"]), str(d["reason"]))


def stop_reason(event: Event) -> str:
    """How the user asked to stop, for the history record."""
    inner = event.raw.get("event")
    return "stop button" if isinstance(inner, dict) and inner.get("type") == "agent_session_stopped" else "stop word"


OnStop = Callable[[StopSignal], object]


class Signals(Protocol):
    async def publish_stop(self, signal: StopSignal) -> None: ...

    async def listen(self, on_stop: OnStop, stop: asyncio.Event) -> None:
        """Call ``on_stop`` for every signal until ``stop`` is set (reconnecting meanwhile)."""
        ...

    async def close(self) -> None: ...


class MemorySignals:
    """The in-process twin: every listener of this process hears every signal."""

    def __init__(self) -> None:
        self._listeners: list[OnStop] = []

    async def publish_stop(self, signal: StopSignal) -> None:
        for listener in list(self._listeners):
            listener(signal)

    async def listen(self, on_stop: OnStop, stop: asyncio.Event) -> None:
        self._listeners.append(on_stop)
        try:
            await stop.wait()
        finally:
            self._listeners.remove(on_stop)

    async def close(self) -> None:
        self._listeners.clear()


class RedisSignals:
    def __init__(self, url: str, namespace: str) -> None:
        self.channel = f"{namespace}:signals:stop"
        self._client = aioredis.from_url(url, socket_timeout=5.0, socket_connect_timeout=2.0)

    async def publish_stop(self, signal: StopSignal) -> None:
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                await self._client.publish(self.channel, signal.to_json())
        except (aioredis.RedisError, OSError, TimeoutError) as exc:
            log.warning("stop_signal_not_sent", error=str(exc), note="the queued stop event stops the turn")

    async def listen(self, on_stop: OnStop, stop: asyncio.Event) -> None:
        backoff = Backoff(base=0.5, cap=10.0)
        while not stop.is_set():
            try:
                await self._listen_once(on_stop, stop)
            except (aioredis.RedisError, OSError) as exc:
                delay = backoff.next_delay()
                log.warning("stop_signals_unreachable", error=str(exc), retry_in=round(delay, 1))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    async def _listen_once(self, on_stop: OnStop, stop: asyncio.Event) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            while not stop.is_set():
                message = await pubsub.get_message(timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                try:
                    signal = StopSignal.from_json(message["data"])
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("stop_signal_unreadable", error=str(exc))
                    continue
                on_stop(signal)
        finally:
            await pubsub.aclose()

    async def close(self) -> None:
        await self._client.aclose()
