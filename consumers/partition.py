"""One partition owned by this process: its dispatch queue and its outbound queue.

Releasing a partition on purpose (rebalance, SIGTERM) is a handover with no
overlap: stop taking deliveries, finish what was taken (bounded), close the
channels (anything left goes back to the queue, in order), and only then let
the lease go so another consumer subscribes.
"""

from __future__ import annotations

import asyncio

import structlog

from consumers.dispatch import Dispatcher
from consumers.lanes import Lanes
from consumers.outbound import OutboundWorker
from gateway.core.bus.base import Bus, Delivery, Subscription
from gateway.core.events import OutboundMessage

log = structlog.get_logger(__name__)


async def _no_settle(how: str) -> None:
    return None


class PartitionWorker:
    def __init__(
        self, partition: int, *, bus: Bus, dispatcher: Dispatcher, sender: OutboundWorker, prefetch: int
    ) -> None:
        self.partition = partition
        self._bus = bus
        self._prefetch = prefetch
        self._sender = sender
        self._prepare = dispatcher.prepare
        self.turns: Lanes[Delivery] = Lanes(dispatcher.run, collect=self._collects)
        # A run takes everything buffered for the chat: stream snapshots made stale by a later one are dropped.
        self.sends: Lanes[Delivery] = Lanes(sender.run, collect=lambda key: True)
        self._subs: list[Subscription] = []
        self._collect_keys: set[str] = set()

    def _collects(self, key: str) -> bool:
        return key in self._collect_keys

    async def start(self) -> None:
        topo = self._bus.topology
        self._subs = [
            await self._bus.subscribe(topo.dispatch_queue(self.partition), self._on_event, prefetch=self._prefetch),
            await self._bus.subscribe(topo.outbound_queue(self.partition), self._on_outbound, prefetch=self._prefetch),
        ]

    async def _on_event(self, delivery: Delivery) -> None:
        key = str(delivery.headers.get("conversation_key") or "")
        if not key:
            key = f"undecodable:{delivery.message_id}"
        elif self._router_collects(delivery):
            self._collect_keys.add(key)
        self._prepare(delivery)
        self.turns.submit(key, delivery)

    def _router_collects(self, delivery: Delivery) -> bool:
        return delivery.headers.get("busy") == "collect"

    async def _on_outbound(self, delivery: Delivery) -> None:
        self.sends.submit(self._sender.arrive(delivery), delivery)

    def preview(self, message: OutboundMessage) -> None:
        """A stream snapshot of a turn running here, into its chat's lane without the broker: a preview needs
        no durability (the stream's state is in the store, its final goes through the broker), and this
        process is the one that sends for the chat anyway (it owns the partition)."""
        d = Delivery(b"", {}, "", "local", message.id, 0, _no_settle, prepared=message)
        self.sends.submit(self._sender.arrive(d), d)

    async def stop(self, *, grace: float) -> None:
        """Hand the partition back: finish in-flight work within ``grace``, return the rest."""
        dispatch_sub, outbound_sub = self._subs or (None, None)
        if dispatch_sub is not None:
            await dispatch_sub.cancel()
        deadline = asyncio.get_running_loop().time() + grace
        finished = await self.turns.wait_idle(max(0.0, grace))
        if outbound_sub is not None:
            await outbound_sub.cancel()
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        finished &= await self.sends.wait_idle(remaining)
        if not finished:
            log.warning(
                "partition_drain_timeout",
                partition=self.partition,
                grace_seconds=grace,
                hint="unfinished deliveries go back to the queue and are redelivered",
            )
            await self.turns.cancel()
            await self.sends.cancel()
        for sub in self._subs:
            await sub.close()
        self._subs = []

    async def abandon(self) -> None:
        """The lease was lost: stop at once and give everything back (another owner may be active)."""
        for sub in self._subs:
            await sub.cancel()
        await self.turns.cancel()
        await self.sends.cancel()
        for sub in self._subs:
            await sub.close()
        self._subs = []

    @property
    def in_flight(self) -> int:
        """Deliveries taken from this partition's queues and not yet settled."""
        return self.turns.pending() + self.sends.pending()
