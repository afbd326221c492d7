"""`gateway` with in-process experiments applied (monkeypatches; the product code is not changed).

    BENCH_VARIANT=no-bucket python bench/latency/variant.py consume

Used by ``run.py --variant`` to measure what a suggested change would buy before anyone writes it.
Experiments (comma separated in BENCH_VARIANT):

    no-done-check-first  consumers/dispatch.py looks the turn's done marker up for every delivery (the
                         GET starts on arrival, in Dispatcher.prepare, and the turn awaits it). Here: the
                         turn does not await it on first deliveries (what checking only redeliveries
                         would buy).
    diag                 no change; logs garbage-collector pauses over 2 ms (``bench_gc``) and event-loop
                         stalls over 20 ms (``bench_loop_lag``, 5 ms ticker) to correlate with latency.
    no-bucket            consumers/ratelimit.py reserves a token in Redis (EVAL) for every Slack post
                         (the workspace bucket). Here: skipped (the upper bound of taking tokens from
                         Redis in batches).

slack-session and gc-freeze were removed once the product did both (a pooled session per Slack sender;
gateway.runtime.settle_heap); check out commit 224677f to re-run them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def apply(variant: str) -> None:
    wanted = {v.strip() for v in variant.split(",") if v.strip()}
    if "no-done-check-first" in wanted:
        from consumers import dispatch

        real_drop = dispatch.Dispatcher._drop_done

        async def drop_done(self: Any, agent: str, pending: list[Any]) -> list[Any]:
            if all(d.redeliveries == 0 for d, _ in pending):
                return pending
            return await real_drop(self, agent, pending)

        dispatch.Dispatcher._drop_done = drop_done  # type: ignore[method-assign]
    if "no-bucket" in wanted:
        from consumers import ratelimit

        async def global_wait(self: Any, message: Any) -> float:
            return 0.0

        ratelimit.RateLimiter._global_wait = global_wait  # type: ignore[method-assign]
    if "diag" in wanted:
        import asyncio
        import gc
        import time

        import structlog

        from gateway.commands import consume

        log = structlog.get_logger("bench.diag")
        started: dict[int, float] = {}

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            gen = int(info.get("generation", -1))
            if phase == "start":
                started[gen] = time.perf_counter()
            elif gen in started:
                ms = (time.perf_counter() - started.pop(gen)) * 1000
                if ms > 2:
                    log.warning("bench_gc", generation=gen, ms=round(ms, 1), collected=info.get("collected"))

        gc.callbacks.append(on_gc)

        async def ticker() -> None:
            while True:
                t = time.perf_counter()
                await asyncio.sleep(0.005)
                lag = (time.perf_counter() - t - 0.005) * 1000
                if lag > 20:
                    log.warning("bench_loop_lag", ms=round(lag, 1))

        real_make_worker = consume.make_worker
        tasks: list[Any] = []

        def make_worker(*a: Any, **kw: Any) -> Any:
            tasks.append(asyncio.get_running_loop().create_task(ticker()))
            return real_make_worker(*a, **kw)

        consume.make_worker = make_worker
    unknown = wanted - {"no-done-check-first", "no-bucket", "diag"}
    if unknown:
        raise SystemExit(f"unknown BENCH_VARIANT parts: {sorted(unknown)}")


if __name__ == "__main__":
    apply(os.environ.get("BENCH_VARIANT", ""))
    from gateway.cli import main

    raise SystemExit(main(sys.argv[1:]))
