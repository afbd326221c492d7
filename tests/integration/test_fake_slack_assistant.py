"""The fake Slack's assistant and agent-session methods through slack_sdk: what Slack accepts, what it refuses,
and the gateway's Slack sender mapping its best-effort actions onto them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from connectors.slack.sender import SlackSender
from gateway.core.errors import SendError
from gateway.core.events import OutboundMessage, ReplyAddress
from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-assist"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN) as fake:
        yield fake


async def refused(call: object) -> str:
    with pytest.raises(SlackApiError) as exc:
        await call  # type: ignore[misc]
    return str(exc.value.response["error"])


async def test_the_methods_accept_known_threads_and_refuse_the_rest(slack: FakeSlack) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=slack.base_url)
    slack.open_thread("D1", "1.000001")
    where = {"channel_id": "D1", "thread_ts": "1.000001"}
    await client.assistant_threads_setStatus(**where, status="is thinking…", loading_messages=["a", "b"])
    assert slack.statuses[("D1", "1.000001")] == "is thinking…"
    await client.assistant_threads_setSuggestedPrompts(**where, prompts=[{"title": "t", "message": "m"}], title="T")
    await client.assistant_threads_setTitle(**where, title="Trip")
    await client.agents_sessions_setStatus(**where, status="processing")
    await client.agents_sessions_rename(**where, title="Trip 2")
    assert (slack.sessions[("D1", "1.000001")], slack.titles[("D1", "1.000001")]) == ("processing", "Trip 2")
    await client.chat_postMessage(channel="D1", thread_ts="1.000001", text="answer")
    assert slack.statuses[("D1", "1.000001")] == ""  # posting in the thread removed the status

    assert await refused(client.assistant_threads_setStatus(channel_id="D9", thread_ts="1.000001", status="x")) == (
        "channel_not_found"
    )
    assert await refused(client.assistant_threads_setTitle(channel_id="D1", thread_ts="9.9", title="x")) == (
        "invalid_thread_ts"
    )
    assert await refused(client.agents_sessions_setStatus(**where, status="thinking")) == "invalid_arguments"
    assert await refused(client.assistant_threads_setStatus(**where, status="x", loading_messages=["m"] * 11)) == (
        "invalid_arguments"
    )
    five = [{"title": str(i), "message": str(i)} for i in range(5)]
    assert await refused(client.assistant_threads_setSuggestedPrompts(**where, prompts=five)) == "invalid_arguments"
    assert await refused(client.agents_sessions_rename(**where, title=" ")) == "invalid_arguments"


def message(action: str, channel: str = "D1", thread: str | None = "1.000001", **kw: object) -> OutboundMessage:
    to = ReplyAddress(platform="slack", bot="T1", channel=channel, thread=thread)
    return OutboundMessage(id=f"m-{action}", event_id="e", conversation_key="k", action=action, to=to, **kw)  # type: ignore[arg-type]


async def test_the_sender_maps_status_prompts_title_and_done(slack: FakeSlack) -> None:
    slack.open_thread("D1", "1.000001")
    sender = SlackSender(TOKEN, slack.base_url)
    try:
        assert await sender.send(message("typing")) == {"method": "assistant.threads.setStatus"}
        await sender.send(message("prompts", extra={"prompts": [{"title": "t", "message": "m"}]}))
        await sender.send(message("title", text="Trip"))
        await sender.send(message("done"))
        assert "skipped" in await sender.send(message("typing", channel="C1"))  # assistant threads are DMs
        with pytest.raises(SendError, match="invalid_thread_ts"):  # best effort: the outbound worker logs it
            await sender.send(message("status", thread="7.7", text="x"))
    finally:
        await sender.close()
    assert slack.status_log == [
        ("assistant.threads.setStatus", "D1", "1.000001", "is thinking…"),
        ("assistant.threads.setStatus", "D1", "1.000001", ""),
    ]
    assert slack.titles == {("D1", "1.000001"): "Trip"}
    agent = SlackSender(TOKEN, slack.base_url, status_mode="agent")
    try:
        await agent.send(message("typing", channel="C1", thread=None))  # no thread: nothing to show
        slack.open_thread("C1", "2.000001")
        await agent.send(message("typing", channel="C1", thread="2.000001"))
        await agent.send(message("done", channel="C1", thread="2.000001"))
        await agent.send(
            message("prompts", channel="C1", thread="2.000001", extra={"prompts": [{"title": "a", "message": "b"}]})
        )
    finally:
        await agent.close()
    assert [s for (m, _, _, s) in slack.status_log if m == "agents.sessions.setStatus"] == ["processing", "active"]
    [prompts_call] = slack.calls_for("assistant.threads.setSuggestedPrompts")[-1:]
    assert "thread_ts" not in prompts_call.args  # agent apps must leave it out
