"""``gateway status [--json]``: queues, rates, consumers and their partitions, dead letters, reachability.

How each number is measured:

- depth (ready messages) and consumers of every queue: a passive declare each, at both ends of
  a sampling window (``--interval``, default 1 s; 0 skips rates);
- rates: during the window a tap (its own exclusive queue, like ``gateway tail``) counts what
  enters each queue; taken/s = entered/s - depth change/s;
- est. wait of a partition: depth / taken/s (Little's law), an estimate of how long an event
  arriving now waits before a consumer takes it; "stalled" when events wait and none was taken
  during the window (no consumer, or one stuck at its prefetch limit);
- consumers: the partition leases (``lease:{p}``) and live members (group ``consumers``) in Redis;
- serve instances: the live members of the group ``ingress`` (each ``gateway serve`` heartbeats into it);
- with a person: how many conversations are handed off (``gateway handoff``; one HGETALL of the
  ``handoffs`` index).

It does not peek at the oldest waiting event: RabbitMQ refuses ``basic.get`` on quorum queues
with single-active-consumer, and peeking with a consumer gives the message back with
``x-delivery-count`` + 1, which counts toward the dispatcher's redelivery limit (a ``watch gateway
status`` could dead-letter a waiting event). The exact wait of events that reached a consumer is
``gateway_queue_lag_seconds``; the estimate here covers the ones still in the queue.
With ``--usage`` the report also has the model tokens per agent and route, all time and today (UTC),
from the consumers' counters in Redis (gateway/commands/usage_report.py).
Exit status: 0 when RabbitMQ and Redis answer, 1 when either does not, 2 on bad configuration. With
``--strict`` (for scripts and probes) also 3 when something needs a person: no live consumer, no live serve
instance, an unowned or stalled partition, or dead letters; the report's ``problems`` lists which.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from gateway.commands.parsers import documented_parser
from gateway.commands.usage_report import format_usage, usage_report
from gateway.core import handoff
from gateway.core.bus.base import Bus, Delivery, QueueInfo
from gateway.core.bus.topology import Topology
from gateway.core.errors import ConfigError
from gateway.core.presence import INGRESS
from gateway.core.settings import Settings
from gateway.operators import BrokerUnreachable, format_age, format_partitions, open_broker, paint
from gateway.runtime import make_store

Role = Literal["dispatch", "outbound", "dead"]


@dataclass
class QueueStat:
    name: str
    role: Role
    partition: int | None
    messages: int
    consumers: int
    in_per_s: float | None = None
    taken_per_s: float | None = None
    est_wait_s: float | None = None
    stalled: bool = False


def queue_roles(topology: Topology) -> list[tuple[str, Role, int | None]]:
    out: list[tuple[str, Role, int | None]] = []
    for p in range(topology.partitions):
        out += [(topology.dispatch_queue(p), "dispatch", p), (topology.outbound_queue(p), "outbound", p)]
    return [*out, (topology.dead_queue, "dead", None)]


def queue_of(d: Delivery, topology: Topology) -> str | None:
    """Which queue of ours a tapped copy went to."""
    if d.exchange == topology.dead_exchange:
        return topology.dead_queue
    if not d.routing_key.isdigit():
        return None
    p = int(d.routing_key)
    if d.exchange == topology.events_exchange:
        return topology.dispatch_queue(p)
    if d.exchange == topology.outbound_exchange:
        return topology.outbound_queue(p)
    return None


def flow(
    before: dict[str, QueueInfo], after: dict[str, QueueInfo], entered: Counter[str], seconds: float, name: str
) -> tuple[float, float, float | None, bool]:
    """(entered/s, taken/s, est. wait, stalled) of one queue over a window."""
    in_rate = entered[name] / seconds
    depth = after[name].messages
    taken = max(0.0, in_rate - (depth - before[name].messages) / seconds)
    if depth == 0:
        return in_rate, taken, 0.0, False
    if taken == 0:
        return in_rate, taken, None, True
    return in_rate, taken, depth / taken, False


async def _depths(bus: Bus, names: Sequence[str]) -> tuple[float, dict[str, QueueInfo]]:
    start = time.monotonic()
    infos = await asyncio.gather(*(bus.queue_info(n) for n in names))
    return (start + time.monotonic()) / 2, {i.name: i for i in infos}


async def queue_stats(bus: Bus, interval: float) -> list[QueueStat]:
    roles = queue_roles(bus.topology)
    names = [name for name, _, _ in roles]
    if interval <= 0:
        _, now = await _depths(bus, names)
        return [QueueStat(n, r, p, now[n].messages, now[n].consumers) for n, r, p in roles]
    arrivals: list[tuple[float, str]] = []

    async def count(d: Delivery) -> None:
        name = queue_of(d, bus.topology)
        if name is not None:
            arrivals.append((time.monotonic(), name))

    tap = await bus.tap(bus.topology.tap_bindings(), count, max_length=100_000)
    try:
        t0, before = await _depths(bus, names)
        await asyncio.sleep(interval)  # the sampling window itself
        t1, after = await _depths(bus, names)
    finally:
        await tap.close()
    entered = Counter(name for at, name in arrivals if t0 <= at <= t1)
    stats = []
    for n, r, p in roles:
        in_rate, taken, wait, stalled = flow(before, after, entered, t1 - t0, n)
        stats.append(QueueStat(n, r, p, after[n].messages, after[n].consumers, in_rate, taken, wait, stalled))
    return stats


async def lease_view(settings: Settings) -> tuple[list[str], list[str | None], list[str], int | None, str | None]:
    """(live consumers, owner of each partition, live serve instances, conversations with a person, error)."""
    from consumers.leases import GROUP, lease_key  # the consumers' own naming, loaded only by `status`

    store = make_store(settings)
    try:
        if not await store.ping():
            return [], [], [], None, "Redis at REDIS_URL did not answer PING"
        members = await store.members(GROUP)
        owners = await store.lease_owners([lease_key(p) for p in range(settings.partitions)])
        human = len(await handoff.listed(store))
        return members, owners, sorted(await store.members(INGRESS)), human, None
    except Exception as exc:
        return [], [], [], None, f"Redis at REDIS_URL failed: {exc!r}"
    finally:
        await store.close()


def build_report(
    *,
    namespace: str,
    partitions: int,
    queues: list[QueueStat] | None,
    members: list[str],
    owners: list[str | None],
    broker_error: str | None,
    redis_error: str | None,
    interval: float,
    serve: list[str] | None = None,
    handed_off: int | None = None,
) -> dict[str, Any]:
    held: dict[str, list[int]] = {m: [] for m in members}
    for p, owner in enumerate(owners):
        if owner is not None:
            held.setdefault(owner, []).append(p)
    dispatch = [q for q in queues or [] if q.role == "dispatch"]
    waits = [q.est_wait_s for q in dispatch if q.est_wait_s is not None]
    dead = next((q.messages for q in queues or [] if q.role == "dead"), None)
    unowned = [p for p, o in enumerate(owners) if o is None] if redis_error is None else None
    stalled = [q.partition for q in dispatch if q.stalled and q.partition is not None]
    problems = [
        *([f"RabbitMQ unreachable: {broker_error}"] if broker_error else []),
        *([f"Redis unreachable: {redis_error}"] if redis_error else []),
        *(["no live consumer: events wait in their queues"] if redis_error is None and not members else []),
        *(["no live serve instance"] if redis_error is None and serve is not None and not serve else []),
        *([f"unowned partitions: {format_partitions(unowned)}"] if unowned and members else []),
        *([f"stalled partitions: {format_partitions(stalled)}"] if stalled else []),
        *([f"{dead} dead letters"] if dead else []),
    ]
    return {
        "ok": broker_error is None and redis_error is None,
        "problems": problems,
        "namespace": namespace,
        "partitions": partitions,
        "broker": {"ok": broker_error is None, "error": broker_error},
        "redis": {"ok": redis_error is None, "error": redis_error},
        "members": members,
        "serve": serve,
        "consumers": [{"id": c, "live": c in members, "partitions": ps} for c, ps in sorted(held.items())],
        "unowned": unowned,
        "queues": None if queues is None else [_queue_json(q, owners) for q in queues],
        "dead_letters": dead,
        "waiting_events": None if queues is None else sum(q.messages for q in dispatch),
        "est_wait_s": round(max(waits), 3) if waits else None,
        "stalled_partitions": stalled,
        "rate_window_s": interval if interval > 0 else None,
        "handed_off": handed_off,
    }


def _queue_json(q: QueueStat, owners: list[str | None]) -> dict[str, Any]:
    out = asdict(q)
    for k in ("in_per_s", "taken_per_s", "est_wait_s"):
        out[k] = None if out[k] is None else round(out[k], 3)
    out["owner"] = owners[q.partition] if q.partition is not None and q.partition < len(owners) else None
    return out


def _rate(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _wait(q: dict[str, Any]) -> str:
    return "stalled" if q["stalled"] else format_age(q["est_wait_s"]) if q["est_wait_s"] else "-"


def format_report(r: dict[str, Any], *, color: bool = False) -> list[str]:
    def state(part: dict[str, Any]) -> str:
        return paint("ok", "out", color) if part["ok"] else paint(f"UNREACHABLE  {part['error']}", "dead", color)

    lines = [
        f"namespace {r['namespace']!r}, {r['partitions']} partitions",
        f"  broker  {state(r['broker'])}",
        f"  redis   {state(r['redis'])}",
    ]
    serve = r.get("serve")
    if serve is not None:
        lines.append(f"serve: {len(serve)} live" if serve else paint("serve: no live serve instance", "warn", color))
        lines += [f"  {s}" for s in serve]
    if r["members"] or not r["redis"]["ok"]:
        lines.append(f"consumers: {len(r['members'])} live")
    else:
        lines.append(paint("consumers: no live consumer: events wait in their queues", "dead", color))
    for c in r["consumers"]:
        note = "" if c["live"] else paint("  (not a live member: lease expiring)", "warn", color)
        ps = c["partitions"]
        lines.append(f"  {c['id']:<20} {len(ps):>3} partitions  {format_partitions(ps)}{note}")
    if r.get("handed_off"):
        lines.append(f"with a person: {r['handed_off']} conversations  (gateway handoff --list)")
    if r["unowned"]:
        lines.append(paint(f"  unowned partitions: {format_partitions(r['unowned'])}", "warn", color))
    if r["queues"] is not None:
        lines += _queue_lines(r)
    return lines


def _queue_lines(r: dict[str, Any]) -> list[str]:
    window = f"rates over {r['rate_window_s']:g} s" if r["rate_window_s"] else "no rates (--interval 0)"
    by_p: dict[int, dict[str, dict[str, Any]]] = {}
    for q in r["queues"]:
        if q["partition"] is not None:
            by_p.setdefault(q["partition"], {})[q["role"]] = q
    w = max([5, *(len(str(q["owner"])) for q in r["queues"] if q["owner"])])
    head = f"    P  {'owner':<{w}} dispatch    in/s taken/s     wait   outbound    in/s"
    lines = [f"queues ({window}; wait = depth / taken, an estimate)", head]
    for p, qs in sorted(by_p.items()):
        d, o = qs["dispatch"], qs["outbound"]
        lines.append(
            f"  {p:>3}  {d['owner'] or '-'!s:<{w}} {d['messages']:>8} {_rate(d['in_per_s']):>7} "
            f"{_rate(d['taken_per_s']):>7} {_wait(d):>8}   {o['messages']:>8} {_rate(o['in_per_s']):>7}"
        )
    lines.append(f"dead letters: {r['dead_letters']}" + ("  (gateway dlq list)" if r["dead_letters"] else ""))
    wait = format_age(r["est_wait_s"]) if r["est_wait_s"] is not None else "-"
    stalled = f"; stalled partitions: {format_partitions(r['stalled_partitions'])}" if r["stalled_partitions"] else ""
    lines.append(f"waiting events: {r['waiting_events']}, longest est. wait {wait}{stalled}")
    return lines


async def collect(settings: Settings, interval: float) -> dict[str, Any]:
    leases = asyncio.create_task(lease_view(settings))
    queues: list[QueueStat] | None = None
    broker_error: str | None = None
    try:
        async with open_broker(settings, "status", timeout=10) as bus:
            queues = await queue_stats(bus, interval)
    except BrokerUnreachable as exc:
        broker_error = str(exc)
    except Exception as exc:  # a queue refused the passive declare, the connection dropped...
        broker_error = f"RabbitMQ failed while reading queues: {exc!r}"
    members, owners, serve, handed_off, redis_error = await leases
    return build_report(
        namespace=settings.namespace,
        partitions=settings.partitions,
        queues=queues,
        members=members,
        owners=owners,
        broker_error=broker_error,
        redis_error=redis_error,
        interval=interval,
        serve=serve if redis_error is None else None,
        handed_off=handed_off,
    )


async def run_status(settings: Settings, args: argparse.Namespace) -> int:
    if settings.amqp_url is None or settings.redis_url is None:
        raise ConfigError(
            "`gateway status` needs AMQP_URL and REDIS_URL: it reads the queues from RabbitMQ and the leases from "
            "Redis. Without them `gateway dev` keeps both inside its own process, where no other process can see them"
        )
    report = await collect(settings, args.interval)
    if getattr(args, "usage", False):
        report["usage"] = await usage_report(settings) if report["redis"]["ok"] else None
    if args.json:
        print(json.dumps(report))
    else:
        lines = format_report(report, color=sys.stdout.isatty())
        print("\n".join(lines + (format_usage(report["usage"]) if report.get("usage") else [])))
    if not report["ok"]:
        return 1
    return 3 if args.strict and report["problems"] else 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = documented_parser(
        sub,
        "status",
        help="queues, rates, consumers and partitions, dead letters (needs AMQP_URL and REDIS_URL)",
        doc=__doc__,
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 3 when something needs a person (no live consumer or serve instance, unowned or stalled "
        "partitions, dead letters); 1 still means a service is unreachable",
    )
    p.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="rate sampling window (default 1; 0 = no rates)"
    )
    p.add_argument(
        "--usage", action="store_true", help="also model tokens per agent and route, all time and today (UTC)"
    )
    p.set_defaults(run=run_status)
