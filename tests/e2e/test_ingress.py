"""`gateway serve` against the real RabbitMQ and Redis: what is answered 200 is in RabbitMQ; what is not is not."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from gateway.core import samples
from gateway.core.bus.amqp import AmqpBus
from gateway.core.bus.base import Delivery
from gateway.core.bus.topology import Topology
from gateway.core.events import Event
from tests.e2e.conftest import SLACK_SECRET, TELEGRAM_SECRET, WEBHOOK_SECRET, gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.support.signing import slack_headers, webhook_headers
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


async def read_back(amqp: str, namespace: str) -> list[Event]:
    """Everything in the dispatch queues, consumed the way consumers do (and acked)."""
    bus = AmqpBus(amqp, Topology(namespace, 16))
    await bus.start()
    got: list[Event] = []

    async def take(d: Delivery) -> None:
        got.append(Event.model_validate_json(d.body))
        await d.ack()

    subs = [await bus.subscribe(bus.topology.dispatch_queue(p), take, prefetch=100) for p in range(16)]
    depth = sum([(await bus.queue_info(bus.topology.dispatch_queue(p))).messages for p in range(16)])
    await eventually(lambda: len(got), until=lambda n: n >= depth, timeout=10, what="the published events")
    for sub in subs:
        await sub.close()
    await bus.close()
    return got


async def test_signed_requests_land_in_rabbitmq_and_bad_ones_do_not(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    amqp, _, namespace = services
    shop = '[webhooks.sources.shop]\nsecret_env = "SHOP_SECRET"\ncustomer_pointer = "/customer_id"\n'
    env = gateway_env(
        slack, telegram, **service_env(services, config=shop, tmp_path=tmp_path), SHOP_SECRET=WEBHOOK_SECRET
    )
    serve = await GatewayProcess("serve", env).start()
    url = serve.url
    try:
        good = samples.slack_message("hello", channel="CING", event_id="EvGOOD")
        assert await post(f"{url}/slack/events", good, slack_headers(SLACK_SECRET, good)) == 200
        assert await post(f"{url}/slack/events", good, slack_headers(SLACK_SECRET, good)) == 200  # retry
        tg = samples.telegram_message("hi", chat_id=77, update_id=5001)
        tg_headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
        assert await post(f"{url}/telegram/default", tg, tg_headers) == 200
        wh = samples.webhook_payload("order?", customer="cus_9")
        assert await post(f"{url}/webhooks/shop", wh, webhook_headers(WEBHOOK_SECRET, wh)) == 200

        bad = [
            (f"{url}/slack/events", good, slack_headers("wrong-secret", good), 401),
            (f"{url}/slack/events", good, slack_headers(SLACK_SECRET, good, ts=int(time.time()) - 600), 401),
            (f"{url}/slack/events", b"x" * (1024 * 1024 + 1), slack_headers(SLACK_SECRET, b"x"), 413),
            (f"{url}/slack/events", b"{not json", slack_headers(SLACK_SECRET, b"{not json"), 400),
            (f"{url}/telegram/default", tg, {"X-Telegram-Bot-Api-Secret-Token": "nope"}, 401),
            (f"{url}/telegram/other-bot", tg, tg_headers, 404),
            (f"{url}/webhooks/unknown", wh, webhook_headers(WEBHOOK_SECRET, wh), 404),
            (f"{url}/webhooks/shop", b"[1]", webhook_headers(WEBHOOK_SECRET, b"[1]"), 400),
        ]
        statuses = await asyncio.gather(*(post(u, b, h) for u, b, h, _ in bad))
        assert statuses == [expected for *_, expected in bad]
        assert await serve._status("/healthz") == 200
        assert await serve._status("/readyz") == 200
        metrics = await _metrics(url)
    finally:
        assert await serve.terminate() == 0
    events = await read_back(amqp, namespace)
    assert sorted(e.platform for e in events) == ["slack", "telegram", "webhook"]
    by_platform = {e.platform: e for e in events}
    assert by_platform["slack"].delivery_id == "EvGOOD"
    assert by_platform["telegram"].conversation_key == "telegram:default:77"
    assert by_platform["webhook"].conversation_key == "webhook:shop:cus_9"
    assert 'gateway_dedupe_hits_total{connector="slack"} 1.0' in metrics
    assert 'gateway_requests_total{connector="slack",outcome="BadSignature"} 1.0' in metrics
    assert "gateway_publish_seconds_bucket" in metrics


async def _metrics(url: str) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
        return await r.text()


async def test_broker_down_means_503_never_200(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram
) -> None:
    _, redis, namespace = services
    env = gateway_env(slack, telegram, amqp="amqp://guest:guest@127.0.0.1:1/", redis=redis, namespace=namespace)
    serve = await GatewayProcess("serve", env).start(ready=False)
    try:
        assert await serve._status("/readyz") == 503
        body = samples.slack_message("nobody will queue this", channel="CDOWN")
        statuses = [await post(f"{serve.url}/slack/events", body, slack_headers(SLACK_SECRET, body)) for _ in range(3)]
        assert statuses == [503, 503, 503]
        logged = [json.loads(line).get("event") for line in serve.logs().splitlines() if line.startswith("{")]
        assert "event_not_queued" in logged
        assert "broker_unreachable" in logged
    finally:
        assert await serve.terminate() == 0


async def test_gateway_send_webhook_follows_the_sources_pointers_in_the_example_config(
    services: tuple[str, str, str],
) -> None:
    """deploy/gateway.example.toml's `shop` keeps the customer at /customer/id and the text at /message/text."""
    import subprocess
    import sys
    from pathlib import Path

    amqp, redis, namespace = services
    root = Path(__file__).resolve().parents[2]
    env = {
        "AMQP_URL": amqp,
        "REDIS_URL": redis,
        "GATEWAY_NAMESPACE": namespace,
        "GATEWAY_CONFIG": str(root / "deploy" / "gateway.example.toml"),
        "SUPPORT_BOT_TOKEN": "123456:support-bot-token-for-e2e",
        "SUPPORT_BOT_SECRET": "support-bot-secret-token-e2e",
        "SHOP_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SHOP_REPLY_SECRET": WEBHOOK_SECRET,
    }
    serve = await GatewayProcess("serve", env).start()
    try:
        sent = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "send",
                "webhook",
                "shop",
                "where is my order?",
                "--customer",
                "cus_42",
            ],
            env={**serve.env, "GATEWAY_LOG_FORMAT": "console"},
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        assert await serve.terminate() == 0
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "-> 200" in sent.stdout
    [event] = await read_back(amqp, namespace)
    assert event.conversation_key == "webhook:shop:cus_42"
    assert event.text == "where is my order?"
    assert event.raw == {
        "type": "message.created",
        "customer": {"id": "cus_42"},
        "message": {"text": "where is my order?"},
    }
