"""Assembling the parts from settings, and their lifecycles.

``AMQP_URL`` / ``REDIS_URL`` pick RabbitMQ and Redis; without them ``gateway dev``
uses the in-process twins (and says loudly that accepted work is lost on exit),
while ``serve`` and ``consume`` refuse to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog

from connectors import Registry, build_registry
from connectors.platform import Parts
from gateway.core.backoff import Backoff
from gateway.core.bus.amqp import AmqpBus
from gateway.core.bus.base import Bus
from gateway.core.bus.diagnose import describe
from gateway.core.bus.memory import MemoryBus
from gateway.core.bus.topology import Topology
from gateway.core.config import GatewayFile
from gateway.core.errors import ConfigError, StoppedWhileConnecting
from gateway.core.ingest import Ingestor
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.routing import Router
from gateway.core.settings import Settings
from gateway.core.signals import MemorySignals, RedisSignals, Signals
from gateway.core.store.base import Store
from gateway.core.store.memory import MemoryStore
from gateway.core.store.redis import RedisStore

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    settings: Settings
    file: GatewayFile
    bus: Bus
    store: Store
    metrics: Metrics
    publisher: Publisher
    router: Router
    embedded: bool
    #: Stop requests from ingress to every consumer (gateway/core/signals.py).
    signals: Signals

    def parts(self, *, ingestor: Ingestor | None = None, dev: bool = False) -> Parts:
        """What platforms build their connectors, senders and routes from."""
        return Parts(
            self.settings, self.file, store=self.store, bus=self.bus, ingestor=ingestor, metrics=self.metrics, dev=dev
        )

    def registry(self, parts: Parts | None = None) -> Registry:
        return build_registry(self.settings, self.file, parts or self.parts())

    def ingestor(self) -> Ingestor:
        return Ingestor(
            self.publisher,
            self.store,
            self.router,
            self.metrics,
            dedupe_ttl=self.settings.dedupe_ttl,
            signals=self.signals,
        )


def settle_heap() -> None:
    """Once everything is loaded: move the start-up objects (modules, pydantic schemas, clients) out of
    the collector's sight, so the full collections that come with traffic do not walk them again
    (they paused the loop for up to 135 ms under load before this)."""
    gc.collect()
    gc.freeze()


def make_bus(settings: Settings) -> Bus:
    topology = Topology(settings.namespace, settings.partitions)
    if settings.amqp_url is None:
        return MemoryBus(topology)
    return AmqpBus(settings.amqp_url.get_secret_value(), topology)


def make_store(settings: Settings) -> Store:
    if settings.redis_url is None:
        return MemoryStore(settings.namespace)
    return RedisStore(settings.redis_url.get_secret_value(), settings.namespace)


def make_signals(settings: Settings) -> Signals:
    if settings.redis_url is None:
        return MemorySignals()
    return RedisSignals(settings.redis_url.get_secret_value(), settings.namespace)


def require_services(settings: Settings, command: str) -> None:
    missing = [n for n, v in (("AMQP_URL", settings.amqp_url), ("REDIS_URL", settings.redis_url)) if v is None]
    if missing:
        raise ConfigError(
            f"gateway {command} needs {' and '.join(missing)} (e.g. amqp://guest:guest@127.0.0.1:5672/ and "
            "redis://127.0.0.1:6379/0); for a single process without them run `gateway dev`"
        )


async def connect_bus(
    bus: Bus,
    *,
    stop: asyncio.Event | None = None,
    backoff: Backoff | None = None,
    attempts: int | None = None,
) -> None:
    """Connect, retrying with exponential backoff while the broker is down (HTTP answers 503 meanwhile).

    ``stop`` (set by SIGTERM/SIGINT) ends the wait at once with :class:`StoppedWhileConnecting`.
    """
    backoff = backoff or Backoff(base=1.0, cap=30.0)
    stopping = stop or asyncio.Event()
    while True:
        try:
            await bus.start()
            if backoff.failures:
                log.info("broker_connected", attempts=backoff.failures + 1)
            return
        except Exception as exc:
            if attempts is not None and backoff.failures + 1 >= attempts:
                raise
            delay = backoff.next_delay()
            log.warning("broker_unreachable", error=describe(exc), attempt=backoff.failures, retry_in=round(delay, 1))
        if stopping.is_set():
            raise StoppedWhileConnecting
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
        if stopping.is_set():
            raise StoppedWhileConnecting


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, *, block_until_connected: bool = True, stop: asyncio.Event | None = None
) -> AsyncIterator[Runtime]:
    """The assembled parts. With ``block_until_connected`` it returns only once the broker answered; a
    ``stop`` set meanwhile raises :class:`StoppedWhileConnecting` (nothing was accepted yet)."""
    file = settings.load_file()
    bus = make_bus(settings)
    store = make_store(settings)
    metrics = Metrics()
    embedded = settings.amqp_url is None or settings.redis_url is None
    rt = Runtime(
        settings=settings,
        file=file,
        bus=bus,
        store=store,
        metrics=metrics,
        publisher=Publisher(bus, metrics, timeout=settings.publish_timeout),
        router=Router(file.routes, settings.default_agent, stream=settings.stream),
        embedded=embedded,
        signals=make_signals(settings),
    )
    connecting: asyncio.Task[None] | None = None
    if block_until_connected:
        try:
            await connect_bus(bus, stop=stop)
        except BaseException:
            await bus.close()
            await store.close()
            await rt.signals.close()
            raise
    else:
        connecting = asyncio.create_task(connect_bus(bus, stop=stop))
    try:
        yield rt
    finally:
        if connecting is not None:
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
        await bus.close()
        await store.close()
        await rt.signals.close()
