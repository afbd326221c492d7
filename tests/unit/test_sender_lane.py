"""An outbound message is parsed once: when its lane is chosen, and kept on the delivery for its send."""

from __future__ import annotations

from consumers.outbound import OutboundWorker
from gateway.core.bus.base import Delivery
from gateway.core.events import OutboundMessage, ReplyAddress


async def _settle(_: str) -> None:
    return None


def delivery(body: bytes) -> Delivery:
    return Delivery(body, {}, "0", "t.outbound", "m1", 0, _settle)


def test_the_lane_is_the_chat_and_the_parsed_message_is_kept() -> None:
    message = OutboundMessage(
        id="o1",
        event_id="e1",
        conversation_key="telegram:b1:42",
        action="reply",
        to=ReplyAddress(platform="telegram", bot="b1", channel="42"),
        text="hi",
    )
    d = delivery(message.model_dump_json().encode())
    assert OutboundWorker.lane_key(d) == "telegram:b1:42"
    assert d.prepared == message


def test_an_undecodable_message_gets_its_own_lane_and_nothing_kept() -> None:
    d = delivery(b'{"to": 1}')
    assert OutboundWorker.lane_key(d) == "undecodable"
    assert d.prepared is None
