"""How fast the gateway's Redis dedupe path is on its own (no HTTP, no AMQP).

    python bench/ingress/redis_micro.py [--concurrency 32] [--seconds 5] [--uvloop]

N concurrent workers each loop: ``claim`` (SET NX GET, 30 s) then ``put`` (SET, 24 h) of a fresh key through
the product's ``RedisStore`` (with its auto-pipeline) — the two commands every accepted event costs. Prints
pairs/s, the latency of each call and the process CPU per pair. For comparison the same two commands are
also sent straight through redis-py (``client.set``) without the auto-pipeline, and batched per loop
iteration through redis-py's *public* pipeline (``client.pipeline(transaction=False)``): the alternative to
our own auto-pipeline that issue 18 asks to weigh. Keys are deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


class PublicPipeline:
    """The commands of one loop iteration, sent together through redis-py's public pipeline."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._pending: list[tuple[str, tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]] = []

    def call(self, method: str, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._pending:
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._flush()))
        self._pending.append((method, args, kwargs, future))
        return future

    def set(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        return self.call("set", *args, **kwargs)

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        async with self._client.pipeline(transaction=False) as pipe:
            for method, args, kwargs, _ in batch:
                getattr(pipe, method)(*args, **kwargs)
            results = await pipe.execute()
        for (_, _, _, future), result in zip(batch, results, strict=True):
            future.set_result(result)


async def run_dispatch(mode: str, concurrency: int, seconds: float, url: str) -> dict[str, float]:
    """What every turn costs the dispatcher in Redis: the done-marker lookup (GET), then the record (the
    history-append script: RPUSH, LTRIM, PEXPIRE and the turn's done marker, one EVALSHA)."""
    from gateway.core.store.redis import _PUSH, RedisStore

    ns = f"bench-dispatch-micro-{uuid.uuid4().hex[:8]}"
    store = RedisStore(url, ns)
    client = store._client
    await client.script_load(_PUSH.text)
    public = PublicPipeline(client)
    turn = '{"role":"user","text":"' + "x" * 150 + '","event_id":"e"}'
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < stop:
            hist, marker = f"hist:echo:slack:T:C:{w}", f"turn:echo:{w}:{i}"
            i += 1
            if mode == "store":
                await store.lookup(marker)
                await store.push(hist, [turn, turn], 1000, markers=[marker], marker_ttl=604800, ttl=2592000)
            else:
                keys = [f"{ns}:{hist}", f"{ns}:{marker}"]
                await public.call("get", keys[1])
                await public.call("evalsha", _PUSH.sha, 2, *keys, 1000, 604800000, 2592000000, 2, turn, turn)
            done += 1

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    keys = [k async for k in client.scan_iter(match=f"{ns}:*", count=5000)]
    for i in range(0, len(keys), 5000):
        await client.unlink(*keys[i : i + 5000])
    await store.close()
    return {"turns_per_s": round(done / wall), "cpu_us_per_turn": round(1e6 * cpu / max(done, 1), 1)}


async def run(mode: str, concurrency: int, seconds: float, url: str) -> dict[str, float]:
    from gateway.core.store.redis import RedisStore

    ns = f"bench-ingress-micro-{uuid.uuid4().hex[:8]}"
    store = RedisStore(url, ns)
    client = store._client
    public = PublicPipeline(client)
    lat_claim: list[float] = []
    lat_put: list[float] = []
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < stop:
            key = f"dedupe:slack:T:{w}:{i}"
            i += 1
            t0 = time.perf_counter()
            if mode == "store":
                await store.claim(key, "pending:x", 30)
            elif mode == "public":
                await public.set(f"{ns}:{key}", "pending:x", px=30000, nx=True, get=True)
            else:
                await client.set(f"{ns}:{key}", "pending:x", px=30000, nx=True, get=True)
            t1 = time.perf_counter()
            if mode == "store":
                await store.put(key, "done:x", 86400)
            elif mode == "public":
                await public.set(f"{ns}:{key}", "done:x", px=86400000)
            else:
                await client.set(f"{ns}:{key}", "done:x", px=86400000)
            t2 = time.perf_counter()
            lat_claim.append(t1 - t0)
            lat_put.append(t2 - t1)
            done += 1

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    keys = [k async for k in client.scan_iter(match=f"{ns}:*", count=5000)]
    for i in range(0, len(keys), 5000):
        await client.unlink(*keys[i : i + 5000])
    await store.close()
    lat_claim.sort()
    lat_put.sort()
    n = len(lat_claim)
    return {
        "pairs_per_s": round(done / wall),
        "cpu_us_per_pair": round(1e6 * cpu / max(done, 1), 1),
        "claim_p50_ms": round(1000 * lat_claim[n // 2], 3),
        "put_p50_ms": round(1000 * lat_put[n // 2], 3),
        "cpu_cores": round(cpu / wall, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--uvloop", action="store_true")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = p.parse_args()
    if args.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from redis.utils import HIREDIS_AVAILABLE

    labels = {
        "store": "RedisStore (our auto-pipeline)",
        "public": "redis-py public pipeline per tick",
        "direct": "redis-py client.set, no pipeline",
    }
    results = {}
    for mode in ("store", "public", "direct", "store", "public"):  # ours and the public one twice: drift shows
        r = asyncio.run(run(mode, args.concurrency, args.seconds, args.redis_url))
        results.setdefault(mode, []).append(r["pairs_per_s"])
        print(f"{labels[mode]:<36} hiredis={HIREDIS_AVAILABLE} concurrency={args.concurrency}: {r}")
    ours, theirs = max(results["store"]), max(results["public"])
    print(f"ingest: our auto-pipeline / redis-py public pipeline: {ours / theirs:.2f}x pairs/s (best of two each)")
    turns: dict[str, list[float]] = {}
    for mode in ("store", "public", "store", "public"):
        r = asyncio.run(run_dispatch(mode, args.concurrency, args.seconds, args.redis_url))
        turns.setdefault(mode, []).append(r["turns_per_s"])
        print(f"dispatch {labels[mode]:<36} concurrency={args.concurrency}: {r}")
    ratio = max(turns["store"]) / max(turns["public"])
    print(f"dispatch: our auto-pipeline / redis-py public pipeline: {ratio:.2f}x turns/s (best of two each)")


if __name__ == "__main__":
    main()
