"""The per-turn read that handoff and sessions add to a turn, on its own (real Redis, no AMQP, no HTTP).

    python bench/sessions/conv_read.py [--keys 2000] [--rounds 3]

Every turn now starts with one ``HMGET conv:{KEY} handoff active state:{session}`` through the product's
``RedisStore`` (its auto-pipeline batches what is queued in one loop iteration). Printed for comparison: a
single ``GET`` (the cost of one more plain command), and the first version of this change, a ``GET`` of a
handoff key plus an ``HGETALL`` of the conversation's hash. Each is run with the keys one after another
(one round trip each) and all at once (batched, as under load); half of the conversations have state.
Prints client CPU and wall time per turn. Keys are deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import REDIS_URL
from gateway.core import handoff, sessions
from gateway.core.store.redis import RedisStore
from gateway.purge import delete_redis


async def measure(
    keys: list[str], fn: Callable[[str], Awaitable[Any]], rounds: int, at_once: bool
) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        if at_once:
            await asyncio.gather(*(fn(k) for k in keys))
        else:
            for k in keys:
                await fn(k)
    n = rounds * len(keys)
    return 1e6 * (time.process_time() - cpu) / n, 1e6 * (time.perf_counter() - wall) / n


async def main(args: argparse.Namespace) -> None:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    store = RedisStore(REDIS_URL, namespace)
    keys = [f"slack:T:C:{i}" for i in range(args.keys)]
    fields = [handoff.FIELD, sessions.ACTIVE, sessions.state_field(sessions.DEFAULT)]
    cases: dict[str, Callable[[str], Awaitable[Any]]] = {
        "hmget (this change)": lambda k: store.hmget(sessions.record_key(k), fields),
        "get (one more command)": lambda k: store.get(f"handoff:{k}"),
        "get + hgetall (first try)": lambda k: asyncio.gather(
            store.get(f"handoff:{k}"), store.hall(sessions.record_key(k))
        ),
    }
    try:
        for k in keys[::2]:
            await store.hput(
                sessions.record_key(k), sessions.state_field(sessions.DEFAULT), '{"private": {}, "public": {"n": 1}}'
            )
        for name, fn in cases.items():
            await measure(keys[:200], fn, 1, True)  # warm the connections
            for at_once in (False, True):
                cpu, wall = await measure(keys, fn, args.rounds, at_once)
                mode = f"{len(keys)} at once" if at_once else "one by one"
                print(f"{name:27} {mode:13} {cpu:7.1f} us CPU/turn {wall:7.1f} us wall/turn")
    finally:
        await store.close()
        await delete_redis(REDIS_URL, namespace)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
