"""Values that reach headers, keys, metric labels and logs are bounded (gateway/core/bounds.py)."""

from __future__ import annotations

import pytest

from connectors.telegram.parse import event_from_update
from gateway.core.bounds import MAX_ID, MAX_KEY, SKIP_LABELS, FieldTooLong, check_event, clip, skip_label
from gateway.core.events import Event, EventKind, ReplyAddress, Sender


def event(**kw: object) -> Event:
    to = kw.pop("reply_to", ReplyAddress(platform="webhook", bot="shop", channel="cus_1"))
    fields: dict[str, object] = {
        "platform": "webhook",
        "delivery_id": "msg_1",
        "kind": EventKind.MESSAGE,
        "conversation_key": "webhook:shop:cus_1",
        "reply_to": to,
        **kw,
    }
    return Event.model_validate(fields)


def test_normal_events_pass() -> None:
    check_event(event(sender=Sender(id="u1", name="Ann")))


@pytest.mark.parametrize(
    ("fields", "what"),
    [
        ({"conversation_key": "k" * (MAX_KEY + 1)}, "the conversation key"),
        ({"delivery_id": "d" * (MAX_ID + 1)}, "the delivery id"),
        ({"reply_to": ReplyAddress(platform="slack", bot="T1", channel="C1", thread="1" * (MAX_ID + 1))}, "the thread"),
        ({"sender": Sender(id="u" * (MAX_ID + 1))}, "the sender id"),
    ],
)
def test_an_over_long_value_is_a_400_naming_it(fields: dict[str, object], what: str) -> None:
    with pytest.raises(FieldTooLong) as caught:
        check_event(event(**fields))
    assert caught.value.status == 400
    assert caught.value.reason.startswith(what + " is ")
    assert len(caught.value.reason) < 100, "the value itself is not in the message"


def test_an_unknown_telegram_update_type_gets_a_fixed_label() -> None:
    update = {"update_id": 9, "x" * 5000: {"anything": 1}}
    got = event_from_update("default", update)
    assert got.skip_reason == "unsupported update"
    assert skip_label(got.skip_reason, str(got.kind)) == "unsupported update"


def test_skip_labels_come_from_a_fixed_set() -> None:
    assert skip_label("event type " + "z" * 900, "other") == "other"
    assert skip_label(None, "edit") == "edit"
    assert {skip_label(r, "other") for r in ["edit", "no text", "what?", None]} <= SKIP_LABELS | {"other"}


def test_clip_keeps_log_fields_short() -> None:
    assert clip("short") == "short"
    assert len(clip("y" * 10_000)) < 100
