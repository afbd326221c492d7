"""``gateway handoff KEY [--reason TEXT] | KEY --release | --list [--json]``: hand a conversation to a person.

``gateway handoff KEY`` puts the conversation in ``human`` state (Redis, ``conv:{KEY}``): its events still
arrive in order and are kept in its history (``gateway history KEY`` marks them ``[human]``), but no agent
runs and nothing is answered. The ``[handoff]`` targets of gateway.toml (``slack_channel``, ``webhook_url``)
are notified through the outbound queue, once per handoff. ``--release`` gives the conversation back (the
next event goes to the agent again) and tells the same targets, and the user in the conversation itself
(``[handoff] release_text``, "" for nothing). ``--list`` shows every conversation that is
with a person. An agent hands off by itself with its ``handoff`` tool (``Agent(..., handoff=True)``).

Needs REDIS_URL, and AMQP_URL when ``[handoff]`` names a target or has a release_text (the default).
Exit status 0; 1 when Redis or RabbitMQ does not answer; 2 on bad configuration; 4 when ``--release``
names a conversation that is not handed off.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from gateway.commands.parsers import documented_parser
from gateway.core import handoff
from gateway.core.config import HandoffConfig
from gateway.core.errors import ConfigError, StoreUnavailable
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.settings import Settings
from gateway.operators import BrokerUnreachable, open_broker
from gateway.runtime import make_store

NOT_FOUND = 4


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def _notify(settings: Settings, config: HandoffConfig, record: handoff.Handoff, *, released: bool) -> int:
    messages = handoff.notices(config, record, event_id=record.notice_id, released=released)
    if not messages:
        return 0
    async with open_broker(settings, "handoff", timeout=10) as bus:
        publisher = Publisher(bus, Metrics())
        for message in messages:
            # A release that ran twice (two operators at once) publishes the same ids: the sender sends one.
            await publisher.outbound(message, recheck=released)
    return len(messages)


async def _list(settings: Settings, args: argparse.Namespace) -> int:
    store = make_store(settings)
    try:
        records = await handoff.listed(store)
    finally:
        await store.close()
    if args.json:
        print(json.dumps({"handoffs": [_record(r) for r in records]}))
    elif records:
        for r in records:
            print(f"{r.key}  since {_when(r.since)}  by {r.by}: {r.reason}")
    else:
        print("no conversation is with a person")
    return 0


def _record(r: handoff.Handoff) -> dict[str, Any]:
    return {"key": r.key, "reason": r.reason, "by": r.by, "since": r.since}


async def _change(settings: Settings, args: argparse.Namespace) -> int:
    config = settings.load_file().handoff
    if (config.slack_channel or config.webhook_url) and settings.amqp_url is None:
        raise ConfigError("`gateway handoff` needs AMQP_URL: [handoff] notices go out through the outbound queue")
    if args.release and config.release_text and settings.amqp_url is None:
        raise ConfigError("`gateway handoff --release` needs AMQP_URL: [handoff] release_text goes out as a reply")
    store = make_store(settings)
    try:
        if args.release:
            released = await handoff.release(store, args.key)
        else:
            record, new = await handoff.hand_off(
                store, args.key, reason=args.reason, by="operator", ttl=settings.history_ttl or None
            )
    finally:
        await store.close()
    if args.release:
        if released is None:
            print(f"{args.key} is not handed off: its agent already answers it", file=sys.stderr)
            return NOT_FOUND
        sent = await _notify(settings, config, released, released=True)
        print(f"{args.key} is back with its agent" + (f" ({sent} notice(s) queued)" if sent else ""))
        return 0
    if not new:
        print(f"{args.key} is already with a person (since {_when(record.since)}, by {record.by}: {record.reason})")
        return 0
    sent = await _notify(settings, config, record, released=False)
    where = f"{sent} notice(s) queued" if sent else "no [handoff] target in gateway.toml: nobody was notified"
    print(f"{args.key} is with a person now; its agent stays silent ({where})")
    return 0


async def run_handoff(settings: Settings, args: argparse.Namespace) -> int:
    if settings.redis_url is None:
        raise ConfigError("`gateway handoff` needs REDIS_URL: the conversation's state lives in Redis")
    if args.list:
        runner = _list
    elif args.key is None:
        raise ConfigError("`gateway handoff` needs KEY (or --list)")
    else:
        runner = _change
    try:
        return await runner(settings, args)
    except StoreUnavailable as exc:
        print(f"gateway handoff: Redis did not answer: {exc}", file=sys.stderr)
        return 1
    except BrokerUnreachable as exc:
        print(f"gateway handoff: {exc}; the state is changed but nobody was notified", file=sys.stderr)
        return 1


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = documented_parser(
        sub, "handoff", help="hand a conversation to a person (--release gives it back, --list)", doc=__doc__
    )
    p.add_argument("key", metavar="KEY", nargs="?", help="the conversation key, like slack:T1:C1:1700000000.000100")
    p.add_argument("--reason", default="an operator took over", help="why (shown in the notice)")
    p.add_argument("--release", action="store_true", help="give the conversation back to its agent")
    p.add_argument("--list", action="store_true", help="every conversation that is with a person")
    p.add_argument("--json", action="store_true", help="with --list: one JSON object")
    p.set_defaults(run=run_handoff)
