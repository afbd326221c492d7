"""Providers, usage, budgets and history end to end: `gateway dev` on RabbitMQ and Redis, fake Telegram, the
fake Anthropic Messages API and the fake OpenAI API, reached through the real telegram, anthropic and openai
clients; `gateway status --usage`, `/metrics` and `gateway history` read what the turns left."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.core import samples
from tests.e2e.conftest import TELEGRAM_SECRET, gateway_env
from tests.e2e.test_operators import gateway_cli, with_root
from tests.fakes.anthropic_api import AnthropicReply, FakeAnthropic, text_reply, tool_use_reply
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"}
ACME_KEY = "sk-ant-acme-e2e"


@pytest.fixture
async def claude() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(api_key=ACME_KEY) as fake:
        yield fake


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key="sk-e2e") as fake:
        yield fake


def calculator(req: dict[str, Any]) -> AnthropicReply:
    last = req["messages"][-1]["content"]
    if isinstance(last, list) and last[0]["type"] == "tool_result":
        return text_reply(f"the sum is {last[0]['content']}")
    return tool_use_reply("add", {"a": 2, "b": 40}, "toolu_add")


async def start(
    services: tuple[str, str, str],
    slack: FakeSlack,
    telegram: FakeTelegram,
    claude: FakeAnthropic,
    openai_fake: FakeOpenAI,
    tmp_path: Path,
    config: str,
) -> tuple[GatewayProcess, dict[str, str]]:
    env = with_root(
        gateway_env(
            slack,
            telegram,
            **service_env(services, config=config, tmp_path=tmp_path),
            ANTHROPIC_BASE_URL=claude.base_url,
            ANTHROPIC_API_KEY="sk-ant-not-this-one",  # the route names its own key
            ACME_ANTHROPIC_KEY=ACME_KEY,
            OPENAI_BASE_URL=f"{openai_fake.base_url}/v1",
            OPENAI_API_KEY="sk-e2e",
        )
    )
    return await GatewayProcess("dev", env).start(), env


async def say(gw: GatewayProcess, text: str, *, chat: int, update: int) -> None:
    body = samples.telegram_message(text, chat_id=chat, update_id=update)
    assert await post(f"{gw.url}/telegram/default", body, HEADERS) == 200


CALC = """
[agents.calc]
path = "tests.e2e.tool_agent:agent"
provider = "anthropic"
model = "claude-e2e"
max_tokens = 512

