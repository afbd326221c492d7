"""Real RabbitMQ and Redis for integration tests, one namespace per test.

When ``CI=true`` a missing service fails the run; elsewhere the test is
skipped with a one-line reason.
"""

from __future__ import annotations

import asyncio
import contextlib
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

    The product's own deletion (``gateway purge``, gateway/purge.py), best effort: a service that is
    away is skipped, and each broker operation is bounded by ``timeout``.
    """
    from gateway.core.bus.topology import Topology
    from gateway.purge import delete_broker, delete_redis

    with contextlib.suppress(Exception):
        await delete_broker(amqp_url, Topology(namespace, partitions), timeout=timeout)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(delete_redis(redis_url, namespace), timeout * 10)
