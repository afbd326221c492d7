from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.fakes.openai_api import FakeOpenAI, text_reply
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.services import AMQP_URL, REDIS_URL, purge_namespace, require

SLACK_SECRET = "e2e-slack-signing-secret-32-chars"
TELEGRAM_SECRET = "e2e-telegram-secret-token"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REPLY_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token="xoxb-e2e") as fake:
        yield fake


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token="123:E2E") as fake:
        yield fake


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as fake:
        yield fake


def gateway_env(
    slack: FakeSlack,
    telegram: FakeTelegram,
    *,
    amqp: str | None = None,
    redis: str | None = None,
    namespace: str = "gw",
    **extra: str,
) -> dict[str, str]:
    env = {
        "GATEWAY_NAMESPACE": namespace,
        "SLACK_SIGNING_SECRET": SLACK_SECRET,
        "SLACK_BOT_TOKEN": "xoxb-e2e",
        "SLACK_API_URL": slack.base_url,
        "TELEGRAM_BOT_TOKEN": "123:E2E",
        "TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
        "TELEGRAM_API_URL": telegram.base_url,
        # Replies in tests are not paced like real Slack: the pacing has its own test.
        "GATEWAY_SLACK_CHANNEL_RATE": "10000",
        "GATEWAY_SLACK_CHANNEL_BURST": "10000",
        "GATEWAY_SLACK_WORKSPACE_RATE": "10000",
        "GATEWAY_TELEGRAM_CHAT_RATE": "10000",
        "GATEWAY_TELEGRAM_CHAT_BURST": "10000",
        "GATEWAY_TELEGRAM_BOT_RATE": "10000",
        "GATEWAY_RETRY_BASE": "0.2",
        "PTB_TIMEDELTA": "1",
        **extra,
    }
    if amqp:
        env["AMQP_URL"] = amqp
    if redis:
        env["REDIS_URL"] = redis
    return env


@pytest.fixture(params=["embedded", "rabbitmq+redis"])
async def backend(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[dict[str, str]]:
    """Environment selecting the in-process twins or the real RabbitMQ and Redis (purged afterwards)."""
    if request.param == "embedded":
        yield {}
        return
    require("RabbitMQ", "127.0.0.1", 5672)
    require("Redis", "127.0.0.1", 6379)
    yield {"amqp": AMQP_URL, "redis": REDIS_URL, "namespace": namespace}
    await purge_namespace(namespace)


@contextlib.asynccontextmanager
async def echoing_model() -> AsyncIterator[dict[str, str]]:
    """A fake OpenAI server answering "model says: <the last message>", and the environment that makes the
    ``llm`` agent the default one, talking to it."""
    async with FakeOpenAI(api_key="sk-e2e") as model:
        model.script(lambda req: text_reply(f"model says: {req['messages'][-1]['content']}"))
        yield {
            "OPENAI_BASE_URL": f"{model.base_url}/v1",
            "OPENAI_API_KEY": "sk-e2e",
            "GATEWAY_LLM_MODEL": "gpt-4o-mini",
            "GATEWAY_DEFAULT_AGENT": "llm",
        }
