from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.services import AMQP_URL, REDIS_URL, new_namespace, purge_namespace, require


@pytest.fixture
def namespace() -> str:
    return new_namespace()


@pytest.fixture
def amqp_url() -> str:
    require("RabbitMQ", "127.0.0.1", 5672)
    return AMQP_URL


@pytest.fixture
def redis_url() -> str:
    require("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
async def services(amqp_url: str, redis_url: str, namespace: str) -> AsyncIterator[tuple[str, str, str]]:
    """(amqp_url, redis_url, namespace); everything under the namespace is deleted afterwards."""
    yield amqp_url, redis_url, namespace
    await purge_namespace(namespace)


@pytest.fixture(autouse=True)
def _clean_gateway_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build Settings explicitly; the developer's environment must not leak in."""
    import os

    for name in list(os.environ):
        if name.startswith(
            ("GATEWAY_", "SLACK_", "TELEGRAM_", "OPENAI_", "ANTHROPIC_", "WHATSAPP_", "TEAMS_")
        ) or name in (
            "AMQP_URL",
            "REDIS_URL",
        ):
            monkeypatch.delenv(name, raising=False)
