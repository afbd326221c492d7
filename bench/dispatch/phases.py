"""Where a turn's time goes inside one consumer: the real ConsumerWorker, in-process, with timers.

    . .venv/bin/activate && python bench/dispatch/phases.py --prefetch 64 --events 20000

Builds the worker exactly as `gateway consume` does (gateway.runtime.open_runtime +
gateway.commands.consume.make_worker, uvloop, JSON logs to a file), preloads the events like
run.py, then starts the worker and wraps, on the live objects, the steps of
consumers/dispatch.py Dispatcher.run with wall-clock timers: decode (only for a delivery that
Dispatcher.prepare could not decode on arrival), done-marker check (_drop_done: waits for the GET that
prepare started on arrival), the turn (_turn: pool + context + the 20 ms agent), the record
(_record: one EVALSHA through the auto-pipeline), and the ack; plus every Redis command's
round trip through RedisStore._run and ._eval, the size of each auto-pipeline flush, and the event loop's lag
(a 1 ms ticker). Prints p50/p99 per step and the throughput. Diagnostic only (the numbers of
record come from run.py).
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

from bench.common import (
    AMQP_URL,
    REDIS_URL,
    Interference,
    cleanup_namespace,
    pct,
    stats_ms,
    wait_for_machine,
)
from bench.dispatch.run import build_events, declare, preload


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefetch", type=int, default=64)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--out-dir", default="/tmp/bench-dispatch-phases")
    ap.add_argument("--no-timers", action="store_true", help="no per-step timers (for CPU/throughput A/B)")
    ap.add_argument(
        "--what-if",
        default="",
        help="comma list of in-process experiments (product code untouched): "
        "quiet-logs (log level warning: no turn_done line)",
    )
    args = ap.parse_args()
    unknown = {w for w in args.what_if.split(",") if w} - {"quiet-logs"}
    if unknown:  # the others were removed (see docs/benchmarks.md); a typo must not run a plain baseline
        ap.error(f"unknown --what-if: {sorted(unknown)}")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gateway.toml").write_text('[agents.sleep]\npath = "bench.dispatch.sleep_agent:agent"\n')
    namespace = f"bench-dispatch-phases-{uuid.uuid4().hex[:8]}"
    os.environ.update(
        {
            "AMQP_URL": AMQP_URL,
            "REDIS_URL": REDIS_URL,
            "GATEWAY_NAMESPACE": namespace,
            "GATEWAY_CONFIG": str(out / "gateway.toml"),
            "GATEWAY_DEFAULT_AGENT": "sleep",
            "GATEWAY_PREFETCH": str(args.prefetch),
            "GATEWAY_CONSUMER_ID": "phases",
        }
    )
    import structlog

    from gateway.commands.consume import make_worker
    from gateway.core import logs
    from gateway.core.settings import Settings
    from gateway.runtime import open_runtime

    seen = wait_for_machine("dispatch phases")
    await declare(namespace)
    pre = await preload(namespace, build_events(args.events, 200))
    log_file = (out / f"{namespace}.log").open("w")
    real_stderr = sys.stderr
    sys.stderr = log_file
    structlog.reset_defaults()
    logs.configure("json", "warning" if "quiet-logs" in args.what_if else "info")
    times: dict[str, list[float]] = {}
    flush_sizes: list[int] = []
    lag: list[float] = []
    done = 0

    def timed(name: str, fn: Any) -> Any:
        if args.no_timers:
            return fn

        async def wrapper(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return await fn(*a, **kw)
            finally:
                times.setdefault(name, []).append(time.perf_counter() - t)

        return wrapper

    def timed_future(name: str, fn: Any) -> Any:
        """Like ``timed`` for a function that returns a future (RedisStore._run, ._eval): it must stay a future."""
        if args.no_timers:
            return fn

        def wrapper(*a: Any) -> Any:
            t = time.perf_counter()
            fut = fn(*a)
            fut.add_done_callback(lambda _: times.setdefault(name, []).append(time.perf_counter() - t))
            return fut

        return wrapper

    settings = Settings()
    try:
        async with open_runtime(settings) as rt:
            worker = make_worker(rt)
            d = worker.dispatcher
            d._decode = timed("decode", d._decode)  # type: ignore[method-assign]
            d._drop_done = timed("done_check", d._drop_done)  # type: ignore[method-assign]
            d._turn = timed("turn(agent 20ms)", d._turn)  # type: ignore[method-assign]
            d._record = timed("record", d._record)  # type: ignore[method-assign]
            real_run = d.run

            async def run(key: str, deliveries: list[Any]) -> None:
                nonlocal done
                for dl in deliveries:
                    dl._settle = timed("ack", dl._settle)
                t = time.perf_counter()
                await real_run(key, deliveries)
                times.setdefault("whole run()", []).append(time.perf_counter() - t)
                done += len(deliveries)

            d.run = run  # type: ignore[method-assign]
            store = rt.store
            store._run = timed_future("redis command", store._run)  # type: ignore[attr-defined]
            store._eval = timed_future("redis command", store._eval)  # type: ignore[attr-defined]
            pipe = store._pipe  # type: ignore[attr-defined]
            real_flush = pipe._flush

            async def flush(batch: list[Any]) -> None:
                if args.no_timers:
                    return await real_flush(batch)
                flush_sizes.append(len(batch))
                t = time.perf_counter()
                await real_flush(batch)
                times.setdefault("redis flush (one pipeline, inside its task)", []).append(time.perf_counter() - t)

            pipe._flush = flush

            stop = asyncio.Event()

            lanes_active: list[int] = []
            buffered: list[int] = []

            async def ticker() -> None:
                n = 0
                while not stop.is_set():
                    t = time.perf_counter()
                    await asyncio.sleep(0.001)
                    lag.append(time.perf_counter() - t - 0.001)
                    n += 1
                    if n % 10 == 0 and 0 < done < args.events:
                        lanes_active.append(sum(len(w.turns) for w in worker.partitions.values()))
                        buffered.append(sum(w.turns.pending() for w in worker.partitions.values()))

            # PartitionWorker builds its Lanes from dispatcher.run when a partition starts: the wrapper.
            tick = asyncio.create_task(ticker())
            cpu0 = time.process_time()
            interference = Interference([])
            async with worker:
                t_first = None
                while done < args.events:
                    await asyncio.sleep(0.01)
                    if t_first is None and done:
                        t_first, c_first = time.perf_counter(), done
                t_end = time.perf_counter()
            seen_during = interference.done()
            stop.set()
            await tick
            cpu = time.process_time() - cpu0
    finally:
        sys.stderr = real_stderr
        log_file.close()
        await cleanup_namespace(namespace)
    assert t_first is not None
    rate = (args.events - c_first) / (t_end - t_first)
    report = {
        "prefetch": args.prefetch,
        "what_if": args.what_if,
        "machine_before": seen,
        "interference": seen_during,
        "events": args.events,
        "preload": pre,
        "events_per_s": round(rate),
        "cpu_us_per_event": round(cpu / args.events * 1e6),
        "cores": round(cpu / (t_end - t_first), 2),
        "steps_ms": {k: stats_ms(v, top=False) for k, v in times.items()},
        "redis_flush_size": {"n": len(flush_sizes), "p50": pct(flush_sizes, 50), "p99": pct(flush_sizes, 99)},
        "loop_lag_ms": stats_ms(lag, top=False),
        "lanes_active(conversations with a turn running or waiting)": {
            "p10": pct(lanes_active, 10),
            "p50": pct(lanes_active, 50),
            "p90": pct(lanes_active, 90),
        },
        "deliveries_held(unacked in this process)": {"p50": pct(buffered, 50), "p90": pct(buffered, 90)},
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    raise SystemExit(asyncio.run(main()))
