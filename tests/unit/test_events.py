"""The envelopes: frozen, versioned, JSON round-trips, and which events start a turn."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gateway.core import events
from gateway.core.events import CONVERSATIONAL, SCHEMA_VERSION, Event, EventKind, OutboundMessage, ReplyAddress, Sender

ADDRESS = ReplyAddress(platform="slack", bot="T111", channel="C111", thread="1.0", message="2.0", user="W1")


def make(**kw: Any) -> Event:
    fields: dict[str, Any] = {
        "platform": "slack",
        "delivery_id": "Ev1",
        "kind": EventKind.MESSAGE,
        "conversation_key": "slack:T111:C111:1.0",
        "reply_to": ADDRESS,
        "text": "hi",
    }
    fields.update(kw)
    return Event(**fields)


def test_event_is_frozen() -> None:
    event = make()
    with pytest.raises(ValidationError):
        event.text = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        event.reply_to.channel = "C999"  # type: ignore[misc]
    assert event.text == "hi"


def test_schema_version_is_one() -> None:
    assert SCHEMA_VERSION == 1
    assert make().schema_version == 1
    message = OutboundMessage(id="o1", event_id="e1", conversation_key="k", to=ADDRESS, text="hi")
    assert message.schema_version == 1


def test_json_round_trip_is_equal() -> None:
    event = make(
        sender=Sender(id="W1", name="ann"),
        agent="echo",
        busy="collect",
        skip_reason=None,
        message_ref="slack:T111:C111:2.0",
        raw={"event": {"type": "message", "unknown_future_field": [1, {"x": None}]}},
    )
    again = Event.model_validate_json(event.model_dump_json())
    assert again == event
    assert again.kind is EventKind.MESSAGE
    assert again.received_at == event.received_at
    assert again.raw["event"]["unknown_future_field"] == [1, {"x": None}]


def test_outbound_round_trip_is_equal() -> None:
    message = OutboundMessage(id="o1", event_id="e1", conversation_key="k", to=ADDRESS, action="react", emoji="eyes")
    assert OutboundMessage.model_validate_json(message.model_dump_json()) == message


def test_unknown_fields_in_an_envelope_are_ignored() -> None:
    event = make()
    data = event.model_dump(mode="json")
    data["added_in_a_later_version"] = True
    assert Event.model_validate(data) == event


@pytest.mark.parametrize("kind", list(EventKind))
def test_triggers_turn_follows_the_kind(kind: EventKind) -> None:
    assert make(kind=kind).triggers_turn is (kind in CONVERSATIONAL)


def test_conversational_kinds() -> None:
    # SESSION (Slack assistant thread opened...) is conversational; its parser marks it skipped unless a route
    # asks for session events (gateway/core/routing.py).
    assert {EventKind.MESSAGE, EventKind.MENTION, EventKind.COMMAND, EventKind.ACTION, EventKind.SESSION} == (
        CONVERSATIONAL
    )


@pytest.mark.parametrize("kind", sorted(CONVERSATIONAL))
def test_a_skip_reason_stops_any_turn(kind: EventKind) -> None:
    assert not make(kind=kind, skip_reason="bot message").triggers_turn


def test_new_id_sorts_by_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([1_700_000_000_000_000_000 + i * 1_000_000 for i in range(50)])
    monkeypatch.setattr(events.time, "time_ns", lambda: next(clock))
    ids = [events.new_id() for _ in range(50)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 50


def test_new_id_is_unique_within_one_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events.time, "time_ns", lambda: 1_700_000_000_000_000_000)
    ids = {events.new_id() for _ in range(1000)}
    assert len(ids) == 1000


def test_new_id_shape() -> None:
    new = events.new_id()
    assert len(new) == 32
    int(new, 16)


def test_events_get_distinct_ids() -> None:
    assert make().id != make().id
