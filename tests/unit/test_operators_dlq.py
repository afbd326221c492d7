"""Dead-letter selection, the replay plan and its order rule, and replay's ack-after-confirm."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.deadletter import dead_headers
from gateway.commands.dlq_letters import Letter, borrow, selection
from gateway.commands.dlq_replay import ReplayRefused, Step, execute, plan_replay, replay_headers, replay_target
from gateway.core.bus.base import Delivery
from gateway.core.bus.topology import Topology
from gateway.core.errors import ConfigError, PublishError
from gateway.operators import item_from_delivery

TOPO = Topology("t", 16)
A = "slack:T1:C1:1.0"
B = "slack:T1:C2:2.0"


def letter(position: int, key: str | None, *, stage: str = "dispatch", msg_id: str | None = None) -> Letter:
    log: list[str] = []

    async def settle(how: str) -> None:
        log.append(how)

    headers: dict[str, Any] = {"platform": "slack", "kind": "message"}
    if key is not None:
        headers["conversation_key"] = key
    origin = TOPO.events_exchange if stage == "dispatch" else TOPO.outbound_exchange
    p = str(TOPO.partition_of(key or ""))
    original = Delivery(b'{"text": "x"}', headers, p, origin, msg_id or f"m{position}", 0, settle)
    dead = dead_headers(original, stage=stage, reason="turn_failed", error="boom", attempts=3)
    d = Delivery(original.body, dead, "", TOPO.dead_exchange, original.message_id, 0, settle)
    return Letter(d, item_from_delivery(d, TOPO), position)


def actions(steps: list[Step]) -> list[tuple[str, str]]:
    return [(s.letter.id, s.action) for s in steps]


def test_words_split_into_ids_and_filters() -> None:
    s = selection(["m1", "platform=slack", "m2"])
    assert s.ids == {"m1", "m2"}
    assert s.filter
    assert not s.empty
    assert selection([]).empty
    assert selection([], everything=True)(letter(0, A).item)


def test_all_and_a_selection_do_not_mix() -> None:
    with pytest.raises(ConfigError, match="--all"):
        selection(["m1"], everything=True)


def test_a_bad_filter_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="unknown filter field"):
        selection(["colour=red"])


def test_ids_and_filters_must_both_match() -> None:
    s = selection(["m0", "key=slack:T1:C1:*"])
    assert s(letter(0, A).item)
    assert not s(letter(1, A).item)
    assert not s(letter(0, B, msg_id="m0").item)


def test_dispatch_letters_go_back_to_the_events_exchange_at_their_partition() -> None:
    x = letter(0, A)
    assert replay_target(x.delivery.headers, x.item, TOPO) == (TOPO.events_exchange, str(TOPO.partition_of(A)))
    assert x.delivery.headers["x-origin-routing-key"] == str(TOPO.partition_of(A))  # the original routing key


def test_outbound_letters_go_back_to_the_outbound_exchange() -> None:
    x = letter(0, A, stage="outbound")
    assert replay_target(x.delivery.headers, x.item, TOPO) == (TOPO.outbound_exchange, str(TOPO.partition_of(A)))


def test_the_partition_is_recomputed_when_partitions_changed() -> None:
    x = letter(0, A)
    eight = Topology("t", 8)
    assert replay_target(x.delivery.headers, x.item, eight)[1] == str(eight.partition_of(A))


def test_without_a_key_the_origin_routing_key_is_used() -> None:
    x = letter(0, None)
    assert replay_target(x.delivery.headers, x.item, TOPO) == (TOPO.events_exchange, str(TOPO.partition_of("")))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x-stage": "ingress"}, "neither dispatch nor outbound"),
        ({"x-origin-exchange": "other.events"}, "not this namespace's"),
    ],
)
def test_foreign_letters_are_refused(change: dict[str, str], message: str) -> None:
    x = letter(0, A)
    with pytest.raises(ReplayRefused, match=message):
        replay_target({**x.delivery.headers, **change}, x.item, TOPO)


def test_everything_selected_is_replayed_in_queue_order() -> None:
    letters = [letter(0, A), letter(1, B), letter(2, A)]
    steps = plan_replay(letters, lambda _: True, TOPO)
    assert actions(steps) == [("m0", "replay"), ("m1", "replay"), ("m2", "replay")]


def test_a_letter_behind_an_older_letter_of_its_conversation_is_held_back() -> None:
    letters = [letter(0, A), letter(1, B), letter(2, A)]
    steps = plan_replay(letters, selection(["m1", "m2"]), TOPO)
    assert actions(steps) == [("m0", "keep"), ("m1", "replay"), ("m2", "hold")]
    assert "m0" in steps[2].note


def test_allow_reorder_replays_it_anyway() -> None:
    letters = [letter(0, A), letter(1, A)]
    steps = plan_replay(letters, selection(["m1"]), TOPO, allow_reorder=True)
    assert actions(steps) == [("m0", "keep"), ("m1", "replay")]


def test_a_refused_letter_holds_back_the_rest_of_its_conversation() -> None:
    bad = letter(0, A)
    bad.delivery.headers["x-stage"] = "mystery"
    steps = plan_replay([bad, letter(1, A), letter(2, B)], lambda _: True, TOPO)
    assert actions(steps) == [("m0", "refuse"), ("m1", "hold"), ("m2", "replay")]


def test_replay_headers_are_the_originals_plus_a_replay_count() -> None:
    x = letter(0, A)
    once = replay_headers(x.delivery.headers)
    assert once == {"platform": "slack", "kind": "message", "conversation_key": A, "replays": 1}
    assert replay_headers({**x.delivery.headers, "replays": 1})["replays"] == 2


class RecordingBus:
    """Only what ``execute`` uses: a confirmed publish, which can be made to fail."""

    def __init__(self, log: list[str], fail_on: str | None = None) -> None:
        self.topology = TOPO
        self.log = log
        self.fail_on = fail_on
        self.published: list[tuple[str, str, bytes, dict[str, Any], str | None]] = []

    async def publish(
        self, exchange: str, key: str, body: bytes, *, headers: dict[str, Any], message_id: str | None
    ) -> None:
        if message_id == self.fail_on:
            raise PublishError("RabbitMQ did not confirm", event_id=message_id)
        self.published.append((exchange, key, body, headers, message_id))
        self.log.append(f"confirmed {message_id}")


def tracked(x: Letter, log: list[str]) -> Letter:
    async def settle(how: str) -> None:
        log.append(f"{how} {x.id}")

    x.delivery._settle = settle
    return x


async def test_replay_acks_only_after_the_broker_confirmed() -> None:
    log: list[str] = []
    letters = [tracked(letter(i, k), log) for i, k in enumerate([A, B])]
    bus = RecordingBus(log)
    result = await execute(bus, plan_replay(letters, lambda _: True, TOPO))  # type: ignore[arg-type]
    assert log == ["confirmed m0", "ack m0", "confirmed m1", "ack m1"]
    assert [s.letter.id for s in result.replayed] == ["m0", "m1"]
    exchange, key, body, _, msg_id = bus.published[0]
    assert (exchange, key, body, msg_id) == (TOPO.events_exchange, str(TOPO.partition_of(A)), b'{"text": "x"}', "m0")


async def test_a_failed_publish_leaves_it_and_everything_after_it_in_the_queue() -> None:
    log: list[str] = []
    letters = [tracked(letter(i, k), log) for i, k in enumerate([A, B, A])]
    bus = RecordingBus(log, fail_on="m1")
    result = await execute(bus, plan_replay(letters, lambda _: True, TOPO))  # type: ignore[arg-type]
    assert log == ["confirmed m0", "ack m0"]
    assert [(s.letter.id, why) for s, why in result.failed] == [
        ("m1", "RabbitMQ did not confirm"),
        ("m2", "not attempted after an earlier failure"),
    ]
    assert not letters[1].delivery.settled
    assert not letters[2].delivery.settled


class QueueBus:
    """A dead-letter queue with RabbitMQ's quorum-queue give-back: a nack appends at the back."""

    def __init__(self, n: int) -> None:
        self.topology = TOPO
        self.ready: list[Delivery] = []
        self.log: list[str] = []
        for i in range(n):
            self.add(f"m{i}")

    def add(self, msg_id: str) -> None:
        d = letter(0, A, msg_id=msg_id).delivery

        async def settle(how: str) -> None:
            self.log.append(f"{how} {msg_id}")
            if how == "requeue":
                self.ready.append(d)

        d._settle = settle
        d.settled = False
        self.ready.append(d)

    async def get(self, queue: str) -> Delivery | None:
        assert queue == TOPO.dead_queue
        if not self.ready:
            return None
        d = self.ready.pop(0)
        d.settled = False
        return d

    def order(self) -> list[str | None]:
        return [d.message_id for d in self.ready]


