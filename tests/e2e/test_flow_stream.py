"""A flow's answer streams on a streaming route: the ticket flow (examples/ticket_flow.py) under `gateway dev`
with ``GATEWAY_STREAM=1`` on RabbitMQ and Redis, the fake OpenAI server streaming (SSE) through the real openai
client, and fake Slack showing the model's words growing in one message, then final; the flow's own
questions stay ordinary replies, one message per turn."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agents.flows.state import FlowState, state_key
from gateway.core import samples
from gateway.core.store.redis import RedisStore
from tests.e2e.conftest import SLACK_SECRET
from tests.e2e.test_ticket_flow import env_for
from tests.fakes.openai_api import FakeOpenAI, ModelReply, text_reply, tool_call_reply
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.signing import slack_headers
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
ANSWER = "Sorry to hear that! " + " ".join(f"word{i}" for i in range(30)) + ". What went wrong with it?"
THREAD = "1700000900.000001"


def model(request: dict[str, Any]) -> ModelReply:
    said = request["messages"][-1]["content"]
    if "never" in said:
        return tool_call_reply("fill_slots", {"problem": "The parcel never arrived", "category": "missing"})
    return text_reply(ANSWER)  # the user asked something: the model answers in words, the step stays


class Thread:
    """One Slack thread; each ``say`` waits for the next message the bot made in it (posted or streamed) to
    be final, and returns its text."""

    def __init__(self, gateway: GatewayProcess, slack: FakeSlack) -> None:
        self.gateway, self.slack, self.n = gateway, slack, 0

    def _final(self, n: int) -> str | None:
        created = self.slack.created("CFLOW", THREAD)
        if len(created) < n:
            return None
        ts = created[n - 1]["ts"]
        done = [s.text for s in self.slack.timeline if s.message == ts and s.final]
        return done[-1] if done else None

    async def say(self, text: str) -> str:
        self.n += 1
        body = samples.slack_message(text, channel="CFLOW", thread_ts=THREAD, ts=f"1700000900.{self.n + 1:06d}")
        assert await post(f"{self.gateway.url}/slack/events", body, slack_headers(SLACK_SECRET, body)) == 200
        n = self.n
        return await eventually(lambda: self._final(n), timeout=20, what=f"answer {n} final")


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key="sk-e2e") as fake:
        fake.script(model)
        fake.stream_delay = 0.03  # about 1 s for the answer: several snapshots
        yield fake


async def test_a_flow_answer_grows_in_one_slack_message_then_final(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, openai_fake: FakeOpenAI, tmp_path: Path
) -> None:
    env = env_for(services, slack, telegram, openai_fake, tmp_path) | {"GATEWAY_STREAM": "1"}
    gw = await GatewayProcess("dev", env).start()
    thread = Thread(gw, slack)
    try:
        assert await thread.say("A-1042") == "What went wrong with order A-1042?"
        assert await thread.say("what do you need from me?") == ANSWER
        assert await thread.say("it never showed up") == "How can we reach you? (email or phone)"
        store = RedisStore(services[1], services[2])
        try:
            saved = FlowState.from_json(await store.get(state_key("ticket", f"slack:T0DEV:CFLOW:{THREAD}")))
        finally:
            await store.close()
    finally:
        assert await gw.terminate() == 0, gw.logs()[-2000:]
    created = slack.created("CFLOW", THREAD)
    assert [m["text"] for m in created] == [  # one message per turn
        "What went wrong with order A-1042?",
        ANSWER,
        "How can we reach you? (email or phone)",
    ]
    texts = [s.text for s in slack.steps("CFLOW", created[1]["ts"])]
    assert len(set(texts)) >= 3, texts  # grew: several partial texts, each extending the one before
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts)), texts
    assert texts[-1] == ANSWER
    streamed = [c.method for c in slack.calls if c.method.endswith("Stream")]
    assert (streamed[0], streamed[-1]) == ("chat.startStream", "chat.stopStream")
    assert [c.method for c in slack.calls if c.method == "chat.postMessage"] == ["chat.postMessage"] * 2
    assert [r.get("stream") for r in openai_fake.requests] == [True, True]  # the flow's model calls streamed
    assert saved.step == "contact"
    assert saved.data["category"] == "missing"
