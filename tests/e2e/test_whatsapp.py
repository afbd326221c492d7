"""WhatsApp end to end: `gateway dev` on the real RabbitMQ and Redis, the fake Graph API. A message in, the echo
reply out through the Graph API; Meta's retried delivery answered once; a forged signature refused; the connector
404 without its secret; a reply outside the 24-hour window dead-lettered with the template reason; the llm agent."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from connectors.whatsapp.platform import text_notification
from connectors.whatsapp.verify import sign
from gateway.core.bus.amqp import AmqpBus
from gateway.core.bus.topology import Topology
from tests.e2e.conftest import echoing_model, gateway_env
from tests.e2e.test_operators import gateway_cli
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.whatsapp_api import FakeWhatsApp
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
APP_SECRET = "6a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d"
VERIFY_TOKEN = "e2e-whatsapp-verify-token"
ACCESS_TOKEN = "EAAG-e2e-access-token"
NUMBER = "106540352242922"
USER = "16505551234"


@pytest.fixture
async def graph() -> AsyncIterator[FakeWhatsApp]:
    async with FakeWhatsApp(token=ACCESS_TOKEN) as fake:
        yield fake


def whatsapp_env(graph: FakeWhatsApp, *, secret: bool = True) -> dict[str, str]:
    env = {
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
        "WHATSAPP_API_URL": graph.base_url,
        "GATEWAY_WHATSAPP_USER_RATE": "10000",
        "GATEWAY_WHATSAPP_USER_BURST": "10000",
    }
    if secret:
        env["WHATSAPP_APP_SECRET"] = APP_SECRET
    return env


def notification(text: str, *, at: float | None = None) -> bytes:
    return json.dumps(text_notification(text, user=USER, number=NUMBER, at=at)).encode()


async def post_whatsapp(gw: GatewayProcess, body: bytes, secret: str = APP_SECRET) -> int:
    headers = {"X-Hub-Signature-256": sign(secret, body), "Content-Type": "application/json"}
    return await post(f"{gw.url}/whatsapp", body, headers)


async def handshake(gw: GatewayProcess, token: str) -> tuple[int, str]:
    query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"}
    async with aiohttp.ClientSession() as s, s.get(f"{gw.url}/whatsapp", params=query) as r:
        return r.status, await r.text()


async def test_a_message_gets_the_echo_reply_once_and_forgeries_are_refused(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, graph: FakeWhatsApp
) -> None:
    graph.customer_wrote(NUMBER, USER)
    env = gateway_env(slack, telegram, **service_env(services), **whatsapp_env(graph))
    gw = await GatewayProcess("dev", env).start()
    try:
        assert await handshake(gw, VERIFY_TOKEN) == (200, "1158201444")
        assert (await handshake(gw, "not-the-token"))[0] == 403
        first = notification("hi from whatsapp")
        assert await post_whatsapp(gw, first) == 200
        assert await post_whatsapp(gw, first) == 200  # Meta retried the same wamid
        assert await post_whatsapp(gw, first, "a-forged-secret-of-thirty-two-chars") == 401
        status = text_notification("x", user=USER, number=NUMBER)  # a status notification: no turn, no reply
        value = status["entry"][0]["changes"][0]["value"]
        value["statuses"] = [{"id": "wamid.OUT1", "status": "delivered", "timestamp": "1", "recipient_id": USER}]
        del value["messages"]
        assert await post_whatsapp(gw, json.dumps(status).encode()) == 200
        assert await post_whatsapp(gw, notification("again")) == 200
        await graph.wait_for_messages(2, timeout=20)
        code, out, _ = await gateway_cli(env, "send", "whatsapp", "from gateway send", "--url", gw.url)
        assert code == 0, out
        sent = await graph.wait_for_messages(3, timeout=20)
    finally:
        assert await gw.terminate() == 0
    assert [(m["phone_number_id"], m["to"], m["text"]["body"]) for m in sent] == [
        (NUMBER, USER, "echo: hi from whatsapp"),
        (NUMBER, USER, "echo: again"),
        (NUMBER, USER, "echo: from gateway send"),
    ]
    assert len(graph.messages) == 3  # the retried delivery was answered once
    assert all(c.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}" for c in graph.calls_for("text"))


async def test_without_its_secret_whatsapp_is_404(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, graph: FakeWhatsApp
) -> None:
    env = gateway_env(slack, telegram, **service_env(services), **whatsapp_env(graph, secret=False))
    gw = await GatewayProcess("dev", env).start()
    try:
        assert (await handshake(gw, VERIFY_TOKEN))[0] == 404
        assert await post_whatsapp(gw, notification("hi")) == 404
    finally:
        assert await gw.terminate() == 0


async def dead_letter(amqp: str, namespace: str) -> Any:
    bus = AmqpBus(amqp, Topology(namespace, 16))
    await bus.start()
    try:
        dead = await eventually(lambda: bus.get(bus.topology.dead_queue), timeout=30, what="a dead letter")
        await dead.ack()
        return dead
    finally:
        await bus.close()


async def test_outside_the_24_hour_window_the_reply_is_a_dead_letter_saying_a_template_is_needed(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, graph: FakeWhatsApp
) -> None:
    amqp, _, namespace = services
    gw = await GatewayProcess(
        "dev", gateway_env(slack, telegram, **service_env(services), **whatsapp_env(graph))
    ).start()
    try:
        # Delivered only now (Meta retries for days): the user wrote 25 hours ago.
        assert await post_whatsapp(gw, notification("are you open?", at=time.time() - 25 * 3600)) == 200
        dead = await dead_letter(amqp, namespace)
    finally:
        assert await gw.terminate() == 0
    assert dead.headers["x-stage"] == "outbound"
    assert "template message is needed" in dead.headers["x-error"]
    assert json.loads(dead.body)["to"]["channel"] == USER
    assert graph.calls == []  # refused before any call to Meta


async def test_the_llm_agent_answers_on_whatsapp(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, graph: FakeWhatsApp
) -> None:
    graph.customer_wrote(NUMBER, USER)
    async with echoing_model() as llm:
        env = gateway_env(slack, telegram, **service_env(services), **whatsapp_env(graph), **llm)
        gw = await GatewayProcess("dev", env).start()
        try:
            assert await post_whatsapp(gw, notification("what are your hours?")) == 200
            [sent] = await graph.wait_for_messages(1, timeout=20)
        finally:
            assert await gw.terminate() == 0
    assert sent["text"]["body"] == "model says: what are your hours?"


async def test_metas_throughput_error_is_waited_out_and_the_reply_goes_once(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, graph: FakeWhatsApp
) -> None:
    graph.customer_wrote(NUMBER, USER)
    graph.rate_limit_next(1)  # HTTP 400, error 130429 "Rate limit hit"
    gw = await GatewayProcess(
        "dev", gateway_env(slack, telegram, **service_env(services), **whatsapp_env(graph))
    ).start()
    try:
        assert await post_whatsapp(gw, notification("busy?")) == 200
        [sent] = await graph.wait_for_messages(1, timeout=20)
    finally:
        assert await gw.terminate() == 0
    assert sent["text"]["body"] == "echo: busy?"
    assert [c.status for c in graph.calls_for("text")] == [400, 200]
