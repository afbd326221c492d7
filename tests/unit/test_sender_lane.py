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


def test_a_preview_from_this_process_goes_to_its_chats_lane() -> None:
    """A stream snapshot handed over in-process (no body: it never crossed the broker) shares its chat's lane
    with the final that comes through the broker, so the two are never sent at the same time."""
    from consumers.deadletter import DeadLetters
    from consumers.ratelimit import RateLimiter
    from gateway.core.bus.memory import MemoryBus
    from gateway.core.bus.topology import Topology
    from gateway.core.metrics import Metrics
    from gateway.core.publish import Publisher
    from gateway.core.store.memory import MemoryStore

    store, metrics = MemoryStore("unit"), Metrics()
    worker = OutboundWorker(
        {},
        store=store,
        limiter=RateLimiter(store, {}),
        dead=DeadLetters(Publisher(MemoryBus(Topology("unit")), metrics), metrics),
        metrics=metrics,
    )
    to = ReplyAddress(platform="slack", bot="T1", channel="C1")
    snapshot = OutboundMessage(id="s", event_id="e", conversation_key="k", action="stream", to=to, text="a", seq=1)
    final = snapshot.model_copy(update={"text": "ab", "seq": 2, "final": True})
    preview = Delivery(b"", {}, "", "local", "s", 0, _settle, prepared=snapshot)
    assert worker.arrive(preview) == worker.arrive(delivery(final.model_dump_json().encode())) == "slack:T1:C1"
