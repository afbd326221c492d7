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

import aiohttp
import pytest

from connectors.discord.platform import slash_command
from tests.e2e.conftest import echoing_model, gateway_env
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess
from tests.support.services import service_env
from tests.support.waiting import eventually

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


async def test_interactions_need_no_bot_token(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, discord: FakeDiscord
) -> None:
    env = gateway_env(slack, telegram, **service_env(services), **discord_env(discord))
    del env["DISCORD_BOT_TOKEN"]
    gw = await GatewayProcess("dev", env).start()
    try:
        command = slash_command("ask", "no bot token", application_id=APP, guild=None, channel=CHANNEL)
        assert await discord.deliver(gw.url, command) == (200, {"type": 5})
        [reply] = await discord.wait_for_interaction_replies(1, timeout=20)
    finally:
        assert await gw.terminate() == 0
    assert reply["content"] == "echo: /ask no bot token"


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
    async with echoing_model() as llm:
        env = gateway_env(slack, telegram, **service_env(services), **discord_env(discord), **llm)
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


THREAD = "1100000000000000009"


async def metric(gw: GatewayProcess, line: str) -> float:
    """The value of one /metrics sample of ``gw`` (0 when absent)."""
    async with aiohttp.ClientSession() as s, s.get(f"{gw.url}/metrics") as r:
        text = await r.text()
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.rsplit(" ", 1)[1])
    return 0.0


async def both(env: dict[str, str]) -> tuple[GatewayProcess, GatewayProcess]:
    dev = await GatewayProcess("dev", env).start()
    try:
        return dev, await GatewayProcess("discord", env).start()
    except BaseException:
        await dev.terminate()
        raise


def texts(fake: FakeDiscord) -> list[tuple[str, str]]:
    return [(m["channel"], m["content"]) for m in fake.messages]


async def test_a_gateway_message_gets_the_echo_reply_in_its_channel_and_thread_and_own_replies_start_no_turn(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, discord: FakeDiscord
) -> None:
    discord.add_channel(THREAD, guild=GUILD, parent=CHANNEL)
    dev, gw = await both(gateway_env(slack, telegram, **service_env(services), **discord_env(discord)))
    try:
        asked = await discord.message_create("hello over the gateway", channel=CHANNEL, guild=GUILD)
        await discord.wait_for_messages(1, timeout=20)
        await discord.message_create("in a thread", channel=THREAD, guild=GUILD, mention_bot=True)
        await discord.wait_for_messages(2, timeout=20)
        await eventually(
            lambda: metric(gw, 'gateway_discord_messages_total{outcome="bot"}'), until=lambda n: n >= 2, timeout=20
        )  # the fake sent our two replies back as MESSAGE_CREATE: dropped, no turn, no echo of an echo
        assert await metric(gw, 'gateway_discord_messages_total{outcome="published"}') == 2
    finally:
        assert await gw.terminate() == 0
        assert await dev.terminate() == 0
    assert texts(discord) == [(CHANNEL, "echo: hello over the gateway"), (THREAD, "echo: in a thread")]
    first = discord.messages[0]
    assert first["message_reference"] == {"message_id": asked["id"], "fail_if_not_exists": False}
    assert first["enforce_nonce"] is True
    assert len(first["nonce"]) == 25
    assert first["allowed_mentions"] == {"parse": []}
    assert all(c.headers["Authorization"] == f"Bot {BOT_TOKEN}" for c in discord.calls_for("create_message"))
    [identify] = discord.ops(2)
    assert identify["d"]["intents"] == 37377
    assert identify["d"]["token"] == BOT_TOKEN


