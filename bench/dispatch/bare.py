"""The ceiling: a bare keyed-lane consumer with nothing of the gateway around it.

aio-pika straight onto the 16 quorum single-active-consumer dispatch queues of a namespace (declared
by the preload, exactly as ``gateway consume`` sees them), one channel per queue with
``prefetch`` each, a lane per conversation key (the algorithm of consumers/lanes.py: created on
the key's first message, retired when its buffer is empty with no await in between), 20 ms of
``asyncio.sleep`` per message, then an individual ack. No Redis, no pydantic, no logging per turn,
no metrics library. The key comes from the ``conversation_key`` header; the order check reads
``seq=N`` from the body with a regex.

    python bench/dispatch/bare.py --namespace NS --prefetch 64 --port 18123

Serves ``GET /metrics`` with ``gateway_turns_total{agent="bare",outcome="ok"} N`` (the same name
the gateway exports) so the runner measures both the same way, and prints ``READY`` once every
queue is subscribed.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
from collections import deque
from typing import Any

import aio_pika
from aiohttp import web

_SEQ = re.compile(rb"seq=(\d+)")


class Lanes:
    def __init__(self, run: Any) -> None:
        self._run = run
        self._buffers: dict[str, deque[Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, key: str, item: Any) -> None:
        buf = self._buffers.get(key)
        if buf is not None:
            buf.append(item)
            return
        buf = deque((item,))
        self._buffers[key] = buf
        task = asyncio.get_running_loop().create_task(self._drain(key, buf))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, key: str, buf: deque[Any]) -> None:
        while True:
            await self._run(key, buf[0])
            buf.popleft()
            if not buf:
                del self._buffers[key]
                return


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--prefetch", type=int, default=64)
    ap.add_argument("--sleep", type=float, default=0.02)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    ns = ap.parse_args()

    done = 0
    violations = 0
    last: dict[str, int] = {}

    async def run(key: str, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal done, violations
        await asyncio.sleep(ns.sleep)
        m = _SEQ.search(message.body)
        if m is not None:
            seq = int(m.group(1))
            if seq < last.get(key, -1):
                violations += 1
                print(f'{{"event": "order_violation", "conversation_key": "{key}", "seq": {seq}}}', file=sys.stderr)
            else:
                last[key] = seq
        await message.ack()
        done += 1

    lanes = Lanes(run)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        key = str((message.headers or {}).get("conversation_key") or "")
        lanes.submit(key, message)

    async def metrics(_: web.Request) -> web.Response:
        body = f'gateway_turns_total{{agent="bare",outcome="ok"}} {done}\nbench_order_violations_total {violations}\n'
        return web.Response(text=body)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/readyz", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", ns.port).start()

    conn = await aio_pika.connect_robust(ns.amqp_url)
    for p in range(ns.partitions):
        ch = await conn.channel(publisher_confirms=False)
        await ch.set_qos(prefetch_count=ns.prefetch)
        q = await ch.get_queue(f"{ns.namespace}.dispatch.{p}", ensure=False)
        await q.consume(on_message)
    print("READY", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await conn.close()
    await runner.cleanup()
    print(f"bare done={done} violations={violations}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    raise SystemExit(asyncio.run(main()))
