"""Deleting a namespace: its RabbitMQ queues and exchanges and its Redis keys (``gateway purge``).

What belongs to a namespace ``ns``:

- queues ``ns.dispatch.{p}``, ``ns.outbound.{p}`` and ``ns.dead``, for every partition the topology has
  and any beyond it left by an earlier, larger ``GATEWAY_PARTITIONS`` (probed upwards until neither
  queue of a partition exists);
- exchanges ``ns.events``, ``ns.outbound`` and ``ns.dead``;
- every Redis key ``ns:*`` (dedupe keys, markers, history, memory, leases, members, buckets).

Tails' own queues are exclusive and auto-deleted: they go with their connection. RabbitMQ cannot
list queues over AMQP, so the names come from the topology; each is looked at with a passive
declare (a missing one closes its channel, so probing uses a fresh channel after each miss).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType

import aio_pika
import redis.asyncio as aioredis
from aio_pika.abc import AbstractChannel, AbstractConnection

from gateway.core.bus.topology import Topology

#: Keys unlinked per command.
BATCH = 1000


@dataclass
class BrokerInventory:
    #: Queue name -> (ready messages, consumers), for the queues that exist.
    queues: dict[str, tuple[int, int]] = field(default_factory=dict)
    exchanges: list[str] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(m for m, _ in self.queues.values())

    @property
    def consumers(self) -> int:
        return sum(c for _, c in self.queues.values())


@dataclass
class RedisInventory:
    #: Key kind (the part after ``ns:`` up to the next ``:``, e.g. ``hist``) -> number of keys.
    kinds: Counter[str] = field(default_factory=Counter)

    @property
    def keys(self) -> int:
        return sum(self.kinds.values())


class _Channels:
    """A channel for passive declares and deletes, replaced after the broker closes it for a miss."""

    def __init__(self, connection: AbstractConnection, timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout
        self._channel: AbstractChannel | None = None

    async def _open(self) -> AbstractChannel:
        if self._channel is None or self._channel.is_closed:
            self._channel = await asyncio.wait_for(self._connection.channel(), self._timeout)
        return self._channel

    async def queue(self, name: str) -> tuple[int, int] | None:
        channel = await self._open()
        try:
            declared = await asyncio.wait_for(channel.declare_queue(name, passive=True), self._timeout)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return None
        result = declared.declaration_result
        return int(result.message_count or 0), int(result.consumer_count or 0)

    async def exchange(self, name: str) -> bool:
        channel = await self._open()
        try:
            await asyncio.wait_for(channel.get_exchange(name, ensure=True), self._timeout)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False
        return True

    async def delete(self, kind: str, name: str) -> None:
        channel = await self._open()
        if kind == "queue":
            await asyncio.wait_for(channel.queue_delete(name), self._timeout)
        else:
            await asyncio.wait_for(channel.exchange_delete(name), self._timeout)

    async def __aenter__(self) -> _Channels:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()


def _partition_queues(topology: Topology, p: int) -> list[str]:
    return [topology.dispatch_queue(p), topology.outbound_queue(p)]


async def _broker_inventory(channels: _Channels, topology: Topology) -> BrokerInventory:
    inventory = BrokerInventory()
    names = [spec.name for spec in topology.queues()]
    for name in names:
        if (info := await channels.queue(name)) is not None:
            inventory.queues[name] = info
    p = topology.partitions
    while True:  # partitions left by a larger GATEWAY_PARTITIONS
        found = {name: info for name in _partition_queues(topology, p) if (info := await channels.queue(name))}
        if not found:
            break
        inventory.queues.update(found)
        p += 1
    inventory.exchanges = [name for name, _ in topology.exchanges() if await channels.exchange(name)]
    return inventory


async def broker_inventory(amqp_url: str, topology: Topology, *, timeout: float = 10.0) -> BrokerInventory:
    """What of ``topology``'s namespace exists on the broker (nothing is declared or changed)."""
    async with (
        await aio_pika.connect(amqp_url, timeout=timeout) as connection,
        _Channels(connection, timeout) as channels,
    ):
        return await _broker_inventory(channels, topology)


async def delete_broker(amqp_url: str, topology: Topology, *, timeout: float = 10.0) -> BrokerInventory:
    """Delete the namespace's queues and exchanges; returns what there was."""
    async with (
        await aio_pika.connect(amqp_url, timeout=timeout) as connection,
        _Channels(connection, timeout) as channels,
    ):
        inventory = await _broker_inventory(channels, topology)
        for name in inventory.queues:
            await channels.delete("queue", name)
        for name in inventory.exchanges:
            await channels.delete("exchange", name)
        return inventory


def _kind(key: bytes, namespace: str) -> str:
    return key[len(namespace) + 1 :].split(b":", 1)[0].decode(errors="replace")


async def redis_inventory(redis_url: str, namespace: str) -> RedisInventory:
    """How many keys of each kind the namespace has in Redis (a SCAN, nothing changed)."""
    client = aioredis.Redis.from_url(redis_url)
    kinds: Counter[str] = Counter()
    try:
        async for key in client.scan_iter(match=f"{namespace}:*", count=BATCH):
            kinds[_kind(key, namespace)] += 1
    finally:
        await client.aclose()
    return RedisInventory(kinds)


async def delete_redis(redis_url: str, namespace: str) -> RedisInventory:
    """Unlink every key ``namespace:*`` in batches; returns how many of each kind there were."""
    client = aioredis.Redis.from_url(redis_url)
    kinds: Counter[str] = Counter()
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{namespace}:*", count=BATCH):
            kinds[_kind(key, namespace)] += 1
            batch.append(key)
            if len(batch) >= BATCH:
                await client.unlink(*batch)
                batch = []
        if batch:
            await client.unlink(*batch)
    finally:
        await client.aclose()
    return RedisInventory(kinds)
