"""The bare ceiling for ingress: HMAC check + confirmed persistent publish, nothing else.

POST /slack/events: check X-Slack-Request-Timestamp (300 s window) and the v0
HMAC-SHA256 signature over the raw body with ``hmac.compare_digest`` (the same
secret as the gateway), then publish the raw body, persistent, on a channel with
publisher confirms, to a durable quorum queue this server declares under its own
namespace, and answer 200 once RabbitMQ confirmed. No JSON parsing, no model,
no dedupe, no logging per request, no metrics.

GET /readyz: 200 once connected. GET /stats: {"published": n} (accepted events).

Two options exist only to take the gateway's RabbitMQ costs apart (not part of the bare ceiling):
``--partitions 16`` publishes through a direct exchange to 16 single-active-consumer quorum queues
(the gateway's topology; routed by the signature's CRC, no parsing), and ``--gateway-message``
publishes the gateway's message shape: mandatory, message_id, five small headers, and the body
padded to the size of the gateway's Event JSON (about 1.75x the Slack body).

Run it like ``gateway serve`` runs: one process, access log off, and with
``--uvloop`` the same event loop ``gateway`` installs (gateway/cli.py).

    python bench/ingress/baseline.py --port 18081 --namespace bench-x --uvloop
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import signal
import sys
import time
import uuid
import zlib

import aio_pika
from aiohttp import web

WINDOW = 300


def build_app(
    secret: bytes,
    exchange: aio_pika.abc.AbstractExchange,
    queue: str,
    partitions: int = 1,
    gateway_message: bool = False,
) -> web.Application:
    stats = {"published": 0}

    async def events(request: web.Request) -> web.Response:
        body = await request.read()
        ts = request.headers.get("X-Slack-Request-Timestamp", "")
        sig = request.headers.get("X-Slack-Signature", "")
        try:
            if abs(time.time() - int(ts)) > WINDOW:
                return web.Response(status=401, text="stale timestamp")
        except ValueError:
            return web.Response(status=401, text="bad timestamp")
        expected = "v0=" + hmac.new(secret, b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            return web.Response(status=401, text="bad signature")
        key = queue if partitions == 1 else str(zlib.crc32(sig.encode()) % partitions)
        if gateway_message:
            headers = {
                "platform": "slack",
                "kind": "message",
                "conversation_key": "slack:T0BENCH01:C00000:" + ts,
                "agent": "",
                "busy": "queue",
            }
            message = aio_pika.Message(
                body + b" " * (len(body) * 3 // 4),
                headers=headers,
                message_id=uuid.uuid4().hex,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                content_type="application/json",
            )
            await exchange.publish(message, routing_key=key, mandatory=True)
        else:
            message = aio_pika.Message(
                body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, content_type="application/json"
            )
            await exchange.publish(message, routing_key=key)
        stats["published"] += 1
        return web.Response(status=200)

    async def readyz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def stats_handler(request: web.Request) -> web.Response:
        return web.json_response(stats)

    app = web.Application()
    app.router.add_post("/slack/events", events)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/stats", stats_handler)
    return app


async def run(args: argparse.Namespace) -> None:
    secret = (args.secret or os.environ.get("SLACK_SIGNING_SECRET") or "").encode()
    if not secret:
        raise SystemExit("baseline: --secret or SLACK_SIGNING_SECRET is required")
    conn = await aio_pika.connect(args.amqp_url)
    channel = await conn.channel(publisher_confirms=True)
    queue = f"{args.namespace}.baseline"
    if args.partitions == 1:
        await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
        exchange = channel.default_exchange
    else:
        exchange = await channel.declare_exchange(
            f"{args.namespace}.events", aio_pika.ExchangeType.DIRECT, durable=True
        )
        for p in range(args.partitions):
            q = await channel.declare_queue(
                f"{args.namespace}.dispatch.{p}",
                durable=True,
                arguments={"x-queue-type": "quorum", "x-single-active-consumer": True},
            )
            await q.bind(exchange, routing_key=str(p))
    app = build_app(secret, exchange, queue, args.partitions, args.gateway_message)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=1024)
    await site.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"baseline listening on http://{args.host}:{args.port} queue={queue} loop={type(loop).__module__}",
        file=sys.stderr,
        flush=True,
    )
    await stop.wait()
    await runner.cleanup()
    await conn.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=18081)
    p.add_argument("--namespace", default="bench-baseline")
    p.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    p.add_argument("--secret", default=None, help="signing secret (default: $SLACK_SIGNING_SECRET)")
    p.add_argument("--uvloop", action="store_true", help="install uvloop, as gateway/cli.py does")
    p.add_argument("--partitions", type=int, default=1, help="(analysis) N quorum queues behind a direct exchange")
    p.add_argument("--gateway-message", action="store_true", help="(analysis) the gateway's message shape and size")
    args = p.parse_args()
    if args.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
