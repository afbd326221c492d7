"""Human handoff end to end: `gateway dev` on RabbitMQ and Redis, fake Telegram (the conversation), fake Slack
(the handoff channel), a webhook receiver (the signed handoff callback) and the fake OpenAI server, reached
through the real clients; `gateway handoff`, `gateway history --json` and `gateway status` run as processes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from connectors.webhooks.signing import secret_key, verify
from gateway.core import handoff, samples, sessions
from gateway.core.store.redis import RedisStore
from tests.e2e.conftest import REPLY_SECRET, SLACK_SECRET, TELEGRAM_SECRET, gateway_env
from tests.e2e.test_operators import gateway_cli, with_root
from tests.fakes.openai_api import FakeOpenAI, ModelReply, text_reply, tool_call_reply
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.support.signing import slack_headers
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"}
HUMANS = "CHUMANS1"
BACK = "You're back with the assistant."  # [handoff] release_text's default


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key="sk-e2e") as fake:
        yield fake


def support_model(req: dict[str, Any]) -> ModelReply:
    last = req["messages"][-1]
    if last["role"] == "tool":
        return text_reply("A colleague will answer you here.")
    if "person" in last["content"]:
        return tool_call_reply("handoff", {"reason": "the customer asked for a person"}, call_id="call_handoff")
    return text_reply(f"bot: {last['content']}")


def config(receiver: WebhookReceiver) -> str:
    return f"""
[agents.support]
path = "tests.e2e.handoff_agent:agent"

