"""`gateway serve` with candidate optimisations applied at run time, to measure them before anyone edits
the product. Nothing here changes a file of the product; each patch replaces one function in memory.

    BENCH_VARIANT=hiredis,batch python bench/ingress/variant_gateway.py serve

Variants (comma-separated in ``BENCH_VARIANT``):

- ``nolog``    GATEWAY_LOG_LEVEL=warning: no ``event_accepted`` line per event (run.py sets the variable).
- ``hiredis``  hiredis on PYTHONPATH, so redis-py parses replies in C (run.py installs it under /tmp
               with ``pip install --target``; the project's venv is not touched).
- ``batch``    the Redis auto-pipeline flushes 1 ms after the first queued command instead of on the next
               loop iteration, so the claims and done-marks of concurrent requests share a round trip.
- ``metrics``  prometheus children resolved once (``labels()`` takes a lock and builds a tuple per call).
- ``asyncput`` the done-mark SET after the confirm is sent but not awaited before answering 200.
- ``timing``   no optimisation: measures the wall time of each awaited step of a request and the event
               loop's lag, written to $BENCH_TIMING_OUT at exit (run.py puts it next to the server log).

Two earlier variants, ``timeout`` (asyncio.timeout() instead of wait_for() around the publish) and
``channels`` (several confirm channels chosen by partition), are now in gateway/core/bus/amqp.py itself
(PUBLISH_CHANNELS); their measurements are in docs/benchmarks.md.

The semantics of every variant are the product's: same commands, same confirms, same answers.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
VARIANTS = {v for v in os.environ.get("BENCH_VARIANT", "").split(",") if v}
KNOWN = {"nolog", "hiredis", "batch", "metrics", "timing", "asyncput"}


def patch_batch(delay: float = 0.001) -> None:
    """Defer the first flush by ``delay``; commands queued meanwhile join the same pipeline."""
    from gateway.core.store import redis as store

    flush_pending = store._AutoPipeline._flush_pending

    async def deferred(self: store._AutoPipeline) -> None:
        await asyncio.sleep(delay)
        await flush_pending(self)

    store._AutoPipeline._flush_pending = deferred  # type: ignore[method-assign]


def patch_metrics() -> None:
    from prometheus_client.metrics import MetricWrapperBase

    original = MetricWrapperBase.labels

    def labels(self: MetricWrapperBase, *values: Any, **kw: Any) -> Any:
        if kw or not values:
            return original(self, *values, **kw)
        cache = self.__dict__.setdefault("_bench_children", {})
        child = cache.get(values)
        if child is None:
            child = cache[values] = original(self, *values)
        return child

    MetricWrapperBase.labels = labels  # type: ignore[method-assign]


def patch_asyncput() -> None:
    """The done-mark (``RedisStore.put`` after the confirm) is sent but not awaited: the 200 goes out
    without waiting for Redis. ingest.py already treats a failed done-mark as a warning only (the
    30 s pending mark then expires); here the failure is logged from a callback instead."""
    import structlog

    from gateway.core.store import redis as store

    log = structlog.get_logger("bench.asyncput")

    def done(fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            log.warning("dedupe_mark_failed", error=str(fut.exception()))

    async def put(self: store.RedisStore, key: str, value: str, ttl: float | None = None) -> None:
        args: tuple[Any, ...] = ("SET", self._k(key), value)
        if ttl is not None:
            args += ("PX", int(ttl * 1000))
        self._pipe.execute(*args).add_done_callback(done)

    store.RedisStore.put = put  # type: ignore[method-assign]


def patch_timing() -> None:
    """Where a request waits: wall time inside each awaited step, and event-loop lag (how late a 5 ms
    timer fires). Written as JSON to $BENCH_TIMING_OUT when the process exits."""
    import atexit
    import functools
    import json
    import time

    from connectors.slack.connector import SlackConnector
    from gateway import server
    from gateway.core.bus.amqp import AmqpBus
    from gateway.core.ingest import Ingestor
    from gateway.core.store.redis import RedisStore

    stats: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        stats.setdefault(name, []).append(seconds)

    def timed_async(cls: Any, attr: str, name: str) -> None:
        original = getattr(cls, attr)

        @functools.wraps(original)
        async def wrapper(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await original(*args, **kw)
            finally:
                record(name, time.perf_counter() - t0)

        setattr(cls, attr, wrapper)

    def timed_sync(cls: Any, attr: str, name: str) -> None:
        original = getattr(cls, attr)

        @functools.wraps(original)
        def wrapper(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kw)
            finally:
                record(name, time.perf_counter() - t0)

        setattr(cls, attr, wrapper)

    timed_sync(SlackConnector, "handle", "1 verify+parse+Event (sync CPU)")
    timed_async(Ingestor, "accept", "2 Ingestor.accept (whole)")
    timed_async(RedisStore, "claim", "3 Redis claim (SET NX GET)")
    timed_async(AmqpBus, "publish", "4 AMQP publish+confirm")
    timed_async(RedisStore, "put", "5 Redis done-mark (SET)")

    serve_http = server.serve_http

    async def lag_monitor() -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            record("0 event-loop lag (5 ms timer)", time.perf_counter() - t0 - 0.005)

    @functools.wraps(serve_http)
    async def serve_with_monitor(*args: Any, **kw: Any) -> Any:
        task = asyncio.get_running_loop().create_task(lag_monitor())
        try:
            return await serve_http(*args, **kw)
        finally:
            task.cancel()

    server.serve_http = serve_with_monitor
    from gateway.commands import serve as serve_cmd

    serve_cmd.serve_http = serve_with_monitor

    def dump() -> None:
        out = {}
        for name, xs in sorted(stats.items()):
            xs.sort()
            n = len(xs)
            out[name] = {
                "n": n,
                "mean_ms": round(1000 * sum(xs) / n, 3),
                "p50_ms": round(1000 * xs[n // 2], 3),
                "p99_ms": round(1000 * xs[min(n - 1, int(n * 0.99))], 3),
            }
        Path(os.environ.get("BENCH_TIMING_OUT", "/tmp/bench-ingress-timing.json")).write_text(json.dumps(out, indent=2))

    atexit.register(dump)


def main() -> int:
    if unknown := VARIANTS - KNOWN:
        raise SystemExit(f"unknown BENCH_VARIANT {sorted(unknown)}; known: {sorted(KNOWN)}")
    if "hiredis" in VARIANTS:
        from redis.utils import HIREDIS_AVAILABLE

        if not HIREDIS_AVAILABLE:
            raise SystemExit("BENCH_VARIANT=hiredis but hiredis is not importable (PYTHONPATH?)")
    if "nolog" in VARIANTS and os.environ.get("GATEWAY_LOG_LEVEL", "info").lower() == "info":
        raise SystemExit("BENCH_VARIANT=nolog needs GATEWAY_LOG_LEVEL=warning")
    if "batch" in VARIANTS:
        patch_batch()
    if "metrics" in VARIANTS:
        patch_metrics()
    if "asyncput" in VARIANTS:
        patch_asyncput()
    if "timing" in VARIANTS:
        patch_timing()
    print(f"variant_gateway: {sorted(VARIANTS) or 'none'}", file=sys.stderr, flush=True)
    from gateway.cli import main as gateway_main

    return gateway_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
