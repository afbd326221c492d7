"""Dispatch from code: an application hands an event to an agent the durable way, without a webhook."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from gateway.client import GatewayClient, slack_thread, web_conversation
from gateway.core.errors import ConfigError
from gateway.core.settings import Settings
from tests.e2e.conftest import gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess

pytestmark = pytest.mark.e2e


async def test_dispatch_returns_a_receipt_and_the_agent_answers_once(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram
) -> None:
    amqp, redis, namespace = services
    gw = await GatewayProcess("dev", gateway_env(slack, telegram, amqp=amqp, redis=redis, namespace=namespace)).start()
    settings = Settings(AMQP_URL=amqp, REDIS_URL=redis, GATEWAY_NAMESPACE=namespace)
    try:
        async with GatewayClient.connect(settings) as client:
            first = await client.dispatch(
                "report ready", to=slack_thread("CAPI", "1700.1"), agent="echo", idempotency_key="report-1"
            )
            again = await client.dispatch(
                "report ready", to=slack_thread("CAPI", "1700.1"), agent="echo", idempotency_key="report-1"
            )
            other = await client.dispatch(
                "second report", to=slack_thread("CAPI", "1700.1"), agent="echo", idempotency_key="report-2"
            )
            with pytest.raises(ConfigError, match=r"unknown agent 'ehco': this gateway serves echo"):
                await client.dispatch("typo", to=slack_thread("CAPI", "1700.1"), agent="ehco")
        messages = await slack.wait_for_messages(2)
    finally:
        assert await gw.terminate() == 0
    assert first.duplicate is False
    assert again.duplicate is True
    assert again.event_id == first.event_id  # the caller can correlate the retry with the first event
    assert other.duplicate is False
    assert first.conversation_key == "slack:app:CAPI:1700.1"
    assert 0 <= first.partition < 16
    assert other.event_id != first.event_id
    # the refused typo published nothing: exactly the two reports were answered
    assert [(m["channel"], m["thread_ts"], m["text"]) for m in messages] == [
        ("CAPI", "1700.1", "echo: report ready"),
        ("CAPI", "1700.1", "echo: second report"),
    ]


async def test_stream_reads_a_web_conversations_replies_as_they_come_and_resumes_after_an_id(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram
) -> None:
    amqp, redis, namespace = services
    env = gateway_env(slack, telegram, amqp=amqp, redis=redis, namespace=namespace)
    gw = await GatewayProcess("dev", env).start()
    settings = Settings(AMQP_URL=amqp, REDIS_URL=redis, GATEWAY_NAMESPACE=namespace)
    key = "web:acme:user-42"
    try:
        async with GatewayClient.connect(settings) as client:
            replies = client.stream(key)
            sent = await client.dispatch("first", to=web_conversation("acme", "user-42"), agent="echo")
            assert sent.conversation_key == key
            async with asyncio.timeout(20):
                first = await anext(replies)
            await client.dispatch("second", to=web_conversation("acme", "user-42"), agent="echo")
            async with asyncio.timeout(20):
                second = await anext(replies)
            await replies.aclose()
            resumed = client.stream(key, after=first["id"])
            async with asyncio.timeout(20):
                again = await anext(resumed)
            await resumed.aclose()
            with pytest.raises(ConfigError, match="reads web conversations"):
                await anext(client.stream("slack:T:C"))
        raw = aioredis.Redis.from_url(redis)
        try:  # the transcript expires with the conversation's history (GATEWAY_HISTORY_TTL, 30 days)
            ttl = await raw.ttl(f"{namespace}:web:transcript:{key}")
        finally:
            await raw.aclose()
    finally:
        assert await gw.terminate() == 0
    assert (first["role"], first["text"]) == ("agent", "echo: first")
    assert (second["role"], second["text"]) == ("agent", "echo: second")
    assert again == second  # resumed after the first: the second, and nothing twice
    assert 29 * 86400 < ttl <= 30 * 86400
