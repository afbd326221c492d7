"""Real RabbitMQ and Redis for integration tests, one namespace per test.

When ``CI=true`` a missing service fails the run; elsewhere the test is
skipped with a one-line reason.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from pathlib import Path

import pytest

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(service: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{service} is not reachable on {host}:{port}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} and CI=true: integration tests must not skip", pytrace=False)
    pytest.skip(message)


def new_namespace(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def service_env(
    services: tuple[str, str, str], *, config: str | None = None, tmp_path: Path | None = None
) -> dict[str, str]:
    """``gateway_env`` keywords (tests/e2e/conftest.py) for the ``services`` fixture's (amqp, redis, namespace).

    With ``config``, that text is written to ``tmp_path/gateway.toml`` and ``GATEWAY_CONFIG`` names it.
    """
    amqp, redis, namespace = services
    env = {"amqp": amqp, "redis": redis, "namespace": namespace}
    if config is not None:
        if tmp_path is None:
            raise ValueError("service_env(config=...) needs tmp_path: where to write gateway.toml")
        path = tmp_path / "gateway.toml"
        path.write_text(config)
        env["GATEWAY_CONFIG"] = str(path)
    return env


async def purge_namespace(
    namespace: str,
    partitions: int = 16,
    *,
    amqp_url: str = AMQP_URL,
    redis_url: str = REDIS_URL,
    timeout: float = 5.0,
) -> None:
    """Delete every queue, exchange and key created under ``namespace`` (tests and benchmarks).

    Best effort: what cannot be deleted (a service away, a queue already gone) is skipped, and each
    broker operation is bounded by ``timeout``.
    """
    import aio_pika
    import redis.asyncio as aioredis

    from gateway.bus.topology import Topology

    topo = Topology(namespace, partitions)
    try:
        conn = await aio_pika.connect(amqp_url, timeout=timeout)
    except Exception:
        conn = None
    if conn is not None:
        async with conn:
            deletions = [("queue_delete", spec.name) for spec in topo.queues()]
            deletions += [("exchange_delete", name) for name, _ in topo.exchanges()]
            for method, name in deletions:  # a channel each: a failed delete closes its channel
                channel = await conn.channel()
                try:
                    await asyncio.wait_for(getattr(channel, method)(name), timeout)
                except Exception:
                    pass
                finally:
                    if not channel.is_closed:
                        await channel.close()
    client = aioredis.Redis.from_url(redis_url)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{namespace}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await client.unlink(*batch)
                batch = []
        if batch:
            await client.unlink(*batch)
    except Exception:
        pass
    finally:
        await client.aclose()
