"""Agents end to end: `gateway dev` on RabbitMQ and Redis, a fake OpenAI-compatible server, the real clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.core import samples
from gateway.core.bus.amqp import AmqpBus
from gateway.core.bus.topology import Topology
from tests.e2e.conftest import SLACK_SECRET, gateway_env
from tests.fakes.openai_api import FakeOpenAI, ModelReply, text_reply, tool_call_reply
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.support.signing import slack_headers
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key="sk-e2e") as fake:
        yield fake


async def start(
    services: tuple[str, str, str],
    slack: FakeSlack,
    telegram: FakeTelegram,
    fake: FakeOpenAI,
    tmp_path: Path,
    **extra: str,
) -> GatewayProcess:
    env = gateway_env(
        slack,
        telegram,
        **service_env(services, config='[agents.tools]\npath = "tests.e2e.tool_agent:agent"\n', tmp_path=tmp_path),
        OPENAI_BASE_URL=f"{fake.base_url}/v1",
        OPENAI_API_KEY="sk-e2e",
        GATEWAY_LLM_MODEL="gpt-4o-mini",
        GATEWAY_LLM_INSTRUCTIONS="Be terse.",
        **extra,
    )
    return await GatewayProcess("dev", env).start()


async def say(gw: GatewayProcess, text: str, *, thread: str, ts: str) -> None:
    body = samples.slack_message(text, channel="CAGENT", thread_ts=thread, ts=ts)
    assert await post(f"{gw.url}/slack/events", body, slack_headers(SLACK_SECRET, body)) == 200


def contents(request: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m.get("content") or "") for m in request["messages"]]


async def test_llm_answers_in_thread_with_history_of_that_thread_only(
    services, slack, telegram, openai_fake, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    openai_fake.script(lambda req: text_reply(f"answer to: {req['messages'][-1]['content']}"))
    gw = await start(services, slack, telegram, openai_fake, tmp_path, GATEWAY_DEFAULT_AGENT="llm")
    try:
        await say(gw, "my name is Ada", thread="1700000000.000001", ts="1700000000.000001")
        await slack.wait_for_messages(1)
        await say(gw, "what is my name?", thread="1700000000.000001", ts="1700000001.000001")
        await say(gw, "hello from another thread", thread="1700000099.000001", ts="1700000099.000001")
        messages = await slack.wait_for_messages(3)
    finally:
        assert await gw.terminate() == 0
    by_thread = {(m["thread_ts"], m["text"]) for m in messages}
    assert ("1700000000.000001", "answer to: my name is Ada") in by_thread
    assert ("1700000000.000001", "answer to: what is my name?") in by_thread
    assert ("1700000099.000001", "answer to: hello from another thread") in by_thread
    second = next(r for r in openai_fake.requests if r["messages"][-1]["content"] == "what is my name?")
    assert contents(second) == [
        ("system", "Be terse."),
        ("user", "my name is Ada"),
        ("assistant", "answer to: my name is Ada"),
        ("user", "what is my name?"),
    ]
    other = next(r for r in openai_fake.requests if r["messages"][-1]["content"] == "hello from another thread")
    assert "Ada" not in json.dumps(other["messages"])


def calculator(req: dict[str, Any]) -> ModelReply:
    last = req["messages"][-1]
    if last["role"] == "user" and last["content"].startswith("add"):
        _, a, b = last["content"].split()
        return tool_call_reply("add", {"a": int(a), "b": int(b)}, call_id="call_add")
    if last["role"] == "user" and last["content"] == "break it":
        return tool_call_reply("explode", {"reason": "testing"}, call_id="call_boom")
    if last["role"] == "tool":
        return text_reply(f"tool said: {last['content']}")
    return text_reply("?")


async def test_tool_round_trip_and_a_failing_tool(services, slack, telegram, openai_fake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    openai_fake.script(calculator)
    gw = await start(services, slack, telegram, openai_fake, tmp_path, GATEWAY_DEFAULT_AGENT="tools")
    try:
        await say(gw, "add 2 40", thread="1700000200.000001", ts="1700000200.000001")
        await say(gw, "break it", thread="1700000300.000001", ts="1700000300.000001")
        messages = await slack.wait_for_messages(2)
    finally:
        assert await gw.terminate() == 0
    texts = {m["thread_ts"]: m["text"] for m in messages}
    assert texts["1700000200.000001"] == "tool said: 42"
    assert texts["1700000300.000001"].startswith("tool said: error: explode failed: RuntimeError: kaboom: testing")
    tool_request = next(r for r in openai_fake.requests if r["messages"][-1].get("tool_call_id") == "call_add")
    assert {t["function"]["name"] for t in tool_request["tools"]} >= {"add", "explode", "reply", "react"}
    assert tool_request["messages"][-2]["tool_calls"][0]["function"]["name"] == "add"


async def test_model_server_that_keeps_failing_ends_in_the_dead_letter_queue(
    services, slack, telegram, openai_fake, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    openai_fake.fail_next(1000, status=500)
    gw = await start(
        services,
        slack,
        telegram,
        openai_fake,
        tmp_path,
        GATEWAY_DEFAULT_AGENT="llm",
        GATEWAY_TURN_ATTEMPTS="2",
        GATEWAY_RETRY_BASE="0.05",
    )
    amqp, _, namespace = services
    bus = AmqpBus(amqp, Topology(namespace, 16))
    await bus.start()
    try:
        await say(gw, "are you there?", thread="1700000400.000001", ts="1700000400.000001")
        dead = await eventually(lambda: bus.get(bus.topology.dead_queue), timeout=30, what="a dead letter")
        assert dead is not None
        await dead.ack()
    finally:
        await bus.close()
        assert await gw.terminate() == 0
    assert dead.headers["x-stage"] == "dispatch"
    assert dead.headers["x-reason"] == "turn_failed"
    assert "500" in dead.headers["x-error"]
    assert dead.headers["x-attempts"] == 2
    # One retry budget per event: 2 turn attempts are 2 model requests, not 2 x the client's own retries.
    assert len(openai_fake.requests) == 2
    assert json.loads(dead.body)["text"] == "are you there?"
    assert slack.messages == []


async def test_a_rate_limited_model_is_retried_after_its_retry_after_and_the_user_gets_one_answer(
    services, slack, telegram, openai_fake, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    openai_fake.rate_limit_next(1, retry_after=1)
    gw = await start(
        services,
        slack,
        telegram,
        openai_fake,
        tmp_path,
        GATEWAY_DEFAULT_AGENT="llm",
        GATEWAY_TURN_ATTEMPTS="3",
        GATEWAY_RETRY_BASE="0.01",
    )
    try:
        await say(gw, "busy?", thread="1700000500.000001", ts="1700000500.000001")
        [message] = await slack.wait_for_messages(1)
    finally:
        assert await gw.terminate() == 0
    assert message["text"] == "echo: busy?"
    calls = openai_fake.calls_for("chat.completions")
    assert [c.status for c in calls] == [429, 200]
    # the dispatcher waited the server's Retry-After (1 s), not its own 0.01 s backoff
    assert calls[1].at - calls[0].at >= 0.9
