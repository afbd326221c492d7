"""``gateway status``: rates from a window, the report, and how it prints."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from gateway.commands.status import QueueStat, build_report, flow, format_report, queue_of, queue_roles
from gateway.core.bus.base import Delivery, QueueInfo
from gateway.core.bus.topology import Topology

TOPO = Topology("t", 4)


def infos(**depths: int) -> dict[str, QueueInfo]:
    return {name: QueueInfo(name, depth, 1) for name, depth in depths.items()}


@pytest.mark.parametrize(
    ("before", "after", "entered", "expected"),
    [
        (0, 0, 10, (10.0, 10.0, 0.0, False)),  # healthy: everything taken at once
        (0, 4, 10, (10.0, 6.0, 4 / 6, False)),  # falling behind: wait = depth / taken
        (5, 5, 0, (0.0, 0.0, None, True)),  # waiting and nothing taken: stalled
        (8, 2, 0, (0.0, 6.0, 2 / 6, False)),  # draining a backlog
    ],
)
def test_flow_over_a_window(before: int, after: int, entered: int, expected: tuple[Any, ...]) -> None:
    got = flow(infos(q=before), infos(q=after), Counter({"q": entered}), 1.0, "q")
    assert got[:2] == expected[:2]
    assert got[3] == expected[3]
    if expected[2] is None:
        assert got[2] is None
    else:
        assert got[2] == pytest.approx(expected[2])


async def _noop(how: str) -> None:
    return None


def tapped(exchange: str, key: str) -> Delivery:
    return Delivery(b"{}", {}, key, exchange, "m", 0, _noop)


def test_tapped_copies_map_to_their_queue() -> None:
    assert queue_of(tapped(TOPO.events_exchange, "2"), TOPO) == TOPO.dispatch_queue(2)
    assert queue_of(tapped(TOPO.outbound_exchange, "3"), TOPO) == TOPO.outbound_queue(3)
    assert queue_of(tapped(TOPO.dead_exchange, ""), TOPO) == TOPO.dead_queue
    assert queue_of(tapped("elsewhere", "1"), TOPO) is None


def test_every_queue_is_listed() -> None:
    roles = queue_roles(TOPO)
    assert len(roles) == 2 * 4 + 1
    assert roles[-1] == (TOPO.dead_queue, "dead", None)


def stats(depths: dict[int, int], *, stalled: tuple[int, ...] = (), dead: int = 0) -> list[QueueStat]:
    out = []
    for name, role, p in queue_roles(TOPO):
        depth = depths.get(p, 0) if role == "dispatch" and p is not None else 0
        wait = None if p in stalled else (depth / 2.0 if role == "dispatch" else 0.0)
        out.append(QueueStat(name, role, p, dead if role == "dead" else depth, 1, 1.0, 2.0, wait, p in stalled))
    return out


def report(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "namespace": "t",
        "partitions": 4,
        "queues": stats({1: 6, 2: 2}, stalled=(3,), dead=5),
        "members": ["c0", "c1"],
        "owners": ["c0", "c1", "c0", None],
        "broker_error": None,
        "redis_error": None,
        "interval": 1.0,
    }
    return build_report(**{**args, **overrides})


def test_the_report_groups_partitions_by_consumer() -> None:
    r = report(owners=["c0", "c1", "c0", "gone"])
    assert r["ok"] is True
    assert r["consumers"] == [
        {"id": "c0", "live": True, "partitions": [0, 2]},
        {"id": "c1", "live": True, "partitions": [1]},
        {"id": "gone", "live": False, "partitions": [3]},
    ]
    assert r["unowned"] == []


def test_the_report_counts_waiting_and_dead() -> None:
    r = report()
    assert r["unowned"] == [3]
    assert r["dead_letters"] == 5
    assert r["waiting_events"] == 8
    assert r["est_wait_s"] == 3.0
    assert r["stalled_partitions"] == [3]
    by_name = {q["name"]: q for q in r["queues"]}
    assert by_name[TOPO.dispatch_queue(1)]["owner"] == "c1"
    assert by_name[TOPO.dispatch_queue(3)]["owner"] is None


def test_an_unreachable_service_makes_the_report_not_ok() -> None:
    r = report(queues=None, broker_error="refused")
    assert r["ok"] is False
    assert r["broker"] == {"ok": False, "error": "refused"}
    assert r["queues"] is None
    assert r["dead_letters"] is None
    r = report(members=[], owners=[], redis_error="no PING")
    assert r["ok"] is False
    assert r["unowned"] is None


def test_the_printed_report() -> None:
    text = "\n".join(format_report(report()))
    assert "broker  ok" in text
    assert "redis   ok" in text
    assert "c0" in text
    assert "2 partitions  0,2" in text
    assert "unowned partitions: 3" in text
    assert "dead letters: 5" in text
    assert "stalled partitions: 3" in text
    text = "\n".join(format_report(report(queues=None, broker_error="refused")))
    assert "UNREACHABLE  refused" in text


async def test_status_needs_both_services() -> None:
    import argparse

    from gateway.commands.status import run_status
    from gateway.core.errors import ConfigError
    from gateway.core.settings import Settings

    with pytest.raises(ConfigError, match="needs AMQP_URL and REDIS_URL"):
        await run_status(Settings(), argparse.Namespace(json=True, interval=0.0))


def test_problems_name_what_needs_a_person() -> None:
    assert report(serve=["h-1@127.0.0.1:8080"])["problems"] == [
        "unowned partitions: 3",
        "stalled partitions: 3",
        "5 dead letters",
    ]
    quiet = report(members=[], owners=[None] * 4, serve=[], queues=stats({}))
    assert quiet["problems"] == ["no live consumer: events wait in their queues", "no live serve instance"]
    text = "\n".join(format_report(quiet))
    assert "consumers: no live consumer: events wait in their queues" in text
    assert "serve: no live serve instance" in text
    assert report(queues=None, broker_error="refused")["problems"][0] == "RabbitMQ unreachable: refused"
