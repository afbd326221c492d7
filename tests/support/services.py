"""Real RabbitMQ and Redis for integration tests, one namespace per test.

When ``CI=true`` a missing service fails the run; elsewhere the test is
skipped with a one-line reason.
"""

from __future__ import annotations

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


async def purge_namespace(namespace: str, partitions: int = 16) -> None:
    """Delete every queue, exchange and key a test created under ``namespace``."""
    import aio_pika
    import redis.asyncio as aioredis

    from gateway.bus.topology import Topology

    topo = Topology(namespace, partitions)
    try:
        conn = await aio_pika.connect(AMQP_URL, timeout=5)
    except Exception:
        conn = None
    if conn is not None:
        async with conn:
            for spec in topo.queues():
                channel = await conn.channel()
                try:
                    await channel.queue_delete(spec.name)
                except Exception:
                    pass
                finally:
                    if not channel.is_closed:
                        await channel.close()
            for name, _ in topo.exchanges():
                channel = await conn.channel()
                try:
                    await channel.exchange_delete(name)
                except Exception:
                    pass
                finally:
                    if not channel.is_closed:
                        await channel.close()
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    except Exception:
        pass
    finally:
        await client.aclose()
