"""Teams end to end: `gateway dev` on the real RabbitMQ and Redis, the fake Bot Framework (key set, token
endpoint, conversations API). An activity in with the Bot Connector's JWT, the echo reply out into its reply
chain with a client-credentials token; a retried delivery answered once; forged tokens refused; 404 without the
app password; the llm agent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.teams.platform import message_activity
from tests.e2e.conftest import echoing_model, gateway_env
from tests.e2e.test_operators import gateway_cli
from tests.fakes.botframework import FakeBotFramework
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env

pytestmark = pytest.mark.e2e
APP_ID = "2b1f3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
PASSWORD = "e2e~Teams.client-secret-of-40-characters"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CHAIN = "19:6decf54d86d945e4b3924b63a9161a78@thread.tacv2;messageid=1611060744833"


@pytest.fixture
async def bf() -> AsyncIterator[FakeBotFramework]:
    async with FakeBotFramework(app_id=APP_ID, password=PASSWORD) as fake:
        yield fake


def teams_env(bf: FakeBotFramework, *, password: bool = True) -> dict[str, str]:
    env = {
        "TEAMS_APP_ID": APP_ID,
        "TEAMS_OPENID_METADATA_URL": bf.metadata_url,
        "TEAMS_TOKEN_URL": bf.token_url,
        "GATEWAY_TEAMS_CONVERSATION_RATE": "10000",
        "GATEWAY_TEAMS_CONVERSATION_BURST": "10000",
    }
    if password:
        env["TEAMS_APP_PASSWORD"] = PASSWORD
    return env


def activity(bf: FakeBotFramework, text: str, **fields: Any) -> bytes:
    return json.dumps(
        message_activity(text, service_url=bf.base_url, conversation=CHAIN, tenant=TENANT, **fields)
    ).encode()


async def post_teams(gw: GatewayProcess, body: bytes, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return await post(f"{gw.url}/teams/messages", body, headers)


async def test_an_activity_gets_the_echo_reply_in_its_chain_once_and_forged_tokens_are_refused(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, bf: FakeBotFramework
) -> None:
    env = gateway_env(slack, telegram, **service_env(services), **teams_env(bf))
    gw = await GatewayProcess("dev", env).start()
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    try:
        first = activity(bf, "hi from teams", activity_id="1733511065990")
        assert await post_teams(gw, first, bf.mint(bf.base_url)) == 200
        assert await post_teams(gw, first, bf.mint(bf.base_url)) == 200  # the Bot Connector retried
        assert await post_teams(gw, first, bf.mint(bf.base_url, key=stranger)) == 401  # not the Bot Framework's key
        assert await post_teams(gw, first, bf.mint(bf.base_url, audience="another-bot")) == 401
        assert await post_teams(gw, first, bf.mint("https://attacker.example/")) == 401  # serviceUrl not vouched for
        assert await post_teams(gw, first, bf.mint(bf.base_url, lifetime=-600)) == 401  # expired
        second = activity(bf, "again", activity_id="1733511070001")
        assert await post_teams(gw, second, bf.mint(bf.base_url)) == 200
        sent = await bf.wait_for_messages(2, timeout=20)
    finally:
        assert await gw.terminate() == 0
    assert [(m["conversation_id"], m["reply_to"], m["text"]) for m in sent] == [
        (CHAIN, "1733511065990", "echo: hi from teams"),
        (CHAIN, "1733511070001", "echo: again"),
    ]
    assert len(bf.messages) == 2  # the retried delivery was answered once
    assert len(bf.calls_for("token")) == 1  # one client-credentials token for both replies
    assert len(bf.calls_for("jwks")) == 1  # the key set fetched once, then cached


async def test_gateway_send_teams_signs_with_a_local_key_the_gateway_serves(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, bf: FakeBotFramework, tmp_path: Path
) -> None:
    env = gateway_env(slack, telegram, **service_env(services), **teams_env(bf))
    key = tmp_path / "key.pem"
    key.write_bytes(bf.private_pem())
    gw = await GatewayProcess("dev", env).start()
    try:
        args = ("send", "teams", "from gateway send", "--key", str(key), "--kid", bf.kid, "--service-url", bf.base_url)
        code, out, _ = await gateway_cli(env, *args, "--url", gw.url)
        assert code == 0, out
        [sent] = await bf.wait_for_messages(1, timeout=20)
    finally:
        assert await gw.terminate() == 0
    assert sent["text"] == "echo: from gateway send"


async def test_without_its_password_teams_is_404(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, bf: FakeBotFramework
) -> None:
    env = gateway_env(slack, telegram, **service_env(services), **teams_env(bf, password=False))
    gw = await GatewayProcess("dev", env).start()
    try:
        assert await post_teams(gw, activity(bf, "hi"), bf.mint(bf.base_url)) == 404
    finally:
        assert await gw.terminate() == 0
    assert bf.calls == []


async def test_the_llm_agent_answers_on_teams(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, bf: FakeBotFramework
) -> None:
    async with echoing_model() as llm:
        env = gateway_env(slack, telegram, **service_env(services), **teams_env(bf), **llm)
        gw = await GatewayProcess("dev", env).start()
        try:
            assert await post_teams(gw, activity(bf, "summarise the thread"), bf.mint(bf.base_url)) == 200
            [sent] = await bf.wait_for_messages(1, timeout=20)
        finally:
            assert await gw.terminate() == 0
    assert sent["text"] == "model says: summarise the thread"
    assert sent["conversation_id"] == CHAIN


async def test_a_429_from_the_bot_connector_is_waited_out_and_the_reply_goes_once(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, bf: FakeBotFramework
) -> None:
    bf.rate_limit_next(1, retry_after=1, method="reply")
    gw = await GatewayProcess("dev", gateway_env(slack, telegram, **service_env(services), **teams_env(bf))).start()
    try:
        assert await post_teams(gw, activity(bf, "busy?"), bf.mint(bf.base_url)) == 200
        [sent] = await bf.wait_for_messages(1, timeout=20)
    finally:
        assert await gw.terminate() == 0
    assert sent["text"] == "echo: busy?"
    assert [c.status for c in bf.calls_for("reply")] == [429, 201]
