"""End to end: a `gateway dev` process, local fake Slack/Telegram servers, the real clients.

Each case runs against the in-process bus/store and against RabbitMQ and Redis.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.webhooks.signing import secret_key, verify
from gateway.core import samples
from tests.e2e.conftest import REPLY_SECRET, SLACK_SECRET, TELEGRAM_SECRET, WEBHOOK_SECRET, gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.processes import GatewayProcess, post
from tests.support.signing import slack_headers, webhook_headers

pytestmark = pytest.mark.e2e


@pytest.fixture
async def gateway(
    backend: dict[str, str], slack: FakeSlack, telegram: FakeTelegram, receiver: WebhookReceiver, tmp_path: Path
) -> AsyncIterator[GatewayProcess]:
    config = tmp_path / "gateway.toml"
    config.write_text(
        "[webhooks.sources.shop]\n"
        'secret_env = "SHOP_SECRET"\n'
        'customer_pointer = "/customer/id"\n'
        'text_pointer = "/message/text"\n'
        f'reply_url = "{receiver.root_url}/agent-replies"\n'
        'reply_secret_env = "SHOP_REPLY_SECRET"\n'
    )
    extra = {"GATEWAY_CONFIG": str(config), "SHOP_SECRET": WEBHOOK_SECRET, "SHOP_REPLY_SECRET": REPLY_SECRET}
    env = gateway_env(slack, telegram, **backend, **extra)
    proc = await GatewayProcess("dev", env).start()
    try:
        yield proc
    finally:
        code = await proc.terminate()
        assert code == 0, f"gateway dev exited {code} on SIGTERM:\n{proc.logs()[-2000:]}"


async def post_slack(gw: GatewayProcess, body: bytes, **headers: str) -> int:
    return await post(f"{gw.url}/slack/events", body, {**slack_headers(SLACK_SECRET, body), **headers})


async def post_telegram(gw: GatewayProcess, body: bytes) -> int:
    headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"}
    return await post(f"{gw.url}/telegram/default", body, headers)


async def test_slack_reply_lands_in_the_thread(gateway: GatewayProcess, slack: FakeSlack) -> None:
    root = samples.slack_message("start of thread", channel="C1", ts="1700000000.000100")
    in_thread = samples.slack_message(
        "inside the thread", channel="C1", ts="1700000001.000200", thread_ts="1700000000.000100"
    )
    assert await post_slack(gateway, root) == 200
    assert await post_slack(gateway, in_thread) == 200
    messages = await slack.wait_for_messages(2)
    assert [m["text"] for m in messages] == ["echo: start of thread", "echo: inside the thread"]
    # A message that started no thread is answered in a thread under it; a threaded one in its thread root.
    assert [(m["channel"], m["thread_ts"]) for m in messages] == [("C1", "1700000000.000100")] * 2


async def test_telegram_reply_lands_in_the_forum_topic(gateway: GatewayProcess, telegram: FakeTelegram) -> None:
    assert await post_telegram(gateway, samples.telegram_message("hi topic", chat_id=-100123, topic=23)) == 200
    assert await post_telegram(gateway, samples.telegram_message("hi private", chat_id=555)) == 200
    messages = await telegram.wait_for_messages(2)
    by_chat = {m["chat_id"]: m for m in messages}
    assert by_chat[-100123]["text"] == "echo: hi topic"
    assert by_chat[-100123]["message_thread_id"] == 23
    assert by_chat[555]["text"] == "echo: hi private"
    assert "message_thread_id" not in by_chat[555]


async def test_slack_retries_of_one_event_give_one_reply(gateway: GatewayProcess, slack: FakeSlack) -> None:
    body = samples.slack_message("only once", channel="C2", event_id="EvRETRY1")
    assert await post_slack(gateway, body) == 200
    assert await post_slack(gateway, body, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}) == 200
    # Order per conversation makes this deterministic: a later message in the same thread is answered
    # only after anything the retry could have caused.
    follow = samples.slack_message("after", channel="C2", thread_ts=json.loads(body)["event"]["ts"])
    assert await post_slack(gateway, follow) == 200
    messages = await slack.wait_for_messages(2)
    assert [m["text"] for m in slack.messages] == ["echo: only once", "echo: after"]
    assert len(messages) == 2


async def test_bot_messages_and_edits_get_no_reply(
    gateway: GatewayProcess, slack: FakeSlack, telegram: FakeTelegram
) -> None:
    root_ts = "1700000100.000100"
    noise = [
        samples.slack_message("from another bot", channel="C3", thread_ts=root_ts, bot_id="B999"),
        samples.slack_message("bot subtype", channel="C3", thread_ts=root_ts, subtype="bot_message"),
        samples.slack_message("own message", channel="C3", thread_ts=root_ts, user="UBOT"),
        samples.slack_message(
            "edited",
            channel="C3",
            thread_ts=root_ts,
            subtype="message_changed",
            message={"text": "edited", "ts": root_ts, "user": "U1"},
        ),
    ]
    for body in noise:
        assert await post_slack(gateway, body) == 200
    assert await post_slack(gateway, samples.slack_message("real person", channel="C3", thread_ts=root_ts)) == 200
    await slack.wait_for_messages(1)
    edit = {"update_id": 77, "edited_message": json.loads(samples.telegram_message("edited", chat_id=9))["message"]}
    assert await post_telegram(gateway, json.dumps(edit).encode()) == 200
    assert await post_telegram(gateway, samples.telegram_message("bot says", chat_id=9, is_bot=True)) == 200
    assert await post_telegram(gateway, samples.telegram_message("person says", chat_id=9)) == 200
    await telegram.wait_for_messages(1)
    assert [m["text"] for m in slack.messages] == ["echo: real person"]
    assert [m["text"] for m in telegram.messages] == ["echo: person says"]


async def test_concurrent_threads_are_answered_in_order(gateway: GatewayProcess, slack: FakeSlack) -> None:
    threads, per_thread = 20, 10

    async def thread(t: int) -> None:
        root = f"1700001{t:03d}.000000"
        for i in range(per_thread):
            body = samples.slack_message(
                f"t{t}-m{i}", channel=f"C{t % 4}", thread_ts=root, ts=f"1700002{t:03d}.{i:06d}"
            )
            assert await post_slack(gateway, body) == 200

    await asyncio.gather(*(thread(t) for t in range(threads)))
    messages = await slack.wait_for_messages(threads * per_thread, timeout=30)
    seen: dict[str, list[int]] = {}
    for m in messages:
        t, i = m["text"].removeprefix("echo: ").split("-m")
        seen.setdefault(t, []).append(int(i))
        assert m["thread_ts"] == f"1700001{int(t[1:]):03d}.000000"
    assert len(seen) == threads
    assert all(order == list(range(per_thread)) for order in seen.values()), seen


async def test_rate_limited_reply_waits_retry_after_and_posts_once(gateway: GatewayProcess, slack: FakeSlack) -> None:
    slack.rate_limit_next(1, retry_after=1, method="chat.postMessage")
    assert await post_slack(gateway, samples.slack_message("slow down", channel="C5")) == 200
    await slack.wait_until(
        lambda: any(c.status == 200 for c in slack.calls_for("chat.postMessage")),
        timeout=10,
        describe="a successful chat.postMessage",
    )
    attempts = slack.calls_for("chat.postMessage")
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0
    assert [m["text"] for m in slack.messages] == ["echo: slow down"]


async def test_webhook_source_gets_a_signed_callback(gateway: GatewayProcess, receiver: WebhookReceiver) -> None:
    body = json.dumps({"type": "message.created", "customer": {"id": "cus_42"}, "message": {"text": "ping"}}).encode()
    assert await post(f"{gateway.url}/webhooks/shop", body, webhook_headers(WEBHOOK_SECRET, body)) == 200
    [callback] = await receiver.wait_for_requests(1)
    assert callback.path == "/agent-replies"
    headers = {k.lower(): v for k, v in callback.headers.items()}
    msg_id = verify([secret_key(REPLY_SECRET)], headers, callback.body, time.time())
    payload = callback.json()
    assert payload["text"] == "echo: ping"
    assert payload["customer"] == "cus_42"
    assert payload["conversation_key"] == "webhook:shop:cus_42"
    assert msg_id == payload["id"]
