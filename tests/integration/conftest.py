"""Backends for the contract suites: every case runs against the in-process twin and the real service.

``memory`` needs nothing; ``real`` depends on the ``services`` fixture, so it skips (or fails when
CI=true) without RabbitMQ/Redis and purges its namespace afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.core.bus.amqp import AmqpBus
from gateway.core.bus.base import Bus
from gateway.core.bus.memory import MemoryBus
from gateway.core.bus.topology import Topology
from gateway.core.store.base import Store
from gateway.core.store.memory import MemoryStore
from gateway.core.store.redis import RedisStore

PARTITIONS = 4
BACKENDS = ["memory", pytest.param("real", marks=pytest.mark.integration)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, namespace: str) -> tuple[str, str, str, str]:
    """(kind, amqp_url, redis_url, namespace); only the real kind pulls in (and purges) the services."""
    if request.param == "memory":
        return "memory", "", "", namespace
    amqp_url, redis_url, ns = request.getfixturevalue("services")
    return "real", amqp_url, redis_url, ns


@pytest.fixture
async def bus(backend: tuple[str, str, str, str]) -> AsyncIterator[Bus]:
    kind, amqp_url, _, ns = backend
    topology = Topology(ns, PARTITIONS)
    b: Bus = MemoryBus(topology) if kind == "memory" else AmqpBus(amqp_url, topology)
    await b.start()
    yield b
    await b.close()


@pytest.fixture
async def store(backend: tuple[str, str, str, str]) -> AsyncIterator[Store]:
    kind, _, redis_url, ns = backend
    s: Store = MemoryStore(ns) if kind == "memory" else RedisStore(redis_url, ns)
    yield s
    await s.close()


@pytest.fixture
def kind(backend: tuple[str, str, str, str]) -> str:
    return backend[0]
