"""WebSocket clients held by one `gateway serve`, against a bare aiohttp WebSocket echo in the same run.

    python bench/web/run.py                                  # 5,000 idle + 1,000 chatting at 1 msg/s, 30 s
    python bench/web/run.py --idle 1000 --chatting 200 --seconds 10

The gateway side is the product as deployed: `gateway serve` and `gateway consume` (echo agent) as two
processes on the real RabbitMQ and Redis, visitors on `/v1/ws` with tokens minted from GATEWAY_WEB_SECRET the
way an embedding site's server mints them. Every chatting visitor sends one message a second; the time is
from its send to the agent's reply arriving on its socket (ingress, queue, turn, outbound, transcript, fanout
hint, push). The baseline is `bench/web/bare_echo.py`: the same clients, each message echoed at once. Memory
per connection is the server's RSS growth while the idle clients connect, divided by their number. The load
generator is this process (uvloop), on the same two cores: compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import aiohttp

from bench.common import AMQP_URL, PY, REDIS_URL, Proc, cleanup_namespace, gateway_proc, machine_info, stats_ms
from connectors.web import token as tokens
from tests.support.processes import free_port

SECRET = "bench-web-secret-0123456789abcdefghijklmnop"
REPO = Path(__file__).resolve().parents[2]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Target:
    """Where clients connect, and how a chatting client recognises the answer to its message."""

    def __init__(self, name: str, url_for: Any, server_pid: int, gateway: bool) -> None:
        self.name = name
        self.url_for = url_for
        self.server_pid = server_pid
        self.gateway = gateway


async def open_socket(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    for attempt in range(5):
        try:
            return await session.ws_connect(url, heartbeat=None, autoping=True, max_msg_size=1 << 20)
        except (aiohttp.ClientError, OSError):
            if attempt == 4:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


async def open_many(session: aiohttp.ClientSession, urls: list[str], parallel: int = 200) -> list[Any]:
    gate = asyncio.Semaphore(parallel)

    async def one(url: str) -> Any:
        async with gate:
            return await open_socket(session, url)

    return list(await asyncio.gather(*(one(u) for u in urls)))


async def chat(ws: Any, target: Target, seconds: float, offset: float, latencies: list[float], lost: list[int]) -> None:
    """Send one message a second; wait for its answer (the gateway's agent reply, or the echo)."""
    await asyncio.sleep(offset)  # spread the clients over the second
    sent_at: dict[str, float] = {}
    answered: set[str] = set()
    done = asyncio.Event()
    expected = int(seconds)

    async def reader() -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if target.gateway:
                if data.get("type") != "message" or data.get("role") != "agent":
                    continue
                text = str(data.get("text", ""))
                mid = text.removeprefix("echo: ")
            else:
                mid = str(data.get("id"))
            if mid in sent_at and mid not in answered:
                answered.add(mid)
                latencies.append(time.perf_counter() - sent_at[mid])
                if len(answered) == expected:
                    done.set()

    task = asyncio.create_task(reader())
    try:
        for _ in range(expected):
            mid = uuid.uuid4().hex[:16]
            sent_at[mid] = time.perf_counter()
            await ws.send_str(json.dumps({"type": "message", "id": mid, "text": mid}))
            await asyncio.sleep(1.0)
        try:
            async with asyncio.timeout(30):
                await done.wait()
        except TimeoutError:
            pass
    finally:
        lost.append(expected - len(answered))
        task.cancel()


async def measure(target: Target, idle: int, chatting: int, seconds: float) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        before = rss_mb(target.server_pid)
        t0 = time.perf_counter()
        idle_socks = await open_many(session, [target.url_for(f"idle{i}") for i in range(idle)])
        opened_s = time.perf_counter() - t0
        await asyncio.sleep(2)  # let the server settle the new connections' buffers
        after_idle = rss_mb(target.server_pid)
        talkers = await open_many(session, [target.url_for(f"chat{i}") for i in range(chatting)])
        latencies: list[float] = []
        lost: list[int] = []
        await asyncio.gather(
            *(chat(ws, target, seconds, i / max(1, chatting), latencies, lost) for i, ws in enumerate(talkers))
        )
        peak = rss_mb(target.server_pid)
        still_open = sum(1 for ws in idle_socks if not ws.closed)
        for ws in idle_socks + talkers:
            await ws.close()
    return {
        "target": target.name,
        "idle": idle,
        "idle_still_open": still_open,
        "open_s": round(opened_s, 2),
        "rss_before_mb": round(before, 1),
        "rss_idle_mb": round(after_idle, 1),
        "kb_per_connection": round((after_idle - before) * 1024 / max(1, idle), 1),
        "rss_peak_mb": round(peak, 1),
        "chatting": chatting,
        "messages": chatting * int(seconds),
        "lost": sum(lost),
        "reply_ms": stats_ms(latencies),
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--idle", type=int, default=5000)
    ap.add_argument("--chatting", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-web"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results = []

    port = free_port()
    bare = Proc("bare", [PY, str(REPO / "bench/web/bare_echo.py"), str(port)], os.environ, args.out, port=port)
    try:
        bare.wait_http()
        target = Target("bare aiohttp echo", lambda _v: f"ws://127.0.0.1:{port}/ws", bare.pid, gateway=False)
        results.append(await measure(target, args.idle, args.chatting, args.seconds))
        print(json.dumps(results[-1]), flush=True)
    finally:
        bare.stop()

    namespace = f"bweb{uuid.uuid4().hex[:6]}"
    env = {
        "AMQP_URL": AMQP_URL,
        "REDIS_URL": REDIS_URL,
        "GATEWAY_NAMESPACE": namespace,
        "GATEWAY_WEB_SECRET": SECRET,
    }
    config = args.out / "gateway.toml"
    config.write_text("[web]\nrate = 5.0\nburst = 10.0\n")  # 1 msg/s per visitor is under the default too
    env["GATEWAY_CONFIG"] = str(config)
    serve = gateway_proc("serve", "serve", env, args.out)
    consume = gateway_proc("consume", "consume", env, args.out)
    try:
        serve.wait_http()
        consume.wait_http()
        secret = SECRET.encode()

        def url_for(visitor: str) -> str:
            minted = tokens.mint(secret, "default", visitor, now=time.time())
            key = tokens.verify(secret, minted, now=time.time()).conversation_key
            return f"ws://127.0.0.1:{serve.port}/v1/ws?key={key}&token={minted}"

        target = Target("gateway serve /v1/ws", url_for, serve.pid, gateway=True)
        results.append(await measure(target, args.idle, args.chatting, args.seconds))
        print(json.dumps(results[-1]), flush=True)
    finally:
        serve.stop()
        consume.stop()
        await cleanup_namespace(namespace)

    bare_r, gw_r = results
    summary = {
        "machine": machine_info(),
        "command": " ".join(["python", "bench/web/run.py", *sys.argv[1:]]),
        "results": results,
        "ratios": {
            "kb_per_connection gateway/bare": round(
                gw_r["kb_per_connection"] / max(0.1, bare_r["kb_per_connection"]), 2
            ),
            "p99 gateway/bare": round(gw_r["reply_ms"].get("p99", 0) / max(0.01, bare_r["reply_ms"].get("p99", 1)), 1),
        },
    }
    (args.out / "results.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary["ratios"]))


if __name__ == "__main__":
    asyncio.run(main())