async def test_a_dropped_connection_is_resumed_and_a_replayed_message_is_not_published_twice(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, discord: FakeDiscord
) -> None:
    dev, gw = await both(gateway_env(slack, telegram, **service_env(services), **discord_env(discord)))
    try:
        await discord.message_create("before the drop", channel=CHANNEL, guild=GUILD)
        await discord.wait_for_messages(1, timeout=20)
        await eventually(lambda: metric(gw, 'gateway_discord_messages_total{outcome="bot"}'), timeout=20)
        session = discord.session
        assert session is not None
        discord.replay_overlap = 3  # Discord may send again what the client had already seen
        await discord.drop()
        await discord.message_create("while it was away", channel=CHANNEL, guild=GUILD)
        await discord.wait_until(lambda: len(discord.ops(6)) >= 1, 20, "a RESUME")
        await discord.wait_for_messages(2, timeout=20)
        duplicates = 'gateway_discord_messages_total{outcome="duplicate"}'
        await eventually(lambda: metric(gw, duplicates), until=lambda n: n >= 1, timeout=20)
        await eventually(lambda: gw._status("/readyz"), until=lambda s: s == 200, timeout=20)  # /readyz: live again
    finally:
        assert await gw.terminate() == 0
        assert await dev.terminate() == 0
    [resume] = discord.ops(6)
    assert resume["path"] == "/resume"  # at resume_gateway_url
    assert resume["d"]["session_id"] == session.id
    assert resume["d"]["token"] == BOT_TOKEN
    assert len(discord.ops(2)) == 1  # resumed, not identified again
    assert texts(discord) == [(CHANNEL, "echo: before the drop"), (CHANNEL, "echo: while it was away")]


async def test_a_killed_process_is_followed_by_one_that_resumes_its_session_from_redis(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, discord: FakeDiscord
) -> None:
    env = gateway_env(slack, telegram, **service_env(services), **discord_env(discord))
    dev, gw = await both(env)
    second: GatewayProcess | None = None
    try:
        await discord.message_create("first process", channel=CHANNEL, guild=GUILD)
        await discord.wait_for_messages(1, timeout=20)
        session = discord.session
        assert session is not None
        await gw.kill()
        await discord.wait_until(lambda: not discord.connected, 10, "the connection gone")
        await discord.message_create("nobody was connected", channel=CHANNEL, guild=GUILD)
        second = await GatewayProcess("discord", env, name="discord-2").start()
        await discord.wait_for_messages(2, timeout=20)
    finally:
        if second is not None:
            assert await second.terminate() == 0
        assert await dev.terminate() == 0
    assert [op["d"]["session_id"] for op in discord.ops(6)] == [session.id]
    assert len(discord.ops(2)) == 1
    assert texts(discord) == [(CHANNEL, "echo: first process"), (CHANNEL, "echo: nobody was connected")]


async def test_invalid_session_identifies_anew_and_a_zombie_connection_is_resumed(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, discord: FakeDiscord
) -> None:
    discord.heartbeat_interval = 400
    dev, gw = await both(gateway_env(slack, telegram, **service_env(services), **discord_env(discord)))
    try:
        discord.ack_heartbeats = False  # the next heartbeat goes unanswered: a zombie connection
        await discord.wait_until(lambda: len(discord.ops(6)) >= 1, 20, "a RESUME after the zombie")
        discord.ack_heartbeats = True
        await discord.wait_until(lambda: discord.connected, 20, "live again")
        await discord.invalidate(resumable=False)
        await discord.wait_until(lambda: len(discord.ops(2)) >= 2, 20, "a new IDENTIFY")
        await eventually(lambda: gw._status("/readyz"), until=lambda s: s == 200, timeout=20)
        await discord.message_create("after a new session", channel=CHANNEL, guild=GUILD)
        await discord.wait_for_messages(1, timeout=20)
    finally:
        assert await gw.terminate() == 0
        assert await dev.terminate() == 0
    assert len(discord.sessions) == 1  # the invalidated one was forgotten, the new one is live
    assert texts(discord) == [(CHANNEL, "echo: after a new session")]


async def test_discords_429_is_waited_out_and_the_reply_goes_once(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, discord: FakeDiscord
) -> None:
    discord.rate_limit_next(1, retry_after=1, method="create_message")
    dev, gw = await both(gateway_env(slack, telegram, **service_env(services), **discord_env(discord)))
    try:
        await discord.message_create("busy?", channel=CHANNEL, guild=GUILD)
        await discord.wait_for_messages(1, timeout=20)
    finally:
        assert await gw.terminate() == 0
        assert await dev.terminate() == 0
    assert texts(discord) == [(CHANNEL, "echo: busy?")]
    assert [c.status for c in discord.calls_for("create_message")] == [429, 200]
