"""The bare consumer half of the end-to-end baseline: queue in, ``chat.postMessage`` out, nothing else.

Consumes ``{namespace}.baseline`` (what bench/ingress/baseline.py publishes: the raw signed Slack
body), parses it, posts ``echo: <text>`` in the event's thread to the Slack Web API at ``--api-url``
with one pooled aiohttp session and a bearer token, then acks. No dedupe, no history, no leases,
no outbound queue, no rate limiter, no log line per event: the floor of a durable webhook-to-reply
path on this machine, measured beside the gateway in bench/e2e/run.py.

    python bench/e2e/bare_relay.py --namespace bench-e2e-x --api-url http://127.0.0.1:PORT/api/ --uvloop
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal

import aio_pika
import aiohttp


async def run(args: argparse.Namespace) -> None:
    token = os.environ["SLACK_BOT_TOKEN"]
    conn = await aio_pika.connect(args.amqp_url)
    channel = await conn.channel()
    await channel.set_qos(prefetch_count=args.prefetch)
    queue = await channel.declare_queue(
        f"{args.namespace}.baseline", durable=True, arguments={"x-queue-type": "quorum"}
    )
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=64), headers={"Authorization": f"Bearer {token}"}
    )
    url = args.api_url.rstrip("/") + "/chat.postMessage"

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        envelope = json.loads(message.body)
        ev = envelope["event"]
        reply = {"channel": ev["channel"], "thread_ts": ev.get("thread_ts") or ev["ts"], "text": "echo: " + ev["text"]}
        try:
            async with session.post(url, json=reply) as r:
                ok = r.status == 200 and (await r.json()).get("ok")
        except aiohttp.ClientError:
            ok = False
        if ok:
            await message.ack()
        else:
            await message.nack(requeue=True)

    await queue.consume(on_message)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("bare relay consuming", flush=True)
    await stop.wait()
    await session.close()
    await conn.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--namespace", required=True)
    p.add_argument("--api-url", required=True)
    p.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    p.add_argument("--prefetch", type=int, default=64)
    p.add_argument("--uvloop", action="store_true")
    args = p.parse_args()
    if args.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
