"""Named sessions and state without services: keys, names, the stored form, routes, the context's views."""

from __future__ import annotations

import pytest

from agents.context import State, history_key
from agents.memory import memory_key
from gateway.core import sessions
from gateway.core.config import RouteConfig
from gateway.core.events import Event, EventKind, ReplyAddress
from gateway.core.routing import Router
from gateway.core.store.memory import MemoryStore
from tests.unit.test_agent_tools import make_ctx

ADDRESS = ReplyAddress(platform="telegram", bot="default", channel="42")


def test_the_default_session_keeps_the_plain_keys_and_others_cannot_collide() -> None:
    assert history_key("a", "slack:T:C:1") == "hist:a:slack:T:C:1"  # what was stored before sessions
    assert memory_key("a", "slack:T:C:1") == "mem:a:slack:T:C:1"
    assert history_key("a", "slack:T:C:1", "ops") == "hist:a:@ops:slack:T:C:1"
    assert memory_key("a", "slack:T:C:1", "ops") == "mem:a:@ops:slack:T:C:1"
    # a conversation key starts with its platform's name, which starts with a letter: never with "@"
    with pytest.raises(ValueError, match="platform"):
        Event(platform="@ops", delivery_id="1", kind=EventKind.MESSAGE, conversation_key="k", reply_to=ADDRESS)


@pytest.mark.parametrize("name", ["", "Ops", "o ps", "-ops", "x" * 33, "ops:1", "../x"])
def test_session_names_are_refused_unless_plain(name: str) -> None:
    with pytest.raises(ValueError, match="session name"):
        sessions.check_name(name)


def test_state_round_trips_and_a_damaged_record_reads_as_empty() -> None:
    state = State({"secret": "s"}, {"step": 2})
    again = State.parse(state.dump())
    assert (dict(again), again.public) == ({"secret": "s"}, {"step": 2})
    assert State.parse(None) == {}
    for damaged in ("not json", "[1]", '{"private": 3, "public": "x"}'):
        assert sessions.parse_state(damaged) == ({}, {})
    with pytest.raises(ValueError, match="JSON cannot keep"):
        State({"when": object()}).dump()
    with pytest.raises(ValueError, match="JSON cannot keep"):
        State({}, {"n": float("nan")}).dump()


async def test_the_client_reads_only_the_public_part() -> None:
    store = MemoryStore("unit")
    key = "web:acme:1"
    await store.hput(sessions.record_key(key), sessions.state_field("ops"), State({"pin": 1}, {"step": 3}).dump())
    assert await sessions.public_state(store, key, "ops") == {"step": 3}
    assert await sessions.public_state(store, key) == {}


def test_a_route_pins_its_session_on_the_event() -> None:
    router = Router([RouteConfig(platform="telegram", agent="a", session="ops")], default_agent="echo")
    address = ReplyAddress(platform="telegram", bot="default", channel="42")
    event = Event(platform="telegram", delivery_id="1", kind=EventKind.MESSAGE, conversation_key="x", reply_to=address)
    assert router.apply(event).session == "ops"
    slack = event.model_copy(update={"platform": "slack", "reply_to": address.model_copy(update={"platform": "slack"})})
    assert router.apply(slack).session is None
    with pytest.raises(ValueError, match="session"):
        RouteConfig(platform="telegram", session="Not A Name")


async def test_another_session_is_a_view_and_a_switch_waits_for_the_next_turn() -> None:
    ctx = make_ctx()
    ops = ctx.session("ops")
    assert ops.session_name == "ops"
    assert ops.conversation_key == ctx.conversation_key
    assert ctx.session_name == "default"
    ctx.switch_session("ops")
    assert ctx.switch_to == "ops"
    assert ctx.session_name == "default"  # this turn stays where it began
    with pytest.raises(ValueError, match="session name"):
        ctx.switch_session("Not Ok")
