"""Streamed answers end to end: `gateway dev` on RabbitMQ and Redis, the built-in llm agent streaming from
the fake OpenAI server (SSE), the answer growing in a Slack thread and a Telegram chat through the real
clients, then final; the fallbacks (no Slack streaming methods, a Telegram group, webhooks)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.webhooks.signing import secret_key, verify
from gateway.core import samples
from tests.e2e.conftest import REPLY_SECRET, SLACK_SECRET, TELEGRAM_SECRET, WEBHOOK_SECRET, gateway_env
from tests.fakes.base import ChatFake, Shown
from tests.fakes.openai_api import FakeOpenAI, text_reply
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.support.signing import slack_headers, webhook_headers

pytestmark = pytest.mark.e2e
ANSWER = " ".join(f"word{i}" for i in range(40)) + "."
CONFIG = """
[[routes]]
platform = "slack"
channel = "CPLAIN"
stream = false

[webhooks.sources.shop]
secret_env = "SHOP_SECRET"
customer_pointer = "/customer/id"
text_pointer = "/message/text"
reply_url = "{receiver}/agent-replies"
reply_secret_env = "SHOP_REPLY_SECRET"
stream = "chunked"
"""


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key="sk-e2e") as fake:
        fake.script(lambda req: text_reply(ANSWER))
        fake.stream_delay = 0.03  # 40 words in about 1.2 s: several snapshots
        yield fake


@pytest.fixture
async def gateway(
    services: tuple[str, str, str],
    slack: FakeSlack,
    telegram: FakeTelegram,
    receiver: WebhookReceiver,
    openai_fake: FakeOpenAI,
    tmp_path: Path,
) -> AsyncIterator[GatewayProcess]:
    env = gateway_env(
        slack,
        telegram,
        **service_env(services, config=CONFIG.format(receiver=receiver.root_url), tmp_path=tmp_path),
        OPENAI_BASE_URL=f"{openai_fake.base_url}/v1",
        OPENAI_API_KEY="sk-e2e",
        GATEWAY_LLM_MODEL="gpt-4o-mini",
        GATEWAY_DEFAULT_AGENT="llm",
        GATEWAY_STREAM="1",
        SHOP_SECRET=WEBHOOK_SECRET,
        SHOP_REPLY_SECRET=REPLY_SECRET,
    )
    proc = await GatewayProcess("dev", env).start()
    try:
        yield proc
    finally:
        assert await proc.terminate() == 0, proc.logs()[-2000:]


async def say_slack(gw: GatewayProcess, text: str, *, channel: str, ts: str) -> None:
    body = samples.slack_message(text, channel=channel, ts=ts)
    assert await post(f"{gw.url}/slack/events", body, slack_headers(SLACK_SECRET, body)) == 200


async def say_telegram(gw: GatewayProcess, text: str, *, chat_id: int, update_id: int) -> None:
    body = samples.telegram_message(text, chat_id=chat_id, update_id=update_id)
    headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"}
    assert await post(f"{gw.url}/telegram/default", body, headers) == 200


async def final_step(fake: ChatFake, chat: str, *, timeout: float = 20.0) -> Shown:
    """The first step that shows the whole answer for good."""
    await fake.wait_until(
        lambda: any(s.chat == chat and s.final and s.text == ANSWER for s in fake.timeline), timeout, "the final answer"
    )
    return next(s for s in fake.timeline if s.chat == chat and s.final and s.text == ANSWER)


def assert_grows(steps: list[Shown]) -> None:
    """More than one partial text before the final one, each extending the one before."""
    texts = [s.text for s in steps]
    assert len(set(texts)) >= 3, texts
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts)), texts
    assert texts[-1] == ANSWER


async def test_a_slack_thread_shows_the_answer_growing_then_final(gateway: GatewayProcess, slack: FakeSlack) -> None:
    await say_slack(gateway, "tell me a story", channel="CSTREAM", ts="1700000100.000100")
    await final_step(slack, "CSTREAM")
    (message,) = slack.created("CSTREAM", "1700000100.000100")  # one message per answer
    assert message["text"] == ANSWER
    assert_grows(slack.steps("CSTREAM", message["ts"]))
    methods = [c.method for c in slack.calls if c.method.startswith("chat.")]
    assert methods[0] == "chat.startStream"
    assert methods[-1] == "chat.stopStream"
    assert "chat.postMessage" not in methods


async def test_a_slack_route_without_streaming_posts_once(gateway: GatewayProcess, slack: FakeSlack) -> None:
    await say_slack(gateway, "tell me a story", channel="CPLAIN", ts="1700000200.000100")
    await final_step(slack, "CPLAIN")
    assert [c.method for c in slack.calls if c.method.startswith("chat.")] == ["chat.postMessage"]


async def test_without_slack_streaming_the_answer_is_posted_then_edited(
    gateway: GatewayProcess, slack: FakeSlack
) -> None:
    slack.streaming = False
    await say_slack(gateway, "tell me a story", channel="CEDIT", ts="1700000300.000100")
    await final_step(slack, "CEDIT")
    (message,) = slack.created("CEDIT", "1700000300.000100")
    assert_grows(slack.steps("CEDIT", message["ts"]))
    methods = {c.method for c in slack.calls if c.status == 200 and c.method.startswith("chat.")}
    assert methods == {"chat.startStream", "chat.postMessage", "chat.update"}  # tried once, then post-and-edit


async def test_a_telegram_chat_shows_a_growing_draft_then_one_message(
    gateway: GatewayProcess, telegram: FakeTelegram
) -> None:
    await say_telegram(gateway, "tell me a story", chat_id=777, update_id=9001)
    final = await final_step(telegram, "777")
    drafts = [s for s in telegram.timeline if s.chat == "777" and s.message.startswith("draft:")]
    assert_grows([*drafts, final])
    assert all(s.at < final.at for s in drafts)
    assert [m["text"] for m in telegram.messages if m["chat_id"] == 777] == [ANSWER]


async def test_a_telegram_group_is_posted_then_edited(gateway: GatewayProcess, telegram: FakeTelegram) -> None:
    await say_telegram(gateway, "tell me a story", chat_id=-100555, update_id=9002)
    final = await final_step(telegram, "-100555")
    (message,) = [m for m in telegram.messages if m["chat_id"] == -100555]
    assert_grows(telegram.steps("-100555", final.message))
    assert message["text"] != ANSWER  # posted with the first words, then edited up to the answer


async def test_a_chunked_webhook_source_gets_signed_deltas_then_the_reply(
    gateway: GatewayProcess, receiver: WebhookReceiver
) -> None:
    body = json.dumps({"customer": {"id": "cus_9"}, "message": {"text": "tell me a story"}}).encode()
    status = await post(
        f"{gateway.url}/webhooks/shop", body, webhook_headers(WEBHOOK_SECRET, body, msg_id="msg_stream_1")
    )
    assert status == 200
    await receiver.wait_until(
        lambda: any(r.json()["type"] == "agent.reply" for r in receiver.requests), 20, "the final reply"
    )
    key = secret_key(REPLY_SECRET)
    for r in receiver.requests:
        verify([key], r.headers, r.body, time.time())
    bodies = [r.json() for r in receiver.requests]
    *deltas, final = bodies
    assert [b["type"] for b in deltas] == ["agent.reply.delta"] * len(deltas)
    assert len(deltas) >= 2
    assert "".join(b["delta"] for b in deltas) == deltas[-1]["text"]
    assert [b["offset"] for b in deltas] == list(itertools.accumulate([0] + [len(b["delta"]) for b in deltas[:-1]]))
    assert final["text"] == ANSWER
    assert final["id"] == deltas[0]["id"]
