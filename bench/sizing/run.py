"""Redis bytes per conversation, measured: `gateway dev` on the real RabbitMQ and Redis, Slack threads
answered by the echo agent, then ``MEMORY USAGE`` of every key of the namespace, by kind.

    python bench/sizing/run.py                       # 20 conversations x 1, 10 and 50 turns, 150-char messages
    python bench/sizing/run.py --text-chars 1000

Every webhook goes the product's whole path (verified, deduplicated, published, dispatched, replied to the
fake Slack, recorded). The namespace is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import redis.asyncio as aioredis

from gateway.core import samples
from tests.e2e.conftest import SLACK_SECRET, gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import AMQP_URL, REDIS_URL, purge_namespace
from tests.support.signing import slack_headers


async def measure(turns: int, convs: int, text_chars: int) -> dict[str, tuple[int, int]]:
    namespace = f"size{uuid.uuid4().hex[:8]}"
    async with FakeSlack(token="xoxb-e2e") as slack, FakeTelegram(token="123:E2E") as telegram:
        env = gateway_env(slack, telegram, amqp=AMQP_URL, redis=REDIS_URL, namespace=namespace)
        gw = await GatewayProcess("dev", env).start()
        try:
            text = ("lorem ipsum dolor sit amet " * (text_chars // 27 + 1))[:text_chars]
            n = 0
            for t in range(turns):
                for c in range(convs):
                    thread = f"1700001{c:03d}.000001"
                    body = samples.slack_message(text, channel="CSIZE", thread_ts=thread, ts=f"17000{t:05d}.{c:06d}")
                    assert await post(f"{gw.url}/slack/events", body, slack_headers(SLACK_SECRET, body)) == 200
                    n += 1
            await slack.wait_for_messages(n, timeout=120)
            raw = aioredis.Redis.from_url(REDIS_URL)
            try:
                sizes: dict[str, list[int]] = collections.defaultdict(list)
                async for key in raw.scan_iter(match=f"{namespace}:*", count=1000):
                    kind = key.decode().split(":")[1]
                    sizes[kind].append(int(await raw.memory_usage(key, samples=0) or 0))
            finally:
                await raw.aclose()
        finally:
            await gw.terminate()
            await purge_namespace(namespace)
    return {kind: (len(v), sum(v)) for kind, v in sizes.items()}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--convs", type=int, default=20)
    parser.add_argument("--turns", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--text-chars", type=int, default=150)
    args = parser.parse_args()
    print(f"{args.convs} conversations, {args.text_chars}-character messages, echo agent; bytes per conversation")
    print(f"{'turns':>6} " + " ".join(f"{k:>14}" for k in ("hist", "turn", "sent", "dedupe", "all")))
    for turns in args.turns:
        got = await measure(turns, args.convs, args.text_chars)
        per = {k: total / args.convs for k, (_, total) in got.items()}
        row = [per.get(k, 0.0) for k in ("hist", "turn", "sent", "dedupe")]
        print(f"{turns:>6} " + " ".join(f"{v:>14,.0f}" for v in [*row, sum(per.values())]))
        others = sorted(set(got) - {"hist", "turn", "sent", "dedupe"})
        if others:
            print("       other keys: " + ", ".join(f"{k} {got[k][0]} keys {got[k][1]:,} B" for k in others))


if __name__ == "__main__":
    asyncio.run(main())
