"""Discord end to end, on the real RabbitMQ and Redis with the fake Discord (REST + Gateway WebSocket):

- interactions through `gateway dev`: a slash command deferred once queued, the echo reply as the edit of the
  deferred response, a retried interaction answered once, a forged signature 401, 404 without the public key,
  the llm agent answering;
- `gateway discord` beside `gateway dev`: a MESSAGE_CREATE in, the echo reply in the channel; a dropped
  connection resumed (with a replay of what was already seen) and nothing published twice; a killed process
  resuming from the session it left in Redis; INVALID_SESSION answered with a fresh IDENTIFY.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.discord.platform import slash_command
from tests.e2e.conftest import gateway_env
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.openai_api import FakeOpenAI, text_reply
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess
from tests.support.services import service_env

pytestmark = pytest.mark.e2e
BOT_TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GhXk2a.e2e-discord-bot-token-value"
APP = "1100000000000000001"
GUILD = "1100000000000000002"
CHANNEL = "1100000000000000003"


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=BOT_TOKEN, application_id=APP) as fake:
        fake.add_channel(CHANNEL, guild=GUILD)
        yield fake


def discord_env(fake: FakeDiscord, *, public_key: bool = True) -> dict[str, str]:
    env = {
        "DISCORD_BOT_TOKEN": BOT_TOKEN,
        "DISCORD_APPLICATION_ID": APP,
        "DISCORD_API_URL": fake.base_url,
        "GATEWAY_DISCORD_CHANNEL_RATE": "10000",
        "GATEWAY_DISCORD_CHANNEL_BURST": "10000",
        "GATEWAY_DISCORD_BOT_RATE": "10000",
    }
    if public_key:
        env["DISCORD_PUBLIC_KEY"] = fake.public_key
    return env


async def test_a_slash_command_is_deferred_then_answered_once_and_forgeries_are_refused(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, discord: FakeDiscord
) -> None:
    gw = await GatewayProcess(
        "dev", gateway_env(slack, telegram, **service_env(services), **discord_env(discord))
    ).start()
    try:
        assert await discord.deliver(
            gw.url, {"type": 1, "id": "1", "application_id": APP, "token": "p", "version": 1}
        ) == (
            200,
            {"type": 1},
        )
        command = slash_command("ask", "hello from discord", application_id=APP, guild=GUILD, channel=CHANNEL)
        assert await discord.deliver(gw.url, command) == (200, {"type": 5})
        assert await discord.deliver(gw.url, command) == (200, {"type": 5})  # delivered twice: answered once
        assert (await discord.deliver(gw.url, command, forged=True))[0] == 401
        second = slash_command("ask", "and again", application_id=APP, guild=GUILD, channel=CHANNEL)
        assert await discord.deliver(gw.url, second) == (200, {"type": 5})
        await discord.wait_for_interaction_replies(2, timeout=20)
        await discord.wait_until(lambda: len(discord.calls_for("edit_original")) >= 2, 20, "two edits")
    finally:
        assert await gw.terminate() == 0
    assert sorted((r["kind"], r["content"]) for r in discord.interaction_replies) == [
        ("original", "echo: /ask and again"),
        ("original", "echo: /ask hello from discord"),
    ]
    assert discord.calls_for("followup") == []  # one reply per interaction: the edit of "thinking..."
    assert all("Authorization" not in c.headers for c in discord.calls_for("edit_original"))


async def test_without_its_public_key_the_interactions_endpoint_is_404(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, discord: FakeDiscord
) -> None:
    env = gateway_env(slack, telegram, **service_env(services), **discord_env(discord, public_key=False))
    gw = await GatewayProcess("dev", env).start()
    try:
        status, _ = await discord.deliver(gw.url, slash_command("ask", "hi", application_id=APP))
    finally:
        assert await gw.terminate() == 0
    assert status == 404


async def test_the_llm_agent_answers_a_slash_command(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, discord: FakeDiscord
) -> None:
    async with FakeOpenAI(api_key="sk-e2e") as model:
        model.script(lambda req: text_reply(f"model says: {req['messages'][-1]['content']}"))
        env = gateway_env(
            slack,
            telegram,
            **service_env(services),
            **discord_env(discord),
            OPENAI_BASE_URL=f"{model.base_url}/v1",
            OPENAI_API_KEY="sk-e2e",
            GATEWAY_LLM_MODEL="gpt-4o-mini",
            GATEWAY_DEFAULT_AGENT="llm",
        )
        gw = await GatewayProcess("dev", env).start()
        try:
            command = slash_command("ask", "what are your hours?", application_id=APP, guild=GUILD, channel=CHANNEL)
            assert await discord.deliver(gw.url, command) == (200, {"type": 5})
            [reply] = await discord.wait_for_interaction_replies(1, timeout=20)
        finally:
            assert await gw.terminate() == 0
    assert reply == {
        "interaction": command["id"],
        "kind": "original",
        "content": "model says: /ask what are your hours?",
    }
