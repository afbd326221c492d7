"""The support-ticket flow (examples/ticket_flow.py) end to end through fake Slack on RabbitMQ and Redis.

The gateway runs as processes (`gateway dev`, or `gateway serve` + `gateway consume`), the model is the
fake OpenAI server reached by the real openai client, and the flow state lives in Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agents.flows.state import FlowState, state_key
from consumers.outbound import sent_marker
from consumers.usage import conversation_usage_key
from gateway.core import samples
from gateway.core.store.redis import RedisStore
from tests.e2e.conftest import SLACK_SECRET, gateway_env
from tests.fakes.openai_api import FakeOpenAI, ModelReply, text_reply, tool_call_reply
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.support.signing import slack_headers
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
CONFIG = '[agents.ticket]\npath = "examples.ticket_flow:flow"\n'
ASK_ORDER = "Which order is it about? (an order number, like A-1042)"


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key="sk-e2e") as fake:
        fake.script(problem_filler)
        yield fake


def problem_filler(request: dict[str, Any]) -> ModelReply:
    """The model's part: the free-text problem as a description and a category."""
    if [t["function"]["name"] for t in request.get("tools", [])] != ["fill_slots"]:
        return text_reply("unexpected request")
    said = request["messages"][-1]["content"]
    if "never" in said:
        return tool_call_reply("fill_slots", {"problem": "The parcel never arrived", "category": "missing"})
    return tool_call_reply("fill_slots", {"problem": "The screen is cracked"})


def env_for(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, fake: FakeOpenAI, tmp_path: Path
) -> dict[str, str]:
    return gateway_env(
        slack,
        telegram,
        **service_env(services, config=CONFIG, tmp_path=tmp_path),
        OPENAI_BASE_URL=f"{fake.base_url}/v1",
        OPENAI_API_KEY="sk-e2e",
        GATEWAY_LLM_MODEL="gpt-4o-mini",
        GATEWAY_DEFAULT_AGENT="ticket",
    )


class Thread:
    """One Slack thread: each ``say`` posts a signed message event and waits for the replies it brings."""

    def __init__(self, gateway: GatewayProcess, slack: FakeSlack, thread: str) -> None:
        self.gateway, self.slack, self.thread, self.n = gateway, slack, thread, 0

    async def say(self, text: str, replies: int = 1) -> list[str]:
        self.n += 1
        before = len(self.slack.messages)
        ts = f"{self.thread.split('.')[0]}.{self.n:06d}"
        body = samples.slack_message(text, channel="CFLOW", thread_ts=self.thread, ts=ts)
        assert await post(f"{self.gateway.url}/slack/events", body, slack_headers(SLACK_SECRET, body)) == 200
        messages = await self.slack.wait_for_messages(before + replies, timeout=20)
        return [m["text"] for m in messages[before:] if m.get("thread_ts") == self.thread]


async def test_the_ticket_flow_collects_reasks_and_sums_up_through_slack(
    services, slack, telegram, openai_fake, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    gw = await GatewayProcess("dev", env_for(services, slack, telegram, openai_fake, tmp_path)).start()
    thread = Thread(gw, slack, "1700000600.000001")
    try:
        assert await thread.say("hi, I have a problem with an order") == [ASK_ORDER]
        assert await thread.say("1042") == [f"That is not a valid order number, like A-1042. {ASK_ORDER}"]
        assert await thread.say("it is A-1042") == ["What went wrong with order A-1042?"]
        assert openai_fake.requests == []  # the order number and the branch needed no model
        assert await thread.say("it never showed up") == ["How can we reach you? (email or phone)"]
        assert await thread.say("ada@example.com") == [
            "Ticket opened for order A-1042 (missing): The parcel never arrived. "
            "We will contact you at ada@example.com."
        ]
    finally:
        assert await gw.terminate() == 0
    [request] = openai_fake.requests  # one model call in the whole flow: the free-text problem
    assert request["messages"][-1] == {"role": "user", "content": "it never showed up"}
    assert "You MUST NOT:\n- promise a refund or a delivery date" in request["messages"][0]["content"]
    _, redis, namespace = services
    store = RedisStore(redis, namespace)
    try:
        key = "slack:T0DEV:CFLOW:1700000600.000001"
        saved = FlowState.from_json(await store.get(state_key("ticket", key)))
        usage = await store.hall(conversation_usage_key("ticket", key))
    finally:
        await store.close()
    assert saved.done
    assert saved.data["contact"] == "ada@example.com"
    assert saved.v == 5  # one version per message
    assert int(usage["in"]) > 0  # the free-text step's tokens were counted
    assert int(usage["turns"]) == 1  # turns that spent no tokens add nothing to the usage hashes


async def test_flow_state_survives_a_consumer_killed_mid_flow(services, slack, telegram, openai_fake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = env_for(services, slack, telegram, openai_fake, tmp_path) | {"GATEWAY_LEASE_TTL": "2"}
    serve = await GatewayProcess("serve", env).start()
    first = await GatewayProcess("consume", env | {"GATEWAY_CONSUMER_ID": "c0"}, name="consume-0").start()
    second: GatewayProcess | None = None
    thread = Thread(serve, slack, "1700000700.000001")
    store = RedisStore(services[1], services[2])
    try:
        assert await thread.say("A-2001") == ["What went wrong with order A-2001?"]
        # Killed after its sender recorded the post: a kill between Slack's answer and that record would
        # post the reply again (the sender's at-least-once window, not the flow's).
        await eventually(
            lambda: store.get(sent_marker("slack:T0DEV:CFLOW:1700000700.000001:ticket:1")),
            until=lambda v: v is not None,
            what="the first reply's sent marker",
        )
        await first.kill()  # SIGKILL: nothing is flushed, the lease only expires
        second = await GatewayProcess("consume", env | {"GATEWAY_CONSUMER_ID": "c1"}, name="consume-1").start()
        # Continues at the problem step: "damaged" is taken from the text, the model writes the description,
        # and the branch says the damaged-parcel line before the contact question.
        assert await thread.say("It arrived damaged, the screen is cracked", replies=2) == [
            "Sorry it arrived damaged. Please keep the packaging until we are in touch.",
            "How can we reach you? (email or phone)",
        ]
        assert await thread.say("+44 20 7946 0958") == [
            "Ticket opened for order A-2001 (damaged): The screen is cracked. We will contact you at +44 20 7946 0958."
        ]
    finally:
        for proc in (second, first, serve):
            if proc is not None:
                await proc.terminate()
        await store.close()
    assert len(openai_fake.requests) == 1
