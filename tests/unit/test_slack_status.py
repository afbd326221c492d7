"""Slack's assistant and agent surfaces: session events in, status / prompts / title calls out."""

from __future__ import annotations

from typing import Any

import pytest

from agents.context import SessionContext, TurnContext
from connectors.slack.parse import event_from_callback
from connectors.slack.status import StatusMode, call_for
from gateway.core.config import RouteConfig
from gateway.core.events import EventKind, OutboundMessage, ReplyAddress
from gateway.core.routing import Router
from gateway.core.store.memory import MemoryStore

DM = ReplyAddress(platform="slack", bot="T1", channel="D123", thread="1729999327.187299")


def envelope(event: dict[str, Any]) -> dict[str, Any]:
    return {"type": "event_callback", "team_id": "T1", "event_id": "Ev1", "event": event}


# The payloads as docs.slack.dev/reference/events/... shows them (December 2026).
THREAD_STARTED = {
    "type": "assistant_thread_started",
    "assistant_thread": {
        "user_id": "U123ABC456",
        "context": {"channel_id": "C123ABC456", "team_id": "T07XY8FPJ5C", "enterprise_id": "E480293PS82"},
        "channel_id": "D123ABC456",
        "thread_ts": "1729999327.187299",
    },
    "event_ts": "1715873754.429808",
}
CONTEXT_CHANGED = {**THREAD_STARTED, "type": "assistant_thread_context_changed"}
APP_CONTEXT = {
    "type": "app_context_changed",
    "context": {"entities": [{"type": "slack#/types/channel_id", "value": "C01234ABDCE", "team_id": "T0ABCDE6543"}]},
}
HOME_MESSAGES = {"type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "messages", "event_ts": "1.2"}
HOME_TAB = {**HOME_MESSAGES, "tab": "home"}


@pytest.mark.parametrize("payload", [THREAD_STARTED, CONTEXT_CHANGED])
def test_assistant_thread_events_are_session_events_of_their_thread(payload: dict[str, Any]) -> None:
    ev = event_from_callback(envelope(payload))
    assert ev.kind == EventKind.SESSION
    assert ev.conversation_key == "slack:T1:D123ABC456:1729999327.187299"
    assert (ev.sender.id if ev.sender else None, ev.text, ev.skip_reason) == ("U123ABC456", "", "session event")
    assert ev.raw["event"]["assistant_thread"]["context"]["channel_id"] == "C123ABC456"


def test_app_context_and_the_messages_tab_are_session_events_the_home_tab_is_not() -> None:
    assert event_from_callback(envelope(APP_CONTEXT)).kind == EventKind.SESSION
    assert event_from_callback(envelope(HOME_MESSAGES)).skip_reason == "session event"
    assert event_from_callback(envelope(HOME_TAB)).skip_reason == "event type app_home_opened"


def test_session_events_start_turns_only_where_the_route_asks() -> None:
    ev = event_from_callback(envelope(THREAD_STARTED))
    assert not Router([], "echo").apply(ev).triggers_turn
    routed = Router([RouteConfig(platform="slack", session_events=True)], "echo").apply(ev)
    assert routed.triggers_turn
    home = Router([RouteConfig(platform="slack", session_events=True)], "echo").apply(
        event_from_callback(envelope(HOME_TAB))
    )
    assert not home.triggers_turn


def message(action: str, to: ReplyAddress = DM, **kw: Any) -> OutboundMessage:
    return OutboundMessage(id="m", event_id="e", conversation_key="k", action=action, to=to, **kw)  # type: ignore[arg-type]


WHERE = {"channel_id": "D123", "thread_ts": "1729999327.187299"}


@pytest.mark.parametrize(
    ("mode", "action", "kw", "expected"),
    [
        ("assistant", "typing", {}, ("assistant.threads.setStatus", {"status": "is thinking…"})),
        (
            "assistant",
            "status",
            {"text": "is searching…", "extra": {"loading_messages": ["a", "b"]}},
            ("assistant.threads.setStatus", {"status": "is searching…", "loading_messages": ["a", "b"]}),
        ),
        ("assistant", "done", {}, ("assistant.threads.setStatus", {"status": ""})),
        ("assistant", "title", {"text": "Trip"}, ("assistant.threads.setTitle", {"title": "Trip"})),
        ("agent", "typing", {}, ("agents.sessions.setStatus", {"status": "processing"})),
        ("agent", "status", {"text": "Suspended"}, ("agents.sessions.setStatus", {"status": "suspended"})),
        ("agent", "status", {"text": "is searching…"}, ("agents.sessions.setStatus", {"status": "processing"})),
        ("agent", "done", {}, ("agents.sessions.setStatus", {"status": "active"})),
        ("agent", "title", {"text": "Trip"}, ("agents.sessions.rename", {"title": "Trip"})),
        ("off", "typing", {}, None),
        ("off", "title", {"text": "Trip"}, ("assistant.threads.setTitle", {"title": "Trip"})),
    ],
)
def test_each_action_is_one_documented_call(
    mode: StatusMode, action: str, kw: dict[str, Any], expected: tuple[str, dict[str, Any]] | None
) -> None:
    got = call_for(mode, message(action, **kw))
    assert got == (None if expected is None else (expected[0], WHERE | expected[1]))


def test_prompts_are_the_same_call_in_every_mode_and_nothing_goes_out_without_a_thread() -> None:
    prompts = [{"title": "Plan", "message": "Plan my week"}]
    for mode in ("assistant", "off"):
        got = call_for(mode, message("prompts", extra={"prompts": prompts, "title": "Try"}))  # type: ignore[arg-type]
        assert got == ("assistant.threads.setSuggestedPrompts", WHERE | {"prompts": prompts, "title": "Try"})
    # agent apps: no thread_ts ("including it in a call for an agent app will cause the call to silently fail")
    got = call_for("agent", message("prompts", extra={"prompts": prompts}))
    assert got == ("assistant.threads.setSuggestedPrompts", {"channel_id": "D123", "prompts": prompts})
    channel = ReplyAddress(platform="slack", bot="T1", channel="C9", thread="1.2")
    assert call_for("assistant", message("typing", to=channel)) is None  # assistant threads are DMs
    assert call_for("agent", message("typing", to=channel)) is not None  # agent sessions live anywhere
    assert call_for("agent", message("typing", to=channel.model_copy(update={"thread": None}))) is None


async def test_the_tools_send_at_once_and_mark_the_status_shown() -> None:
    sent: list[OutboundMessage] = []

    async def send_now(m: OutboundMessage) -> None:
        sent.append(m)

    ev = Router([], "echo").apply(event_from_callback(envelope(THREAD_STARTED)))
    ctx = TurnContext(
        SessionContext("a", ev.conversation_key, MemoryStore("t")), [ev], history_window=5, send_now=send_now
    )
    await ctx.suggest_prompts([(f"t{i}", f"m{i}") for i in range(6)], title="Ideas")
    await ctx.set_title("x" * 300)
    assert not ctx.status_shown
    await ctx.set_status("is reading…", loading_messages=[str(i) for i in range(12)])
    assert ctx.status_shown
    assert [m.action for m in sent] == ["prompts", "title", "status"]
    assert len(sent[0].extra["prompts"]) == 4
    assert len(sent[1].text) == 200
    assert len(sent[2].extra["loading_messages"]) == 10
    assert ctx.outbox == []
    with pytest.raises(ValueError, match="title is empty"):
        await ctx.set_title("  ")
    with pytest.raises(ValueError, match="at least one"):
        await ctx.suggest_prompts([])
