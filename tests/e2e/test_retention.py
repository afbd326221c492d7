"""Nothing grows without bound: history and memory expire (GATEWAY_HISTORY_TTL, GATEWAY_MEMORY_TTL)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from gateway import samples
from gateway.settings import Settings
from tests.e2e.conftest import SLACK_SECRET, gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.signing import slack_headers

pytestmark = pytest.mark.e2e


def test_retention_defaults_are_30_days_of_history_and_90_of_memory() -> None:
    settings = Settings()
    assert settings.history_ttl == 30 * 24 * 3600
    assert settings.memory_ttl == 90 * 24 * 3600


async def test_a_turn_gives_its_conversation_history_the_configured_ttl(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram
) -> None:
    amqp, redis_url, namespace = services
    env = gateway_env(slack, telegram, amqp=amqp, redis=redis_url, namespace=namespace, GATEWAY_HISTORY_TTL="1234")
    gw = await GatewayProcess("dev", env).start()
    try:
        body = samples.slack_message("remember me", channel="CRET", ts="1700000000.000100")
        assert await post(f"{gw.url}/slack/events", body, slack_headers(SLACK_SECRET, body)) == 200
        await slack.wait_for_messages(1)
    finally:
        assert await gw.terminate() == 0
    raw = aioredis.Redis.from_url(redis_url)
    try:
        key = f"{namespace}:hist:echo:slack:T0DEV:CRET:1700000000.000100"
        assert await raw.llen(key) == 2
        assert 1_200_000 < await raw.pttl(key) <= 1_234_000
    finally:
        await raw.aclose()
