"""Slack's assistant and agent surfaces end to end: `gateway dev` on RabbitMQ and Redis, the fake Slack
Web API reached through slack_sdk.

- Assistant threads: opening one gives its suggested prompts and title; while a turn runs the thread shows
  a status (the agent's own, then the typing loop's "is thinking…"), which is gone once the reply posts.
  A thread Slack does not know refuses the status; the reply still goes out and nothing is dead-lettered.
- Agent sessions (``GATEWAY_SLACK_STATUS=agent``): ``processing`` while the turn runs; the Stop button's
  ``agent_session_stopped`` stops it, the partial reply ends with the marker, the session goes ``active``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.core import samples
from tests.e2e.conftest import SLACK_SECRET, gateway_env
from tests.e2e.test_operators import gateway_cli
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.support.signing import slack_headers

pytestmark = pytest.mark.e2e
TEAM = "T0DEV"
CONFIG = """
[agents.assistant]
path = "tests.e2e.assistant_agent:agent"

[agents.thinker]
path = "tests.e2e.thinking_agent:agent"

[[routes]]
platform = "slack"
channel = "D0ASSIST"
agent = "assistant"
session_events = true

[[routes]]
platform = "slack"
channel = "C0AGENT"
agent = "thinker"
"""


async def deliver(gw: GatewayProcess, event: dict[str, Any]) -> None:
    envelope = {
        "type": "event_callback",
        "team_id": TEAM,
        "api_app_id": "A0DEV",
        "event_id": f"Ev{time.time_ns()}",
        "event_time": int(time.time()),
        "event": event,
    }
    body = json.dumps(envelope).encode()
    assert await post(f"{gw.url}/slack/events", body, slack_headers(SLACK_SECRET, body)) == 200


async def say(gw: GatewayProcess, text: str, *, channel: str, thread: str, ts: str) -> None:
    body = samples.slack_message(text, channel=channel, thread_ts=thread, ts=ts, team=TEAM, channel_type="im")
    assert await post(f"{gw.url}/slack/events", body, slack_headers(SLACK_SECRET, body)) == 200


async def test_an_assistant_thread_gets_prompts_a_title_and_a_status_until_the_reply(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Path
) -> None:
    thread, other = "1700000100.000001", "1700000200.000001"
    slack.open_thread("D0ASSIST", thread)  # the user opened it; `other` Slack has never seen
    env = gateway_env(
        slack,
        telegram,
        **service_env(services, config=CONFIG, tmp_path=tmp_path),
        GATEWAY_TYPING_EVERY="0.5",
        ASSISTANT_SECONDS="2",
    )
    gw = await GatewayProcess("dev", env).start()
    try:
        await deliver(
            gw,
            {
                "type": "assistant_thread_started",
                "assistant_thread": {
                    "user_id": "U0DEV",
                    "context": {"channel_id": "C0DEV", "team_id": TEAM},
                    "channel_id": "D0ASSIST",
                    "thread_ts": thread,
                },
                "event_ts": thread,
            },
        )
        await slack.wait_until(lambda: ("D0ASSIST", thread) in slack.titles, timeout=20, describe="the title")
        await say(gw, "flights to Oslo", channel="D0ASSIST", thread=thread, ts="1700000100.000002")
        await say(gw, "hotels", channel="D0ASSIST", thread=other, ts=other)
        await slack.wait_for_messages(2, timeout=20)
        await slack.wait_until(
            lambda: slack.status_log[-1:] == [("assistant.threads.setStatus", "D0ASSIST", thread, "")],
            timeout=10,
            describe="the status cleared at the end of the turn",
        )
        dead = await gateway_cli(gw.env, "dlq", "list", "--json")
    finally:
        assert await gw.terminate() == 0
    assert slack.prompts[("D0ASSIST", thread)] == {
        "prompts": [
            {"title": "Plan", "message": "Plan my week"},
            {"title": "Sum up", "message": "Sum up this channel"},
        ],
        "title": "Try",
    }
    assert slack.titles[("D0ASSIST", thread)] == "New chat"
    assert sorted(m["text"] for m in slack.messages) == ["found: flights to Oslo", "found: hotels"]
    shown = [s for (_, _, t, s) in slack.status_log if t == thread]
    assert shown[0] == "is looking it up…"  # the agent's own, at once
    assert "is thinking…" in shown  # the typing loop's, while it ran
    assert slack.statuses[("D0ASSIST", thread)] == ""
    calls = slack.calls
    reply = next(i for i, c in enumerate(calls) if c.method == "chat.postMessage" and c.args["thread_ts"] == thread)
    first_status = next(i for i, c in enumerate(calls) if c.method == "assistant.threads.setStatus")
    assert first_status < reply
    setter = [c for c in calls if c.method == "assistant.threads.setStatus" and c.args.get("channel_id") == "D0ASSIST"]
    loading = next(c for c in setter if c.args["status"] == "is looking it up…")
    assert loading.args["loading_messages"] == ["Reading…", "Thinking…"]
    refused = [c for c in setter if c.args["thread_ts"] == other]
    assert refused, "the unknown thread's status was tried"
    # refused while Slack did not know the thread; only the end-of-turn clear, after the reply created it
    assert [s for (_, _, t, s) in slack.status_log if t == other] in ([], [""])
    code, out, _ = dead
    assert (code, out.strip()) == (0, "")  # no dead letters: a refused status is best effort


async def test_the_stop_button_stops_an_agent_session_and_sets_it_active(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Path
) -> None:
    thread = "1700000300.000001"
    slack.open_thread("C0AGENT", thread)
    env = gateway_env(
        slack, telegram, **service_env(services, config=CONFIG, tmp_path=tmp_path), GATEWAY_SLACK_STATUS="agent"
    )
    gw = await GatewayProcess("dev", env).start()
    try:
        await say(gw, "slow report", channel="C0AGENT", thread=thread, ts=thread)
        await slack.wait_until(
            lambda: slack.sessions.get(("C0AGENT", thread)) == "processing", timeout=20, describe="processing"
        )
        await deliver(
            gw,
            {
                "type": "agent_session_stopped",
                "channel": "C0AGENT",
                "thread_ts": thread,
                "streaming_message_ts": [],
                "user": "U0DEV",
                "event_ts": f"{time.time():.6f}",
            },
        )
        [stopped] = await slack.wait_for_messages(1, timeout=20)
        await slack.wait_until(
            lambda: slack.sessions.get(("C0AGENT", thread)) == "active", timeout=10, describe="active again"
        )
        code, out, err = await gateway_cli(gw.env, "history", f"slack:{TEAM}:C0AGENT:{thread}", "--json")
    finally:
        assert await gw.terminate() == 0
    assert stopped["text"] == "thinking about slow report …(stopped)"
    assert [s for (m, _, _, s) in slack.status_log if m == "agents.sessions.setStatus"][-1] == "active"
    assert code == 0, err
    turns = json.loads(out)["agents"]["thinker"]["turns"]
    assert [(t["role"], t["interrupted"]) for t in turns] == [("user", "stop button"), ("assistant", "stop button")]
