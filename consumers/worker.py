"""A consumer process: leases, partitions, the agent pool and the sender together.

Lifecycle: ``async with ConsumerWorker(...) as worker: await stop.wait()``.
On exit (SIGTERM) it stops acquiring, drains and releases every partition
within the grace period (so others take over in about a second, not after
the lease TTL), leaves the membership, releases warm agent sessions and
closes the platform clients.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping
from types import TracebackType

import structlog

from agents.registry import AgentFactory
from connectors.outbound import PlatformSender
from connectors.platform import RatePolicy
from consumers.deadletter import DeadLetters
from consumers.dispatch import DispatchConfig, Dispatcher
from consumers.leases import LeaseManager
from consumers.outbound import OutboundWorker
from consumers.partition import PartitionWorker
from consumers.pool import AgentPool
from consumers.ratelimit import RateLimiter
from consumers.usage import UsageLedger
from gateway.core.bus.base import Bus
from gateway.core.config import GatewayFile, HandoffConfig
from gateway.core.events import OutboundMessage
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.settings import Settings
from gateway.core.signals import Signals, StopSignal
from gateway.core.store.base import Store

log = structlog.get_logger(__name__)


def default_consumer_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"


class ConsumerWorker:
    def __init__(
        self,
        settings: Settings,
        *,
        bus: Bus,
        store: Store,
        publisher: Publisher,
        metrics: Metrics,
        agents: dict[str, AgentFactory],
        senders: dict[str, PlatformSender],
        rate_policies: Mapping[str, RatePolicy],
        file: GatewayFile | None = None,
        signals: Signals | None = None,
    ) -> None:
        self.settings = settings
        self._signals = signals
        self.id = settings.consumer_id or default_consumer_id()
        self._bus = bus
        self._metrics = metrics
        self._senders = senders
        self._agents = agents
        self.pool = AgentPool(
            agents,
            store,
            max_size=settings.warm_pool,
            idle_release=settings.idle_release,
            memory_ttl=settings.memory_ttl or None,
        )
        dead = DeadLetters(publisher, metrics)
        self.dispatcher = Dispatcher(
            publisher=publisher,
            store=store,
            pool=self.pool,
            dead=dead,
            metrics=metrics,
            config=DispatchConfig(
                default_agent=settings.default_agent,
                attempts=settings.turn_attempts,
                retry_base=settings.retry_base,
                turn_timeout=settings.turn_timeout,
                history_window=settings.history_window,
                history_ttl=settings.history_ttl or None,
                typing_every=settings.typing_every,
                interrupt_marker=settings.interrupt_marker,
                handoff=file.handoff if file is not None else HandoffConfig(),
            ),
            usage=UsageLedger(
                store,
                metrics,
                file,
                default_agent=settings.default_agent,
                conversation_ttl=settings.history_ttl or None,
            ),
        )
        self.sender = OutboundWorker(
            senders,
            store=store,
            limiter=RateLimiter(store, rate_policies, senders=senders),
            dead=dead,
            metrics=metrics,
            attempts=settings.send_attempts,
        )
        self.partitions: dict[int, PartitionWorker] = {}
        self.dispatcher.preview = self._preview
        self.leases = LeaseManager(
            store,
            self.id,
            settings.partitions,
            ttl=settings.lease_ttl,
            on_acquired=self._start_partition,
            on_release=self._stop_partition,
            on_lost=self._abandon_partition,
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        metrics.in_flight.labels("dispatch").set_function(
            lambda: sum(w.turns.pending() for w in self.partitions.values())
        )
        metrics.in_flight.labels("outbound").set_function(
            lambda: sum(w.sends.pending() for w in self.partitions.values())
        )

    def _preview(self, message: OutboundMessage) -> bool:
        worker = self.partitions.get(self._bus.topology.partition_of(message.conversation_key))
        if worker is None:
            return False
        worker.preview(message)
        return True

    async def _start_partition(self, p: int) -> None:
        worker = PartitionWorker(
            p, bus=self._bus, dispatcher=self.dispatcher, sender=self.sender, prefetch=self.settings.prefetch
        )
        await worker.start()
        self.partitions[p] = worker
        self._metrics.partitions_owned.set(len(self.partitions))

    async def _stop_partition(self, p: int) -> None:
        worker = self.partitions.pop(p, None)
        if worker is not None:
            await worker.stop(grace=self.settings.shutdown_grace)
        self._metrics.partitions_owned.set(len(self.partitions))

    async def _abandon_partition(self, p: int) -> None:
        worker = self.partitions.pop(p, None)
        if worker is not None:
            await worker.abandon()
        self._metrics.partitions_owned.set(len(self.partitions))

    async def ready(self) -> bool:
        return not self._stop.is_set()

    async def __aenter__(self) -> ConsumerWorker:
        log.info("consumer_starting", consumer_id=self.id, partitions=self.settings.partitions)
        self._tasks = [
            asyncio.create_task(self.leases.run(self._stop)),
            asyncio.create_task(self.pool.run_sweeper(self._stop)),
        ]
        if self._signals is not None:
            self._tasks.append(asyncio.create_task(self._signals.listen(self._on_stop, self._stop)))
        return self

    def _on_stop(self, signal: StopSignal) -> None:
        """A stop request from ingress: stop the turn if it runs here (consumers/interrupts.py)."""
        acted = self.dispatcher.interrupts.stop(signal.id, signal.key, signal.received_at, signal.reason)
        if acted:
            log.info("stop_signal_acted", conversation_key=signal.key, stop_event_id=signal.id, reason=signal.reason)

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()

    async def shutdown(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        log.info("consumer_draining", partitions=sorted(self.partitions))
        await self.leases.release_all()
        await self.pool.close()
        for sender in self._senders.values():
            try:
                await sender.close()
            except Exception as exc:
                log.warning("sender_close_failed", error=str(exc))
        for factory in self._agents.values():
            try:
                await factory.close()
            except Exception as exc:
                log.warning("agent_close_failed", agent=factory.name, error=str(exc))
        log.info("consumer_stopped", consumer_id=self.id)
