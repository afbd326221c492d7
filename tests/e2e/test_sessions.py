"""Named sessions and their state end to end: `gateway dev` on RabbitMQ and Redis, the app API (messages in,
server-sent events out, the public state), fake Telegram for a route's pinned session, `gateway history
--session` as a process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.client import GatewayClient, slack_thread
from gateway.core import samples
from gateway.core.settings import Settings
from tests.e2e.conftest import TELEGRAM_SECRET, gateway_env
from tests.e2e.test_operators import gateway_cli, with_root
from tests.e2e.test_web import APP_KEY, Sse, send
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
CONFIG = """
[web.apps.acme]
key_env = "ACME_KEY"

[agents.sess]
path = "tests.e2e.session_agent:agent"

[[routes]]
platform = "web"
agent = "sess"

[[routes]]
platform = "telegram"
agent = "sess"
session = "ops"
"""
AUTH = {"Authorization": f"Bearer {APP_KEY}"}


async def start(services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Path) -> Any:
    env = with_root(gateway_env(slack, telegram, **service_env(services, config=CONFIG, tmp_path=tmp_path)))
    env["ACME_KEY"] = APP_KEY
    return await GatewayProcess("dev", env).start(), env


async def get_state(url: str, key: str, query: str = "", headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{url}/v1/conversations/{key}/state{query}", headers=AUTH if headers is None else headers) as r,
    ):
        return r.status, await r.json()


async def history(env: dict[str, str], key: str, session: str) -> list[str]:
    code, out, err = await gateway_cli(env, "history", key, "--agent", "sess", "--session", session, "--json")
    assert code == 0, err
    return [t["text"] for t in json.loads(out)["agents"]["sess"]["turns"]]


async def test_two_sessions_keep_their_own_history_and_state_and_the_client_reads_only_the_public_part(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Path
) -> None:
    gw, env = await start(services, slack, telegram, tmp_path)
    key = "web:acme:order-1042"
    replies = ["default #1 (0 earlier)", "switching to ops", "ops #1 (0 earlier)", "ops #2 (2 earlier)"]
    try:
        async with Sse(f"{gw.url}/v1/conversations/{key}/events", AUTH) as stream:
            for i, text in enumerate(["one", "/ops", "two", "three"]):
                status, _ = await send(gw.url, key, APP_KEY, text, f"m{i}")
                assert status == 202
                await eventually(stream.texts, until=lambda t, r=replies[i]: r in t, timeout=20, what=replies[i])
        default_state = await get_state(gw.url, key)
        # saved with the history, right after the replies were queued: a reply can be seen a moment before
        ops_state = await eventually(
            lambda: get_state(gw.url, key, "?session=ops"),
            until=lambda r: r[1]["state"].get("count") == 2,
            timeout=10,
            what="the ops state after the last turn",
        )
        unknown = await get_state(gw.url, key, "?session=nobody")
        no_key = await get_state(gw.url, key, headers={})
        other_app = await get_state(gw.url, "web:other:x")
        bad_name = await get_state(gw.url, key, "?session=Not%20A%20Name")
        default_history = await history(env, key, "default")
        ops_history = await history(env, key, "ops")
    finally:
        assert await gw.terminate() == 0
    assert default_state == (
        200,
        {"ok": True, "key": key, "session": "default", "state": {"count": 1, "session": "default"}},
    )
    assert ops_state[1]["state"] == {"count": 2, "session": "ops"}
    assert "private-" not in json.dumps([default_state, ops_state])  # the private part never leaves Redis
    assert unknown == (200, {"ok": True, "key": key, "session": "nobody", "state": {}})
    assert no_key[0] == 401
    assert other_app[0] == 401
    assert bad_name[0] == 400
    assert default_history == ["one", replies[0], "/ops", replies[1]]
    assert ops_history == ["two", replies[2], "three", replies[3]]


async def test_a_route_pins_its_conversations_to_a_named_session(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Path
) -> None:
    gw, env = await start(services, slack, telegram, tmp_path)
    headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"}
    try:
        for update, text in ((8101, "first"), (8102, "/default"), (8103, "second")):
            body = samples.telegram_message(text, chat_id=77, update_id=update)
            assert await post(f"{gw.url}/telegram/default", body, headers) == 200
        messages = await telegram.wait_for_messages(3, timeout=20)
        ops = await history(env, "telegram:default:77", "ops")
        code, _, _ = await gateway_cli(env, "history", "telegram:default:77", "--agent", "sess")
    finally:
        assert await gw.terminate() == 0
    # the route's session wins over the agent's switch
    assert [m["text"] for m in messages] == ["ops #1 (0 earlier)", "switching to default", "ops #2 (4 earlier)"]
    assert ops[0::2] == ["first", "/default", "second"]
    assert code == 4  # nothing in the default session


async def test_application_code_dispatches_into_a_named_session(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Path
) -> None:
    amqp, redis, namespace = services
    gw, env = await start(services, slack, telegram, tmp_path)
    settings = Settings(
        AMQP_URL=amqp, REDIS_URL=redis, GATEWAY_NAMESPACE=namespace, GATEWAY_CONFIG=env["GATEWAY_CONFIG"]
    )
    try:
        async with GatewayClient.connect(settings) as client:
            with pytest.raises(ValueError, match="session name"):
                await client.dispatch("x", to=slack_thread("CAPI", "1700.2"), agent="sess", session="Ops!")
            receipt = await client.dispatch("from code", to=slack_thread("CAPI", "1700.2"), agent="sess", session="ops")
        [message] = await slack.wait_for_messages(1, timeout=20)
        ops = await history(env, receipt.conversation_key, "ops")
    finally:
        assert await gw.terminate() == 0
    assert message["text"] == "ops #1 (0 earlier)"
    assert ops == ["from code", "ops #1 (0 earlier)"]