async def test_borrow_takes_everything_and_gives_back_the_rest_in_order() -> None:
    bus = QueueBus(4)
    async with borrow(bus) as letters:  # type: ignore[arg-type]
        assert [x.id for x in letters] == ["m0", "m1", "m2", "m3"]
        assert bus.ready == []  # held: invisible to others
        await letters[1].delivery.ack()
    assert bus.order() == ["m0", "m2", "m3"]


async def test_letters_failing_while_others_are_held_stay_behind_them() -> None:
    bus = QueueBus(3)
    async with borrow(bus) as letters:  # type: ignore[arg-type]
        assert len(letters) == 3
        bus.add("new")
    assert bus.order() == ["m0", "m1", "m2", "new"]


async def test_borrow_gives_letters_back_when_the_caller_fails() -> None:
    bus = QueueBus(2)
    with pytest.raises(RuntimeError, match="boom"):
        await _fail_inside(bus)
    assert bus.order() == ["m0", "m1"]


async def _fail_inside(bus: QueueBus) -> None:
    async with borrow(bus):  # type: ignore[arg-type]
        raise RuntimeError("boom")


def test_replay_follows_failure_time_not_queue_position() -> None:
    first, second = letter(0, A), letter(1, A)
    first.delivery.headers["x-failed-at"] = "2024-05-01T12:00:00+00:00"
    second.delivery.headers["x-failed-at"] = "2024-05-01T12:00:01+00:00"
    swapped = [
        Letter(second.delivery, item_from_delivery(second.delivery, TOPO), 0),
        Letter(first.delivery, item_from_delivery(first.delivery, TOPO), 1),
    ]
    steps = plan_replay(swapped, selection(["m1"]), TOPO)  # m0 failed first but sits behind m1
    assert actions(steps) == [("m0", "keep"), ("m1", "hold")]


def test_list_and_show_read_well() -> None:
    from datetime import UTC, datetime

    from gateway.commands.dlq_render import list_lines, show_lines

    x = letter(0, A)
    now = datetime.now(UTC)
    header, row = list_lines([x], now)
    assert header.split()[:4] == ["ID", "AGE", "STAGE", "REASON"]
    assert row.split()[:6] == ["m0", row.split()[1], "dispatch", "turn_failed", "3", "slack"]
    shown = "\n".join(show_lines(x, now))
    assert "reason:       turn_failed" in shown
    assert f"origin:       {TOPO.events_exchange} key {TOPO.partition_of(A)}" in shown
    assert '"text": "x"' in shown


async def test_dlq_needs_the_broker() -> None:
    import argparse

    from gateway.commands.dlq import run_dlq
    from gateway.core.settings import Settings

    with pytest.raises(ConfigError, match="needs AMQP_URL"):
        await run_dlq(Settings(), argparse.Namespace(action="list", words=[], json=False, limit=0))
