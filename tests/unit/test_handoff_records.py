"""Human handoff without services: the state records, the notices, the tool, the history marks, the config."""

from __future__ import annotations

import dataclasses
import json

import pytest

from agents import HANDOFF_TOOL, Agent, ModelTurn, ToolCall
from agents.context import Turn
from gateway.commands.history import render, turn_dict
from gateway.commands.status import format_report
from gateway.core import handoff, sessions
from gateway.core.config import HandoffConfig, load_config_file
from gateway.core.errors import ConfigError
from gateway.core.events import ReplyAddress
from gateway.core.store.memory import MemoryStore
from tests.unit.test_agent_tools import ScriptedModel, make_ctx
from tests.unit.test_operators_status import report

KEY = "slack:T1:C9:1700000000.000100"


async def test_a_handoff_is_recorded_once_listed_and_released() -> None:
    store = MemoryStore("unit")
    first, new = await handoff.hand_off(store, KEY, reason="refund", by="agent:support")
    second, again = await handoff.hand_off(store, KEY, reason="other", by="operator")
    assert new
    assert not again
    assert second == first  # a retried turn gets the same record, so the same notice id
    assert await handoff.current(store, KEY) == first
    await handoff.hand_off(store, "telegram:default:1", reason="vip", by="operator")
    assert [h.key for h in await handoff.listed(store)] == [KEY, "telegram:default:1"]
    assert await handoff.release(store, KEY) == first
    assert await handoff.current(store, KEY) is None
    assert await handoff.release(store, KEY) is None
    assert [h.key for h in await handoff.listed(store)] == ["telegram:default:1"]


def test_the_notice_names_the_conversation_links_slack_and_says_how_to_read_and_release() -> None:
    record = handoff.Handoff(KEY, "refund over the limit", "agent:support", 1700000000.5)
    text = handoff.notice_text(record)
    assert f"`{KEY}`" in text
    assert "refund over the limit" in text
    assert "agent:support" in text
    assert "https://slack.com/app_redirect?team=T1&channel=C9" in text
    assert "1700000000.000100" in text
    assert f"gateway history {KEY}" in text
    assert f"gateway handoff {KEY} --release" in text
    other = handoff.notice_text(handoff.Handoff("telegram:default:42", "x", "operator", 1.0))
    assert "slack.com" not in other
    assert "gateway history telegram:default:42" in other


def test_one_notice_per_target_with_ids_fixed_for_one_handoff() -> None:
    record = handoff.Handoff(KEY, "why", "operator", 1700000000.5)
    both = HandoffConfig(slack_channel="CHUMANS", webhook_url="https://ops.example.com/h", webhook_secret_env="S")
    slack, hook = handoff.notices(both, record, event_id="e1")
    assert slack.to.platform == "slack"
    assert slack.to.channel == "CHUMANS"
    assert slack.to.bot == "T1"
    assert slack.to.thread is None  # a new message in the channel, not a reply in some thread
    assert slack.conversation_key == "handoff:slack:T1:CHUMANS"  # one lane (and rate limit) per channel
    assert hook.extra["handoff"]["conversation_key"] == KEY
    assert hook.to.platform == "webhook"
    assert hook.to.bot == handoff.WEBHOOK_SIGNER
    assert hook.to.reply_url == "https://ops.example.com/h"
    assert hook.extra["handoff"]["state"] == "human"
    assert [m.id for m in handoff.notices(both, record, event_id="other")] == [slack.id, hook.id]
    released = handoff.notices(both, record, event_id="e1", released=True)
    assert {m.id for m in released}.isdisjoint({slack.id, hook.id})
    assert released[1].extra["handoff"]["state"] == "agent"
    assert handoff.notices(HandoffConfig(), record, event_id="e1") == []
    team = HandoffConfig(slack_channel="CHUMANS", slack_team="TOPS")
    assert handoff.notices(team, record, event_id="e1")[0].to.bot == "TOPS"


