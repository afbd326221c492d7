"""``gateway purge [--yes]``: delete a whole namespace (queues, exchanges, Redis keys).

Without --yes it deletes nothing: it counts what is there (queues and the messages waiting in them,
dead letters, exchanges, Redis keys by kind) and says what --yes would delete, with exit status 1.
With --yes it deletes all of it and exit status is 0. Only GATEWAY_NAMESPACE is touched, never
another namespace on the same broker or Redis. Stop the namespace's serve and consume processes
first: a running gateway declares its queues again when it reconnects. Needs AMQP_URL and REDIS_URL.
"""

from __future__ import annotations

import argparse
from typing import Any

from gateway.commands.parsers import documented_parser
from gateway.core.bus.topology import Topology
from gateway.core.errors import ConfigError
from gateway.core.settings import Settings
from gateway.purge import (
    BrokerInventory,
    RedisInventory,
    broker_inventory,
    delete_broker,
    delete_redis,
    redis_inventory,
)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def describe(broker: BrokerInventory, redis: RedisInventory, dead_queue: str) -> list[str]:
    dead = broker.queues.get(dead_queue, (0, 0))[0]
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(redis.kinds.items()))
    lines = [
        f"  RabbitMQ: {_plural(len(broker.queues), 'queue')} holding {_plural(broker.messages, 'message')} "
        f"({_plural(dead, 'dead letter')}), {_plural(len(broker.exchanges), 'exchange')}",
        f"  Redis:    {_plural(redis.keys, 'key')}" + (f" ({kinds})" if kinds else ""),
    ]
    if broker.consumers:
        lines.append(
            f"  warning: {_plural(broker.consumers, 'consumer')} still attached: stop this namespace's gateways "
            "first, or they declare their queues again when they reconnect"
        )
    return lines


async def run_purge(settings: Settings, args: argparse.Namespace) -> int:
    if settings.amqp_url is None or settings.redis_url is None:
        raise ConfigError(
            "`gateway purge` needs AMQP_URL and REDIS_URL: it deletes the namespace's queues and exchanges from "
            "RabbitMQ and its keys from Redis (`gateway dev` without them keeps nothing after it exits)"
        )
    amqp, redis = settings.amqp_url.get_secret_value(), settings.redis_url.get_secret_value()
    topology = Topology(settings.namespace, settings.partitions)
    ns = repr(settings.namespace)
    if not args.yes:
        broker, keys = await broker_inventory(amqp, topology), await redis_inventory(redis, settings.namespace)
        if not broker.queues and not broker.exchanges and not keys.keys:
            print(f"namespace {ns} is empty: nothing to delete")
            return 0
        print(f"gateway purge --yes would delete everything of namespace {ns}:")
        print("\n".join(describe(broker, keys, topology.dead_queue)))
        print("nothing was deleted; run `gateway purge --yes` to delete it")
        return 1
    broker = await delete_broker(amqp, topology)
    keys = await delete_redis(redis, settings.namespace)
    print(f"deleted namespace {ns}:")
    print("\n".join(describe(broker, keys, topology.dead_queue)))
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = documented_parser(
        sub, "purge", help="delete a namespace's queues, exchanges and Redis keys (needs --yes)", doc=__doc__
    )
    p.add_argument("--yes", action="store_true", help="really delete (without it: only say what would go)")
    p.set_defaults(run=run_purge)