[handoff]
slack_channel = "{HUMANS}"
webhook_url = "{receiver.base_url}/hooks/handoff"
webhook_secret_env = "HANDOFF_SECRET"
"""


async def start(
    services: tuple[str, str, str],
    slack: FakeSlack,
    telegram: FakeTelegram,
    openai_fake: FakeOpenAI,
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> tuple[GatewayProcess, dict[str, str]]:
    env = with_root(
        gateway_env(
            slack,
            telegram,
            **service_env(services, config=config(receiver), tmp_path=tmp_path),
            OPENAI_BASE_URL=f"{openai_fake.base_url}/v1",
            OPENAI_API_KEY="sk-e2e",
            GATEWAY_LLM_MODEL="gpt-4o-mini",
            GATEWAY_DEFAULT_AGENT="support",
            HANDOFF_SECRET=REPLY_SECRET,
        )
    )
    return await GatewayProcess("dev", env).start(), env


class Chat:
    """One Telegram chat: what the user says, and what the gateway answered in it."""

    update = 7000

    def __init__(self, gw: GatewayProcess, telegram: FakeTelegram, chat: int) -> None:
        self.gw, self.telegram, self.chat = gw, telegram, chat
        self.key = f"telegram:default:{chat}"

    async def say(self, text: str) -> None:
        Chat.update += 1
        body = samples.telegram_message(text, chat_id=self.chat, update_id=Chat.update)
        assert await post(f"{self.gw.url}/telegram/default", body, HEADERS) == 200

    def answers(self) -> list[str]:
        return [m["text"] for m in self.telegram.messages if str(m["chat_id"]) == str(self.chat)]

    async def answered(self, n: int) -> list[str]:
        return await eventually(lambda: a if len(a := self.answers()) >= n else None, timeout=20, what=f"{n} answers")


def notices(slack: FakeSlack) -> list[str]:
    return [m["text"] for m in slack.messages if m["channel"] == HUMANS]


async def kept(env: dict[str, str], key: str, texts: list[str]) -> list[dict[str, Any]]:
    """The history records of ``key`` once every one of ``texts`` is in it."""

    async def read() -> list[dict[str, Any]] | None:
        code, out, _ = await gateway_cli(env, "history", key, "--agent", "support", "--json")
        if code != 0:
            return None
        turns: list[dict[str, Any]] = json.loads(out)["agents"]["support"]["turns"]
        return turns if set(texts) <= {t["text"] for t in turns} else None

    return await eventually(read, timeout=20, what=f"{texts} in the history of {key}")


async def test_the_agent_hands_off_a_person_answers_and_release_gives_it_back(
    services: tuple[str, str, str],
    slack: FakeSlack,
    telegram: FakeTelegram,
    openai_fake: FakeOpenAI,
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    openai_fake.script(support_model)
    gw, env = await start(services, slack, telegram, openai_fake, receiver, tmp_path)
    try:
        chat = Chat(gw, telegram, 4242)
        await chat.say("hi")
        assert await chat.answered(1) == ["bot: hi"]
        await chat.say("I want a person please")
        assert (await chat.answered(2))[1] == "A colleague will answer you here."
        [notice] = await eventually(lambda: notices(slack) or None, timeout=20, what="the handoff notice")
        [hook] = await receiver.wait_for_requests(1, path="/hooks/handoff", timeout=20)
        model_calls = len(openai_fake.requests)
        await chat.say("hello?")
        await chat.say("anyone there?")
        turns = await kept(env, chat.key, ["hello?", "anyone there?"])
        listed_code, listed, _ = await gateway_cli(env, "handoff", "--list", "--json")
        status_code, status, _ = await gateway_cli(env, "status", "--json", "--interval", "0")
        assert chat.answers() == ["bot: hi", "A colleague will answer you here."]
        assert len(openai_fake.requests) == model_calls  # no model request while a person has it
        code, out, err = await gateway_cli(env, "handoff", chat.key, "--release")
        assert code == 0, err
        await chat.say("thanks, all good")
        answers = await chat.answered(4)
        released = await eventually(lambda: n[1:] if len(n := notices(slack)) >= 2 else None, timeout=20, what="2")
    finally:
        assert await gw.terminate() == 0
    assert f"`{chat.key}`" in notice
    assert "the customer asked for a person" in notice
    assert "agent:support" in notice
    assert f"gateway history {chat.key}" in notice
    assert answers[2:] == [BACK, "bot: thanks, all good"]  # told in the conversation, before the next answer
    assert len(notices(slack)) == 2
    assert "is back with its agent" in released[0]
    # the callback is signed the Standard Webhooks way, with the [handoff] secret
    assert verify([secret_key(REPLY_SECRET)], hook.headers, hook.body, time.time()) == hook.headers["webhook-id"]
    body = hook.json()
    assert body["type"] == "gateway.handoff"
    assert body["conversation_key"] == chat.key
    assert body["state"] == "human"
    assert body["reason"] == "the customer asked for a person"
    by_text = {t["text"]: t for t in turns}
    assert by_text["hello?"]["handoff"] is True
    assert by_text["anyone there?"]["handoff"] is True
    assert by_text["hi"]["handoff"] is False
    assert [t["text"] for t in turns if t["role"] == "user"][-2:] == ["hello?", "anyone there?"]  # in order
    handoff_call = next(t for t in turns if t["tool_calls"])
    assert handoff_call["tool_calls"][0]["name"] == "handoff"
    assert listed_code == 0
    assert [h["key"] for h in json.loads(listed)["handoffs"]] == [chat.key]
    assert status_code == 0
    assert json.loads(status)["handed_off"] == 1
    assert "back with its agent" in out


async def test_an_operator_hands_off_and_releases_a_conversation(
    services: tuple[str, str, str],
    slack: FakeSlack,
    telegram: FakeTelegram,
    openai_fake: FakeOpenAI,
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    openai_fake.script(support_model)
    gw, env = await start(services, slack, telegram, openai_fake, receiver, tmp_path)
    try:
        chat = Chat(gw, telegram, 5353)
        code, out, err = await gateway_cli(env, "handoff", chat.key, "--reason", "VIP customer")
        assert code == 0, err
        again, again_out, _ = await gateway_cli(env, "handoff", chat.key, "--reason", "twice")
        [notice] = await eventually(lambda: notices(slack) or None, timeout=20, what="the handoff notice")
        await chat.say("is anybody there?")
        await kept(env, chat.key, ["is anybody there?"])
        assert chat.answers() == []
        assert openai_fake.requests == []
        code, _, err = await gateway_cli(env, "handoff", chat.key, "--release")
        assert code == 0, err
        missing, _, missing_err = await gateway_cli(env, "handoff", chat.key, "--release")
        await chat.say("hello again")
        answers = await chat.answered(2)
        await eventually(lambda: len(notices(slack)) >= 2 or None, timeout=20, what="the release notice")
        hooks = await receiver.wait_for_requests(2, path="/hooks/handoff", timeout=20)
    finally:
        assert await gw.terminate() == 0
    assert "with a person now" in out
    assert again == 0
    assert "already with a person" in again_out
    assert "VIP customer" in notice
    assert "operator" in notice
    assert len(notices(slack)) == 2  # the second `gateway handoff` of the same conversation notified nobody
    assert missing == 4
    assert "not handed off" in missing_err
    assert answers == [BACK, "bot: hello again"]
    assert sorted(h.json()["state"] for h in hooks) == ["agent", "human"]


async def test_release_tells_the_user_in_their_slack_thread_once_however_often_it_runs(
    services: tuple[str, str, str],
    slack: FakeSlack,
    telegram: FakeTelegram,
    openai_fake: FakeOpenAI,
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    openai_fake.script(support_model)
    gw, env = await start(services, slack, telegram, openai_fake, receiver, tmp_path)
    channel, thread = "CCONV1", "1700000100.000100"
    key = f"slack:T0DEV:{channel}:{thread}"
    said = 0

    async def say(text: str) -> None:
        nonlocal said
        said += 1
        body = samples.slack_message(text, channel=channel, thread_ts=thread, ts=f"1700000100.{said + 100:06d}")
        assert await post(f"{gw.url}/slack/events", body, slack_headers(SLACK_SECRET, body)) == 200

    def in_thread() -> list[str]:
        return [m["text"] for m in slack.messages if m["channel"] == channel and m.get("thread_ts") == thread]

    async def answered(n: int) -> list[str]:
        return await eventually(lambda: t if len(t := in_thread()) >= n else None, timeout=20, what=f"{n} in thread")

    try:
        await say("hi")
        await answered(1)
        await say("I want a person please")
        await answered(2)
        await eventually(lambda: notices(slack) or None, timeout=20, what="the handoff notice")
        await say("hello?")
        await kept(env, key, ["hello?"])
        store = RedisStore(services[1], services[2])
        try:
            fields = [handoff.FIELD, handoff.TO_FIELD]
            record = dict(zip(fields, await store.hmget(sessions.record_key(key), fields), strict=True))
            # two operators release it at once: both may read the record, and both publish the same ids
            both = await asyncio.gather(*(gateway_cli(env, "handoff", key, "--release") for _ in range(2)))
            await answered(3)
            # and for certain: a release that read the record before the first one deleted it
            for field, value in record.items():
                assert value is not None
                await store.hput(sessions.record_key(key), field, value)
            late, _, late_err = await gateway_cli(env, "handoff", key, "--release")
        finally:
            await store.close()
        third, _, third_err = await gateway_cli(env, "handoff", key, "--release")
        await say("thanks, all good")  # its answer queues behind the late release's notice in the thread
        thread_texts = await answered(4)
        await eventually(lambda: len(notices(slack)) >= 2 or None, timeout=20, what="the release notice")
        ops = notices(slack)
    finally:
        assert await gw.terminate() == 0
    assert sorted(code for code, _, _ in both) in ([0, 0], [0, 4]), both
    assert late == 0, late_err
    assert third == 4, third_err
    assert thread_texts == ["bot: hi", "A colleague will answer you here.", BACK, "bot: thanks, all good"]
    assert in_thread().count(BACK) == 1  # published once or twice, posted once
    assert len(ops) == 2  # the handoff channel: the notice and the release, once each
    assert "is back with its agent" in ops[1]