def test_the_handoff_section_refuses_a_webhook_without_its_secret(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "gateway.toml"
    path.write_text('[handoff]\nwebhook_url = "https://ops.example.com/h"\n')
    with pytest.raises(ConfigError, match="webhook_secret_env"):
        load_config_file(path)
    path.write_text('[handoff]\nslack_channel = "not a channel"\n')
    with pytest.raises(ConfigError, match="slack_channel"):
        load_config_file(path)


async def test_the_handoff_tool_asks_for_a_person_and_the_answer_still_goes_out() -> None:
    model = ScriptedModel(
        ModelTurn(None, [ToolCall("c1", "handoff", '{"reason": "wants a human"}')]), ModelTurn("a colleague answers")
    )
    agent = Agent("a", model=model, handoff=True)
    ctx = make_ctx("a person please")
    await agent.on_event(ctx, ctx.event)
    assert ctx.handoff_reason == "wants a human"
    assert ctx.replies == ["a colleague answers"]
    assert "handoff" not in Agent("b", model=model).tools  # only when asked for
    assert HANDOFF_TOOL.schema["function"]["parameters"]["required"] == ["reason"]


def test_kept_messages_are_marked_in_the_history_and_its_rendering() -> None:
    turn = Turn("user", "anyone?", "e1", "U1", at=1.0, handoff=True)
    assert Turn.from_json(turn.to_json()) == turn
    assert "handoff" not in json.loads(Turn("user", "hi", "e0").to_json())  # old records stay as they were
    assert turn_dict(turn)["handoff"] is True
    assert "[human] user U1" in "\n".join(render("support", "k", [turn]))


def test_status_shows_how_many_conversations_are_with_a_person() -> None:
    lines = format_report({**report(), "handed_off": 2})
    assert "with a person: 2 conversations  (gateway handoff --list)" in lines
    assert not any("with a person" in line for line in format_report({**report(), "handed_off": 0}))


ROOM = ReplyAddress(platform="slack", bot="T1", channel="C9", thread="1700000000.000100", message="1700000000.000200")


def test_a_record_written_before_the_reply_address_was_kept_still_reads() -> None:
    old = json.dumps({"key": KEY, "reason": "refund", "by": "operator", "since": 1700000000.5})
    record = handoff.Handoff.from_json(old)
    assert record.reply_to is None
    assert handoff.Handoff.from_json(record.to_json()) == record
    with_address = dataclasses.replace(record, reply_to=ROOM)
    assert handoff.Handoff.from_json(with_address.to_json()) == with_address


async def test_release_tells_the_conversation_at_its_latest_address_once() -> None:
    store = MemoryStore("unit")
    record, _ = await handoff.hand_off(store, KEY, reason="refund", by="agent:support", reply_to=ROOM)
    later = ROOM.model_copy(update={"message": "1700000000.000900"})
    await handoff.seen(store, KEY, later)
    released = await handoff.release(store, KEY)
    assert released is not None
    assert released.reply_to == later
    assert await handoff.release(store, KEY) is None
    assert await store.hget(sessions.record_key(KEY), handoff.TO_FIELD) is None  # nothing left behind
    [user] = handoff.notices(HandoffConfig(), released, event_id="e1", released=True)
    assert user.id == f"{record.notice_id}:released:conversation"
    assert user.to == later
    assert user.conversation_key == KEY  # the conversation's partition, behind its other replies
    assert user.text == "You're back with the assistant."
    assert handoff.notices(HandoffConfig(), released, event_id="e1") == []  # a handoff says nothing there
    assert handoff.notices(HandoffConfig(release_text=""), released, event_id="e1", released=True) == []
    custom = handoff.notices(HandoffConfig(release_text="The bot is back."), released, event_id="e2", released=True)
    assert [(m.id, m.text) for m in custom] == [(user.id, "The bot is back.")]


async def test_an_operator_handoff_nobody_wrote_in_has_no_conversation_notice() -> None:
    store = MemoryStore("unit")
    await handoff.hand_off(store, KEY, reason="VIP", by="operator")
    released = await handoff.release(store, KEY)
    assert released is not None
    assert released.reply_to is None
    assert handoff.notices(HandoffConfig(), released, event_id="e1", released=True) == []