[[routes]]
platform = "telegram"
agent = "calc"
name = "acme"
api_key_env = "ACME_ANTHROPIC_KEY"
"""


async def test_an_anthropic_agent_answers_with_a_tool_and_its_usage_shows_everywhere(
    services: tuple[str, str, str],
    slack: FakeSlack,
    telegram: FakeTelegram,
    claude: FakeAnthropic,
    openai_fake: FakeOpenAI,
    tmp_path: Path,
) -> None:
    claude.script(calculator)
    gw, env = await start(services, slack, telegram, claude, openai_fake, tmp_path, CALC)
    try:
        await say(gw, "add 2 and 40", chat=5151, update=9101)
        [message] = await telegram.wait_for_messages(1, timeout=20)
        # The reply goes out before the turn's usage is recorded (the user does not wait for the
        # bookkeeping): wait until the consumer has counted it.
        tokens_line = 'gateway_model_tokens_total{agent="calc",direction="input",route="acme"}'
        metrics = await eventually(lambda: _metrics(gw.url), until=lambda m: tokens_line in m, what="usage counted")
        status_code, status_out, status_err = await eventually(
            lambda: gateway_cli(env, "status", "--usage", "--json", "--interval", "0"),
            until=lambda r: r[0] != 0 or "calc" in json.loads(r[1])["usage"].get("today", {}).get("agents", {}),
            what="usage recorded in Redis",
        )
        text_code, status_text, _ = await gateway_cli(env, "status", "--usage", "--interval", "0")
        hist_code, hist_out, hist_err = await gateway_cli(env, "history", "telegram:default:5151", "--json")
        _, hist_text, _ = await gateway_cli(env, "history", "telegram:default:5151")
    finally:
        assert await gw.terminate() == 0
    assert (str(message["chat_id"]), message["text"]) == ("5151", "the sum is 42")
    first, second = claude.calls_for("messages")
    assert first.status == 200
    assert second.status == 200
    assert first.headers["Authorization"] == f"Bearer {ACME_KEY}"  # the route's key, not ANTHROPIC_API_KEY
    assert second.args["messages"][-1]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_add", "content": "42"}
    ]
    assert second.args["max_tokens"] == 512
    assert openai_fake.requests == []
    # usage: what the fake reported for both calls
    expected_in = sum(_input_tokens(c.args) for c in (first, second))
    assert f'gateway_model_tokens_total{{agent="calc",direction="input",route="acme"}} {float(expected_in)}' in metrics
    assert status_code == 0, status_err
    usage = json.loads(status_out)["usage"]
    assert usage["agents"]["calc"]["input_tokens"] == expected_in
    assert usage["agents"]["calc"]["turns"] == 1
    assert usage["routes"]["acme"]["output_tokens"] > 0
    assert usage["today"]["agents"]["calc"]["input_tokens"] == expected_in
    assert text_code == 0
    assert "usage (model tokens of succeeded turns)" in status_text
    assert hist_code == 0, hist_err
    turns = json.loads(hist_out)["agents"]["calc"]["turns"]
    assert [(t["role"], t["text"]) for t in turns] == [("user", "add 2 and 40"), ("assistant", "the sum is 42")]
    [call] = turns[1]["tool_calls"]
    assert (call["name"], json.loads(call["arguments"]), call["result"], call["ok"]) == (
        "add",
        {"a": 2, "b": 40},
        "42",
        True,
    )
    assert turns[1]["usage"]["input_tokens"] == expected_in
    assert 'tool add({"a": 2, "b": 40}) -> 42' in hist_text


async def _metrics(url: str) -> str:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
        return await r.text()


def _input_tokens(body: dict[str, Any]) -> int:
    return max(1, len(json.dumps(body["messages"]) + json.dumps(body.get("system", ""))) // 4)


FALLBACK = """
[agents.calc]
path = "tests.e2e.tool_agent:agent"
provider = "anthropic"
model = "claude-e2e"
api_key_env = "ACME_ANTHROPIC_KEY"
fallback = ["openai:gpt-4o-mini"]
"""


async def test_an_overloaded_model_falls_back_to_the_next_and_a_4xx_does_not(
    services: tuple[str, str, str],
    slack: FakeSlack,
    telegram: FakeTelegram,
    claude: FakeAnthropic,
    openai_fake: FakeOpenAI,
    tmp_path: Path,
) -> None:
    claude.fail_next(1, status=529)
    config = FALLBACK + '\n[[routes]]\nplatform = "telegram"\nagent = "calc"\n'
    gw, _ = await start(services, slack, telegram, claude, openai_fake, tmp_path, config)
    try:
        await say(gw, "hello", chat=6161, update=9201)
        [first] = await telegram.wait_for_messages(1, timeout=20)
        claude.fail_next(1, status=400)  # a refusal is not the server's trouble: no fallback, the turn fails
        await say(gw, "again", chat=6161, update=9202)
        await telegram.wait_for_messages(2, timeout=30)
    finally:
        assert await gw.terminate() == 0
    assert first["text"] == "echo: hello"  # the fake OpenAI's answer
    statuses = [c.status for c in claude.calls_for("messages")]
    assert statuses[:2] == [529, 400]
    assert statuses[2:] == [200]  # the dispatcher's retry of the failed turn, on the primary again
    assert [r["messages"][-1]["content"] for r in openai_fake.requests] == ["hello"]


BUDGET = """
[agents.calc]
path = "tests.e2e.tool_agent:agent"
provider = "anthropic"
model = "claude-e2e"
api_key_env = "ACME_ANTHROPIC_KEY"
budget_tokens_per_conversation = 1
budget_message = "This chat has used its allowance."

[[routes]]
platform = "telegram"
agent = "calc"
"""


async def test_a_spent_budget_ends_the_turn_with_its_message_and_no_model_call(
    services: tuple[str, str, str],
    slack: FakeSlack,
    telegram: FakeTelegram,
    claude: FakeAnthropic,
    openai_fake: FakeOpenAI,
    tmp_path: Path,
) -> None:
    gw, env = await start(services, slack, telegram, claude, openai_fake, tmp_path, BUDGET)
    try:
        await say(gw, "first", chat=7171, update=9301)
        await telegram.wait_for_messages(1, timeout=20)
        await say(gw, "second", chat=7171, update=9302)
        await say(gw, "elsewhere", chat=7272, update=9303)
        messages = await telegram.wait_for_messages(3, timeout=20)
        hist_code, hist_out, _ = await gateway_cli(env, "history", "telegram:default:7171", "--json")
    finally:
        assert await gw.terminate() == 0
    by_chat = sorted((str(m["chat_id"]), m["text"]) for m in messages)
    assert by_chat == [
        ("7171", "This chat has used its allowance."),
        ("7171", "echo: first"),
        ("7272", "echo: elsewhere"),  # a budget per conversation: another conversation still has its own
    ]
    assert [json.dumps(r["messages"][-1]["content"]) for r in claude.requests] == [
        json.dumps([{"type": "text", "text": "first"}]),
        json.dumps([{"type": "text", "text": "elsewhere"}]),
    ]
    assert hist_code == 0
    turns = json.loads(hist_out)["agents"]["calc"]["turns"]
    assert turns[-1]["text"] == "This chat has used its allowance."
    assert turns[-1]["usage"] is None
