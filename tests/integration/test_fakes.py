"""The fake platform servers speak the real wire format: drive them with the REAL clients.

No RabbitMQ/Redis needed. Every test waits on conditions (no fixed sleeps).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
import telegram
from openai import AsyncOpenAI
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from telegram.error import BadRequest, InvalidToken, RetryAfter

from tests.fakes import (
    FakeOpenAI,
    FakeSlack,
    FakeTelegram,
    WebhookReceiver,
    run_fake,
    text_reply,
    tool_call_reply,
)

pytestmark = pytest.mark.timeout(10)

SLACK_TOKEN = "xoxb-test"
TG_TOKEN = "123:ABC"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=SLACK_TOKEN) as fake:
        yield fake


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TG_TOKEN) as fake:
        yield fake


@pytest.fixture
async def oai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key="sk-test") as fake:
        yield fake


@pytest.fixture
async def oai_client(oai: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(api_key="sk-test", base_url=f"{oai.base_url}/v1", max_retries=0) as client:
        yield client


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(TG_TOKEN, base_url=f"{tg.base_url}/bot") as b:
        yield b


def _seconds(value: int | float | dt.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


# ---------------------------------------------------------------------------------------- Slack
async def test_slack_post_message_in_thread_round_trip(slack: FakeSlack) -> None:
    client = AsyncWebClient(token=SLACK_TOKEN, base_url=slack.base_url)
    assert slack.base_url.endswith("/api/")

    auth = await client.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == ("UBOT", "BBOT", "T111")

    first = await client.chat_postMessage(channel="C123", text="hello", thread_ts="1699999999.000001")
    second = await client.chat_postMessage(channel="C123", text="again")

    assert first["ok"] is True
    assert first["channel"] == "C123"
    assert first["message"]["thread_ts"] == "1699999999.000001"
    assert first["message"]["text"] == "hello"
    assert first["message"]["bot_id"] == "BBOT"
    assert float(second["ts"]) > float(first["ts"])
    assert "thread_ts" not in second["message"]

    assert slack.messages == [
        {"channel": "C123", "text": "hello", "thread_ts": "1699999999.000001"},
        {"channel": "C123", "text": "again"},
    ]
    calls = await slack.wait_for_calls(2, method="chat.postMessage")
    # Wire format: chat.postMessage is a JSON body, auth.test sends no body; token in the header.
    assert calls[0].headers["Content-Type"].startswith("application/json")
    assert calls[0].headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    [auth_call] = slack.calls_for("auth.test")
    assert auth_call.headers["Content-Length"] == "0"

    # reactions.add sends its arguments in the query string (empty form body); the fake merges them.
    await client.reactions_add(channel="C123", timestamp=first["ts"], name="eyes")
    assert slack.reactions == [{"channel": "C123", "timestamp": first["ts"], "name": "eyes"}]
    [reaction_call] = slack.calls_for("reactions.add")
    assert reaction_call.headers["Content-Length"] == "0"
    with pytest.raises(SlackApiError) as dup:
        await client.reactions_add(channel="C123", timestamp=first["ts"], name="eyes")
    assert dup.value.response["error"] == "already_reacted"

    updated = await client.chat_update(channel="C123", ts=first["ts"], text="edited")
    assert updated["message"]["text"] == "edited"
    await client.assistant_threads_setStatus(channel_id="C123", thread_ts=first["ts"], status="thinking")
    eph = await client.chat_postEphemeral(channel="C123", user="U1", text="psst")
    assert eph["message_ts"]

    with pytest.raises(SlackApiError) as missing, pytest.warns(UserWarning, match="`text` argument"):
        await client.chat_postMessage(channel="C123", text="")
    assert missing.value.response["error"] == "no_text"
    with pytest.raises(SlackApiError) as unknown:
        await client.api_call("nope.nothing")
    assert unknown.value.response["error"] == "unknown_method"
    assert len(slack.messages) == 2  # rejected attempts are not "messages"


async def test_slack_rate_limit_surfaces_as_429_with_retry_after(slack: FakeSlack) -> None:
    client = AsyncWebClient(token=SLACK_TOKEN, base_url=slack.base_url)
    slack.rate_limit_next(retry_after=1, method="chat.postMessage")

    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="hi")

    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "1"
    assert err.value.response.data == {"ok": False, "error": "ratelimited"}
    assert slack.messages == []

    ok = await client.chat_postMessage(channel="C1", text="hi")  # injection consumed
    assert ok["ok"] is True
    assert [c.status for c in slack.calls] == [429, 200]


async def test_slack_sdk_retry_handler_honours_the_fake_429(slack: FakeSlack) -> None:
    client = AsyncWebClient(
        token=SLACK_TOKEN,
        base_url=slack.base_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack.rate_limit_next(retry_after=0)  # handler sleeps retry_after + random() < 1 s

    resp = await client.chat_postMessage(channel="C1", text="once")

    assert resp["ok"] is True
    assert [c.status for c in slack.calls] == [429, 200]
    assert slack.messages == [{"channel": "C1", "text": "once"}]


async def test_slack_invalid_token_is_invalid_auth(slack: FakeSlack) -> None:
    client = AsyncWebClient(token="xoxb-wrong", base_url=slack.base_url)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="hi")
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == "invalid_auth"
    assert slack.messages == []


# ------------------------------------------------------------------------------------- Telegram
async def test_telegram_get_me_and_send_message_to_topic(tg: FakeTelegram, bot: telegram.Bot) -> None:
    # Bot.__aenter__ -> initialize() -> getMe
    assert bot.username == "gateway_test_bot"
    assert bot.id == 123
    [get_me] = tg.calls_for("getMe")
    assert get_me.status == 200

    msg = await bot.send_message(chat_id=-1001234567890, text="hello topic", message_thread_id=23)

    assert isinstance(msg, telegram.Message)
    assert msg.message_thread_id == 23
    assert msg.is_topic_message is True
    assert msg.text == "hello topic"
    assert msg.chat.type == telegram.constants.ChatType.SUPERGROUP
    assert msg.from_user is not None
    assert msg.from_user.is_bot
    # PTB posts form-urlencoded; non-string values are JSON encoded and the fake decodes them.
    [call] = await tg.wait_for_calls(1, method="sendMessage")
    assert call.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert tg.messages == [{"chat_id": -1001234567890, "text": "hello topic", "message_thread_id": 23}]

    private = await bot.send_message(chat_id=42, text="dm")
    assert private.chat.type == telegram.constants.ChatType.PRIVATE
    assert private.message_id > msg.message_id

    with pytest.raises(BadRequest, match="Message thread not found"):
        await bot.send_message(chat_id=-1001234567890, text="general", message_thread_id=1)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(chat_id=42, text="")

    assert await bot.send_chat_action(chat_id=42, action="typing") is True
    assert await bot.set_message_reaction(chat_id=42, message_id=private.message_id, reaction="👍")
    assert tg.reactions[0]["reaction"] == [{"type": "emoji", "emoji": "👍"}]
    edited = await bot.edit_message_text("dm v2", chat_id=42, message_id=private.message_id)
    assert isinstance(edited, telegram.Message)
    assert edited.text == "dm v2"
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("dm v2", chat_id=42, message_id=private.message_id)
    assert await bot.set_webhook("https://example.invalid/hook") is True
    assert await bot.delete_webhook() is True
    assert len(tg.messages) == 2


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # int vs timedelta
async def test_telegram_rate_limit_raises_retry_after(tg: FakeTelegram, bot: telegram.Bot) -> None:
    tg.rate_limit_next(retry_after=3, method="sendMessage")

    with pytest.raises(RetryAfter) as err:
        await bot.send_message(chat_id=42, text="hi")

    assert _seconds(err.value.retry_after) == 3
    assert tg.messages == []
    [call] = tg.calls_for("sendMessage")
    assert call.status == 429
    assert (await bot.send_message(chat_id=42, text="hi")).text == "hi"


async def test_telegram_wrong_token_is_invalid_token(tg: FakeTelegram) -> None:
    with pytest.raises(InvalidToken):
        async with telegram.Bot("123:WRONG", base_url=f"{tg.base_url}/bot"):  # shuts down on failure
            pass
    [call] = tg.calls
    assert call.status == 401


async def test_telegram_get_updates_long_polls_pushed_updates(tg: FakeTelegram, bot: telegram.Bot) -> None:
    assert await bot.get_updates(timeout=0) == ()

    poll = asyncio.create_task(bot.get_updates(timeout=8))
    await tg.wait_until(lambda: tg.polling == 1, timeout=5, describe="getUpdates to be long-polling")
    assert not poll.done()
    update_id = tg.push_update(
        {
            "message": {
                "message_id": 5,
                "date": 1700000000,
                "chat": {"id": 42, "type": "private", "first_name": "A"},
                "from": {"id": 42, "is_bot": False, "first_name": "A"},
                "text": "ping",
            }
        }
    )
    async with asyncio.timeout(2):  # woken by push_update, not by the 8 s poll timeout
        updates = await poll
    assert [u.update_id for u in updates] == [update_id]
    assert updates[0].message is not None
    assert updates[0].message.text == "ping"
    assert await bot.get_updates(offset=update_id + 1, timeout=0) == ()


# --------------------------------------------------------------------------------------- OpenAI
async def test_openai_text_and_tool_call_round_trip(oai: FakeOpenAI, oai_client: AsyncOpenAI) -> None:
    client = oai_client

    echo = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi there"}])
    assert echo.choices[0].message.content == "echo: hi there"
    assert echo.choices[0].finish_reason == "stop"
    assert echo.usage is not None
    assert echo.usage.total_tokens > 0

    tools: list[Any] = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    oai.script_replies(
        tool_call_reply("get_weather", {"city": "Paris"}, call_id="call_1"),
        text_reply("It is sunny in Paris."),
    )
    first = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}], tools=tools
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    [tc] = choice.message.tool_calls
    assert tc.type == "function"
    assert tc.id == "call_1"
    assert tc.function.name == "get_weather"
    assert json.loads(tc.function.arguments) == {"city": "Paris"}

    second = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "weather?"},
            choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        tools=tools,
    )
    assert second.choices[0].message.content == "It is sunny in Paris."

    calls = await oai.wait_for_calls(3, method="chat.completions")
    assert calls[1].args["tools"][0]["function"]["name"] == "get_weather"
    assert calls[2].args["messages"][-1] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    assert calls[0].headers["Authorization"] == "Bearer sk-test"

    models = await client.models.list()
    assert [m.id for m in models.data] == ["gpt-4o-mini"]


async def test_openai_errors_map_to_client_exceptions(oai: FakeOpenAI, oai_client: AsyncOpenAI) -> None:
    client = oai_client
    messages: list[Any] = [{"role": "user", "content": "x"}]

    oai.fail_next(status=500)
    with pytest.raises(openai.InternalServerError) as server_err:
        await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert server_err.value.status_code == 500

    oai.rate_limit_next(retry_after=2)
    with pytest.raises(openai.RateLimitError) as rate_err:
        await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert rate_err.value.response.headers["retry-after"] == "2"
    assert rate_err.value.code == "rate_limit_exceeded"

    with pytest.raises(openai.BadRequestError, match="model parameter"):
        await client.chat.completions.create(model="", messages=messages)

    bad_key = AsyncOpenAI(api_key="sk-wrong", base_url=f"{oai.base_url}/v1", max_retries=0)
    async with bad_key:
        with pytest.raises(openai.AuthenticationError):
            await bad_key.chat.completions.create(model="gpt-4o-mini", messages=messages)

    ok = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert ok.choices[0].message.content == "echo: x"
    assert [c.status for c in oai.calls] == [500, 429, 400, 401, 200]


async def test_openai_stream_is_read_by_the_sdk(oai: FakeOpenAI, oai_client: AsyncOpenAI) -> None:
    """The fake's SSE chunks are what the SDK's stream parser expects: text deltas that add up to the
    answer, tool call fragments that add up to the call, the usage chunk last."""
    oai.script_replies(tool_call_reply("lookup", {"order_id": "A-1042"}, "call_7", content="Let me look."))
    deltas: list[str] = []
    fragments: list[str] = []
    usage = None
    stream = await oai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "where is my order?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        usage = chunk.usage or usage
        for choice in chunk.choices:
            deltas.append(choice.delta.content or "")
            fragments += [t.function.arguments or "" for t in choice.delta.tool_calls or [] if t.function]
    assert "".join(deltas) == "Let me look."
    assert json.loads("".join(fragments)) == {"order_id": "A-1042"}
    assert usage is not None
    assert usage.completion_tokens > 0
    body = await oai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join([c.choices[0].delta.content or "" async for c in body if c.choices]) == "echo: hi"


async def test_delay_injection_provokes_a_client_timeout(oai: FakeOpenAI, oai_client: AsyncOpenAI) -> None:
    client = oai_client.with_options(timeout=0.3)
    oai.delay_next(5)  # the call is recorded before the answer is held back

    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])

    [call] = await oai.wait_for_calls(1, method="chat.completions")
    assert call.args["messages"] == [{"role": "user", "content": "x"}]


# ------------------------------------------------------------------------------ webhook receiver
async def test_webhook_receiver_records_raw_bodies_and_injects_failures() -> None:
    async with WebhookReceiver() as hook, aiohttp.ClientSession() as session:
        body = b'{"text": "hi", "n": 1}'
        async with session.post(f"{hook.base_url}/hooks/agent", data=body, headers={"X-Signature": "abc"}) as resp:
            assert resp.status == 200
        [req] = await hook.wait_for_requests(1, path="/hooks/agent")
        assert req.body == body
        assert req.json() == {"text": "hi", "n": 1}
        assert req.headers["X-Signature"] == "abc"

        hook.fail_next(status=503)
        async with session.post(f"{hook.base_url}/other", data=b"x") as resp:
            assert resp.status == 503
        calls = await hook.wait_for_calls(1, method="/other")
        assert calls[0].status == 503
        assert [r.path for r in hook.requests] == ["/hooks/agent", "/other"]


async def test_wait_for_calls_times_out_with_a_helpful_message(slack: FakeSlack) -> None:
    client = AsyncWebClient(token=SLACK_TOKEN, base_url=slack.base_url)
    await client.auth_test()
    with pytest.raises(AssertionError, match=r"chat\.postMessage.*auth\.test\[200\]"):
        await slack.wait_for_calls(1, method="chat.postMessage", timeout=0.05)


# --------------------------------------------------------------------------------- process mode
async def test_slack_fake_as_a_separate_process() -> None:
    async with run_fake("tests.fakes.slack_api", "--token", SLACK_TOKEN) as fake:
        assert fake.base_url.endswith("/api/")
        client = AsyncWebClient(token=SLACK_TOKEN, base_url=fake.base_url)

        resp = await client.chat_postMessage(channel="C9", text="from another process", thread_ts="1.2")
        assert resp["message"]["thread_ts"] == "1.2"

        [call] = await fake.wait_for_calls(1, method="chat.postMessage")
        assert call.args == {"channel": "C9", "text": "from another process", "thread_ts": "1.2"}

        await fake.inject("rate_limit", retry_after=4, method="chat.postMessage")
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel="C9", text="again")
        assert err.value.response.status_code == 429
        assert err.value.response.headers["Retry-After"] == "4"
        calls = await fake.wait_for_calls(2, method="chat.postMessage")
        assert [c.status for c in calls] == [200, 429]
    assert fake.process.returncode is not None
