"""The Discord sender against the fake Discord: where each reply goes, what Discord refuses, its rate limits
(a 429's ``retry_after``, a spent ``X-RateLimit-Remaining``), and replies that are never doubled."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest

from connectors.discord.buckets import Buckets
from connectors.discord.platform import slash_command
from connectors.discord.sender import DiscordSender, nonce
from gateway.core.errors import RateLimited, SendError
from gateway.core.events import OutboundMessage, ReplyAddress
from gateway.core.store.memory import MemoryStore
from tests.fakes.discord_api import FakeDiscord, Interaction
from tests.unit.builders import fixture_bytes

TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.unit.bot-token"
APP = "1100000000000000001"
GUILD, CHANNEL, THREAD = "1100000000000000002", "1100000000000000003", "1100000000000000009"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN, application_id=APP) as discord:
        discord.add_channel(CHANNEL, guild=GUILD)
        discord.add_channel(THREAD, guild=GUILD, parent=CHANNEL)
        yield discord


@pytest.fixture
async def sender(fake: FakeDiscord) -> AsyncIterator[DiscordSender]:
    s = DiscordSender(TOKEN, fake.base_url, MemoryStore("u"))
    yield s
    await s.close()


def message(text: str = "hi", *, mid: str = "m:1", action: str = "reply", **to: str | None) -> OutboundMessage:
    address = ReplyAddress(platform="discord", bot=GUILD, **{"channel": CHANNEL, "message": "1447", **to})  # type: ignore[arg-type]
    return OutboundMessage(id=mid, event_id="e", conversation_key="k", action=action, to=address, text=text)  # type: ignore[arg-type]


async def test_a_channel_reply_references_the_message_and_a_thread_reply_goes_to_the_thread(
    fake: FakeDiscord, sender: DiscordSender
) -> None:
    sent = await sender.send(message("hello"))
    await sender.send(message("in thread", mid="m:2", thread=THREAD))
    assert sent["message_id"].isdigit()
    first, second = fake.messages
    assert (first["channel"], first["content"], first["message_reference"]["message_id"]) == (CHANNEL, "hello", "1447")
    assert first["nonce"] == nonce("m:1")
    assert second["channel"] == THREAD


async def test_the_same_outbound_message_sent_twice_is_one_discord_message(
    fake: FakeDiscord, sender: DiscordSender
) -> None:
    one = await sender.send(message("once"))
    two = await sender.send(message("once"))  # a retry after a lost answer: same id, same nonce
    assert one == two
    assert len(fake.messages) == 1


async def test_a_wrong_bot_token_and_an_unknown_channel_are_refused_and_not_retried(fake: FakeDiscord) -> None:
    wrong = DiscordSender("not-the-token", fake.base_url, None)
    try:
        with pytest.raises(SendError, match="HTTP 401") as refused:
            await wrong.send(message())
        assert not refused.value.retryable
    finally:
        await wrong.close()
    right = DiscordSender(TOKEN, fake.base_url, None)
    try:
        with pytest.raises(SendError, match="HTTP 404 code 10003: Unknown Channel") as unknown:
            await right.send(message(channel="999"))
        assert not unknown.value.retryable
    finally:
        await right.close()
    assert fake.messages == []


async def test_a_429_is_rate_limited_with_its_retry_after(fake: FakeDiscord, sender: DiscordSender) -> None:
    fake.rate_limit_next(1, retry_after=3, method="create_message")
    with pytest.raises(RateLimited) as limited:
        await sender.send(message())
    assert limited.value.retry_after == 3.0
    assert json.loads(fixture_bytes("discord_429_response.json"))["retry_after"] == 64.57  # the shape it reads


async def test_a_spent_bucket_waits_for_its_reset_instead_of_meeting_a_429(fake: FakeDiscord) -> None:
    fake.bucket_limit, fake.bucket_window = 2, 0.6
    sender = DiscordSender(TOKEN, fake.base_url, None)
    try:
        start = time.monotonic()
        for i in range(3):
            await sender.send(message(f"n{i}", mid=f"m:{i}"))
        waited = time.monotonic() - start
    finally:
        await sender.close()
    assert [c.status for c in fake.calls_for("create_message")] == [200, 200, 200]
    assert waited >= 0.4  # the third call waited for X-RateLimit-Reset-After
    assert len(fake.messages) == 3


def test_buckets_follow_the_headers_and_a_global_429_holds_every_route() -> None:
    now = [100.0]
    buckets = Buckets(clock=lambda: now[0])
    buckets.update(
        "channels:1", {"X-RateLimit-Bucket": "b1", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "2.5"}
    )
    assert (buckets.wait_for("channels:1"), buckets.wait_for("channels:2")) == (2.5, 0.0)
    now[0] = 103.0
    assert buckets.wait_for("channels:1") == 0.0
    wait = buckets.limited(
        "channels:2", {}, b'{"message": "You are being rate limited.", "retry_after": 1.5, "global": true}'
    )
    assert (wait, buckets.wait_for("channels:1"), buckets.wait_for("webhooks:x")) == (1.5, 1.5, 1.5)


async def test_an_interactions_first_reply_edits_the_deferral_and_the_next_are_follow_ups(
    fake: FakeDiscord, sender: DiscordSender
) -> None:
    interaction = slash_command("ask", "hi", application_id=APP, guild=GUILD, channel=CHANNEL)
    hook = f"webhooks/{APP}/{interaction['token']}"
    tokenless = DiscordSender(None, fake.base_url, None)
    try:
        with pytest.raises(SendError, match="50027"):  # not deferred (yet): Discord knows no such webhook token
            await tokenless.send(message("too early", mid="x:0", response_url=hook, message=interaction["id"]))
    finally:
        await tokenless.close()
    # Discord's side of the deferral (what FakeDiscord.deliver records when the gateway answers type 5).
    fake.interactions[interaction["token"]] = Interaction(interaction["id"], APP, CHANNEL, time.time(), deferred=True)
    first = message("first", mid="x:1", response_url=hook, message=interaction["id"])
    await sender.send(first)
    await sender.send(first)  # redelivered: edits again, posts nothing
    await sender.send(message("second", mid="x:2", response_url=hook, message=interaction["id"]))
    assert [(r["kind"], r["content"]) for r in fake.interaction_replies] == [
        ("original", "first"),
        ("followup", "second"),
    ]
    assert [c.method for c in fake.calls if c.status == 200] == ["edit_original", "edit_original", "followup"]
    assert await sender.send(message(action="typing", response_url=hook, message=interaction["id"])) == {
        "skipped": "no typing for a Discord interaction"
    }


async def test_typing_reactions_and_long_texts(fake: FakeDiscord, sender: DiscordSender) -> None:
    await sender.send(message(action="typing"))
    react = message(action="react").model_copy(update={"emoji": "👍"})
    await sender.send(react)
    await sender.send(message("x" * 2500, mid="m:long"))
    assert [c.method for c in fake.calls] == ["typing", "react", "create_message"]
    assert fake.reactions[0]["emoji"] == "👍"
    assert len(fake.messages[0]["content"]) == 2000
    assert fake.messages[0]["content"].endswith("…")


async def test_without_a_bot_token_channel_replies_are_refused_before_any_call(fake: FakeDiscord) -> None:
    sender = DiscordSender(None, fake.base_url, None)
    try:
        with pytest.raises(SendError, match="DISCORD_BOT_TOKEN is not set"):
            await sender.send(message())
    finally:
        await sender.close()
    assert fake.calls == []


async def test_a_connection_refused_is_retryable(sender: DiscordSender) -> None:
    closed = DiscordSender(TOKEN, "http://127.0.0.1:9/api/v10", None)
    try:
        with pytest.raises(SendError) as failed:
            await closed.send(message())
        assert failed.value.retryable
    finally:
        await closed.close()


async def test_a_reply_after_the_interaction_token_expired_goes_to_the_channel(
    fake: FakeDiscord, sender: DiscordSender
) -> None:
    interaction = slash_command("ask", "hi", application_id=APP, guild=GUILD, channel=CHANNEL)
    hook = f"webhooks/{APP}/{interaction['token']}"
    expired = Interaction(interaction["id"], APP, CHANNEL, time.time() - 16 * 60, deferred=True)
    fake.interactions[interaction["token"]] = expired
    answer = await sender.send(message("late answer", mid="x:late", response_url=hook, message=interaction["id"]))
    assert answer["fallback"].startswith("channel message")
    [posted] = fake.messages
    assert (posted["channel"], posted["content"], "message_reference" in posted) == (CHANNEL, "late answer", False)
    assert fake.interaction_replies == []


async def test_the_fakes_callback_acknowledges_an_interaction_once(fake: FakeDiscord) -> None:
    import aiohttp

    interaction = slash_command("ask", "hi", application_id=APP, guild=GUILD, channel=CHANNEL)
    fake.interactions[interaction["token"]] = Interaction(interaction["id"], APP, CHANNEL, time.time())
    url = f"{fake.base_url}/interactions/{interaction['id']}/{interaction['token']}/callback"
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json={"type": 5}) as first:
            assert first.status == 204
        async with s.post(url, json={"type": 5}) as second:
            assert (second.status, (await second.json())["code"]) == (400, 40060)
        async with s.post(url.replace(interaction["id"], "1"), json={"type": 5}) as unknown:
            assert (unknown.status, (await unknown.json())["code"]) == (404, 10062)
    assert fake.interactions[interaction["token"]].deferred
