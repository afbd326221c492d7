"""Operator items: decoding deliveries, filter matching, line formatting."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consumers.deadletter import dead_headers
from gateway.core.bus.base import Delivery
from gateway.core.bus.topology import Topology
from gateway.core.events import Event, EventKind, OutboundMessage, ReplyAddress, Sender
from gateway.core.publish import event_headers
from gateway.operators import (
    FilterError,
    Item,
    agent_of_outbound,
    excerpt,
    format_age,
    format_line,
    format_partitions,
    item_from_delivery,
    parse_filters,
)

TOPO = Topology("t", 16)
KEY = "slack:T1:C1:1700000000.000100"
ADDRESS = ReplyAddress(platform="slack", bot="T1", channel="C1", thread="1700000000.000100")


async def _settle(how: str) -> None:
    return None


def delivery(body: bytes, headers: dict[str, Any], exchange: str, key: str, message_id: str | None) -> Delivery:
    return Delivery(body, headers, key, exchange, message_id, 0, _settle)


def event(text: str = "hello there", **fields: Any) -> Event:
    base: dict[str, Any] = {
        "platform": "slack",
        "delivery_id": "Ev1",
        "kind": EventKind.MESSAGE,
        "conversation_key": KEY,
        "agent": "echo",
        "sender": Sender(id="U1", name="ada"),
        "text": text,
        "reply_to": ADDRESS,
        "received_at": datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
        "message_ref": "slack:T1:C1:1700000000.000100",
    }
    return Event(**{**base, **fields})


def inbound(e: Event) -> Delivery:
    p = str(TOPO.partition_of(e.conversation_key))
    return delivery(e.model_dump_json().encode(), event_headers(e), TOPO.events_exchange, p, e.id)


def outbound(e: Event, text: str = "echo: hello there") -> tuple[OutboundMessage, Delivery]:
    m = OutboundMessage(id=f"{e.message_ref}:echo:1", event_id=e.id, conversation_key=KEY, to=ADDRESS, text=text)
    headers = {"platform": "slack", "kind": "reply", "conversation_key": KEY, "event_id": e.id}
    p = str(TOPO.partition_of(KEY))
    return m, delivery(m.model_dump_json().encode(), headers, TOPO.outbound_exchange, p, m.id)


def dead(original: Delivery, *, stage: str = "dispatch", reason: str = "turn_failed") -> Delivery:
    headers = dead_headers(original, stage=stage, reason=reason, error="RuntimeError: boom", attempts=3)
    return delivery(original.body, headers, TOPO.dead_exchange, "", original.message_id)


def test_an_inbound_event_becomes_an_in_item() -> None:
    e = event()
    item = item_from_delivery(inbound(e), TOPO)
    assert item.direction == "in"
    assert (item.platform, item.kind, item.key, item.agent, item.sender) == ("slack", "message", KEY, "echo", "ada")
    assert item.text == "hello there"
    assert item.id == item.event_id == e.id
    assert item.at == e.received_at
    assert item.partition == TOPO.partition_of(KEY)


def test_an_outbound_message_becomes_an_out_item_with_its_agent() -> None:
    e = event()
    m, d = outbound(e)
    item = item_from_delivery(d, TOPO)
    assert item.direction == "out"
    assert (item.kind, item.agent, item.sender, item.event_id) == ("reply", "echo", "echo", e.id)
    assert item.text == "echo: hello there"
    assert item.at == m.created_at


def test_agent_of_outbound_reads_the_id_convention() -> None:
    assert agent_of_outbound("slack:T1:C1:17.1:support:2") == "support"
    assert agent_of_outbound("0123abcd:echo:1") == "echo"
    assert agent_of_outbound("no-convention") is None
    assert agent_of_outbound(None) is None


def test_a_dead_letter_carries_stage_reason_attempts_and_origin() -> None:
    original = inbound(event())
    item = item_from_delivery(dead(original), TOPO)
    assert item.direction == "dead"
    assert (item.stage, item.reason, item.attempts) == ("dispatch", "turn_failed", 3)
    assert item.error == "RuntimeError: boom"
    assert item.key == KEY
    assert item.text == "hello there"
    assert item.agent == "echo"
    assert item.partition == int(original.routing_key)
    assert item.at is not None
    assert item.at > datetime(2024, 5, 1, tzinfo=UTC)


def test_an_outbound_dead_letter_reads_the_outbound_body() -> None:
    _, d = outbound(event(), text="the reply")
    item = item_from_delivery(dead(d, stage="outbound", reason="send_failed"), TOPO)
    assert (item.direction, item.stage, item.kind, item.text, item.agent) == (
        "dead",
        "outbound",
        "reply",
        "the reply",
        "echo",
    )


def test_an_undecodable_body_still_shows_what_headers_say() -> None:
    d = delivery(b"\xff not json", {"platform": "slack", "conversation_key": KEY}, TOPO.events_exchange, "3", "m1")
    item = item_from_delivery(d, TOPO)
    assert (item.platform, item.key, item.partition, item.id) == ("slack", KEY, 3, "m1")
    assert item.text == "<undecodable body, 10 bytes>"


# ---------------------------------------------------------------- filters


def some(**fields: Any) -> Item:
    base: dict[str, Any] = {
        "direction": "in",
        "id": "e1",
        "platform": "slack",
        "kind": "message",
        "key": KEY,
        "agent": "echo",
        "sender": "U1",
        "text": "hi",
        "at": None,
        "event_id": "e1",
        "partition": 1,
    }
    return Item(**{**base, **fields})


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ([], True),
        (["platform=slack"], True),
        (["platform=telegram"], False),
        (["key=slack:T1:*"], True),
        (["key=slack:T2:*"], False),
        (["key=slack:T1"], False),  # a glob matches the whole key
        (["platform=telegram,slack"], True),
        (["platform=telegram", "platform=slack"], True),  # a repeated field means either
        (["platform=slack", "agent=support"], False),  # different fields must all match
        (["platform=slack", "kind=message", "key=slack:T1:*", "agent=echo"], True),
        (["kind!=typing"], True),
        (["kind!=mess*"], False),
        (["stage!=outbound"], True),  # a field the item lacks never excludes
        (["stage=dispatch"], False),  # ...and never matches
        (["dir=in"], True),
        (["direction=out"], False),
        (["agent=ECHO"], False),  # case-sensitive
        (["sender=U?"], True),
    ],
)
def test_filter_matching(words: list[str], expected: bool) -> None:
    assert parse_filters(words).matches(some()) is expected


def test_dead_letter_fields_filter() -> None:
    item = some(direction="dead", stage="outbound", reason="send_failed")
    assert parse_filters(["dir=dead", "stage=outbound", "reason=send_*"]).matches(item)
    assert not parse_filters(["reason=turn_failed"]).matches(item)


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("channel=C1", "unknown filter field 'channel'"),
        ("slack", "is not FIELD=GLOB"),
        ("platform=", "has no value"),
        ("dir=inbound", "dir must be in, out or dead"),
    ],
)
def test_bad_filters_say_what_is_accepted(word: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filters([word])


def test_an_empty_filter_is_falsy_and_matches_everything() -> None:
    f = parse_filters([])
    assert not f
    assert f.matches(some(platform=None, key=None))


# ---------------------------------------------------------------- printing


def test_one_readable_line_per_item() -> None:
    at = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    line = format_line(some(at=at, text="hello\n  world"))
    assert at.astimezone().strftime("%H:%M:%S.123") in line
    for part in ("in ", "slack", "message", KEY, "U1", '"hello world"'):
        assert part in line
    assert "\x1b[" not in line


def test_colours_only_when_asked() -> None:
    assert "\x1b[36m" in format_line(some(), color=True)


def test_a_dead_line_says_why() -> None:
    item = some(direction="dead", stage="dispatch", reason="turn_failed", attempts=2, error="RuntimeError: boom")
    line = format_line(item)
    assert "dead" in line
    assert "[dispatch turn_failed x2]" in line
    assert "RuntimeError: boom" in line


def test_text_is_cut_to_an_excerpt() -> None:
    assert excerpt("a" * 100, 10) == "a" * 9 + "…"
    assert excerpt("  short   text ") == "short text"


def test_json_has_every_field_and_the_time_it_was_seen() -> None:
    seen = datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC)
    at = seen - timedelta(milliseconds=5)
    data = json.loads(json.dumps(some(at=at).to_json(seen_at=seen)))
    assert data["direction"] == "in"
    assert data["key"] == KEY
    assert data["text"] == "hi"
    assert data["time"] == at.isoformat()
    assert data["seen_at"] == seen.isoformat()
    assert "reason" not in data
    dead_data = some(direction="dead", reason="turn_failed", attempts=1).to_json()
    assert dead_data["reason"] == "turn_failed"
    assert dead_data["attempts"] == 1


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.0123, "12ms"), (3.21, "3.2s"), (42, "42s"), (192, "3m12s"), (7500, "2h05m"), (2 * 86400, "2d00h")],
)
def test_ages(seconds: float | None, text: str) -> None:
    assert format_age(seconds) == text


def test_partition_ranges() -> None:
    assert format_partitions([0, 1, 2, 3, 8, 10, 11]) == "0-3,8,10-11"
    assert format_partitions([]) == "none"
