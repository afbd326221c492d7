"""Dispatch throughput of `gateway consume` with a 20 ms agent, against a bare keyed-lane consumer.

    . .venv/bin/activate && python bench/dispatch/run.py                     # 3 rounds, all cases
    python bench/dispatch/run.py --rounds 1 --cases ours-p64,bare-p64         # a subset

Cases (every round runs each once; the order rotates between rounds):
    ours-pN     one `gateway consume` (GATEWAY_PARTITIONS=16, GATEWAY_PREFETCH=N), agent
                bench.dispatch.sleep_agent (awaits 20 ms, no reply, checks per-key order)
    ours2-pN    two `gateway consume` processes (GATEWAY_CONSUMER_ID c0/c1), leases split 8/8
    bare-pN     bench/dispatch/bare.py on the same 16 queues with prefetch N

One case: fresh namespace; declare the topology; start the consumer(s); wait until they hold the
partitions (all 16 leases in Redis `{ns}:lease:{p}`, 8/8 with two, and exactly one consumer on every
dispatch queue), SIGSTOP them; publish the events (confirmed, persistent, through
gateway.core.publish.Publisher + gateway.core.bus.amqp.AmqpBus, built like gateway/client.py builds them:
200 conversation keys, `seq=N` increasing per key; seq-major waves so a key never has two
publishes in flight); SIGCONT; poll every consumer's /metrics (sum of
gateway_turns_total{outcome="ok"}) every 50 ms. Throughput = turns done between the first poll that
saw a finished turn and the poll that saw all of them, over that time. Then grep the logs for
`order_violation`, check nothing is left in the queues, stop, delete the namespace.

Consumer processes are paused during the preload so the load generator's CPU does not compete with
them while they run (the machine has 2 cores shared by RabbitMQ, Redis, the generator and the
consumers). Results go to --out-dir/results.json; the medians of the rounds and ours/bare ratios are
printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (
    AMQP_URL,
    PY,
    REDIS_URL,
    REPO,
    Interference,
    Proc,
    cleanup_namespace,
    fetch_metrics,
    free_port,
    gateway_proc,
    machine_info,
    median,
    metric_sum,
    parse_metrics,
    proc_cpu,
    py_spy_record,
    queue_depths,
    record_result,
    run_undisturbed,
    save_results,
    service_cpu,
)
from bench.dispatch.common import same_round_ratios

PARTITIONS = 16
KEYS = 200
#: What is printed of each case as it finishes.
BRIEF = (
    "round",
    "case",
    "ok",
    "events_per_s",
    "consumer_cpu_us_per_event",
    "order_violations",
    "left_in_queues",
    "cores_used",
    "interference",
)


def build_events(n: int, keys: int) -> list[list[Any]]:
    """Waves: wave s holds seq s of every key (gateway/client.py's way of building an Event)."""
    from gateway.client import slack_thread
    from gateway.core.events import Event, EventKind, Sender, new_id
    from gateway.core.routing import conversation_key

    per_key = n // keys
    addresses = [slack_thread(f"C{k % 20:04d}", f"1700000000.{k:06d}", team="T0BENCH") for k in range(keys)]
    ckeys = [conversation_key(a) for a in addresses]
    sender = Sender(id="U0BENCH", name="bench")
    waves = []
    for s in range(per_key):
        wave = []
        for k in range(keys):
            eid = new_id()
            wave.append(
                Event(
                    id=eid,
                    platform="slack",
                    delivery_id=f"api:{eid}",
                    kind=EventKind.MESSAGE,
                    conversation_key=ckeys[k],
                    agent="sleep",
                    sender=sender,
                    text=f"seq={s} key={k}",
                    reply_to=addresses[k],
                    message_ref=f"api:{eid}",
                )
            )
        waves.append(wave)
    return waves


async def declare(namespace: str) -> None:
    from gateway.core.bus.amqp import AmqpBus
    from gateway.core.bus.topology import Topology

    bus = AmqpBus(AMQP_URL, Topology(namespace, PARTITIONS))
    await bus.start()
    await bus.close()


async def preload(namespace: str, waves: list[list[Any]]) -> dict[str, float]:
    from gateway.core.bus.amqp import AmqpBus
    from gateway.core.bus.topology import Topology
    from gateway.core.metrics import Metrics
    from gateway.core.publish import Publisher

    bus = AmqpBus(AMQP_URL, Topology(namespace, PARTITIONS))
    await bus.start()
    pub = Publisher(bus, Metrics(), timeout=10.0)
    t0 = time.perf_counter()
    c0 = time.process_time()
    n = 0
    try:
        for wave in waves:
            await asyncio.gather(*(pub.event(e) for e in wave))
            n += len(wave)
    finally:
        await bus.close()
    dt = time.perf_counter() - t0
    return {
        "events": n,
        "seconds": round(dt, 2),
        "rate": round(n / dt),
        "cpu_us_per_event": round((time.process_time() - c0) / n * 1e6),
    }


async def lease_owners(namespace: str) -> list[str | None]:
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return list(await r.mget([f"{namespace}:lease:{p}" for p in range(PARTITIONS)]))
    finally:
        await r.aclose()


async def consumer_counts(namespace: str) -> list[int]:
    import aio_pika

    conn = await aio_pika.connect(AMQP_URL, timeout=10)
    out = []
    try:
        ch = await conn.channel()
        for p in range(PARTITIONS):
            q = await ch.declare_queue(f"{namespace}.dispatch.{p}", passive=True)
            out.append(int(q.declaration_result.consumer_count or 0))
        await ch.close()
    finally:
        await conn.close()
    return out


async def wait_owned(namespace: str, ids: list[str] | None, timeout: float = 40.0) -> dict[str, int]:
    """Until every partition is leased as wanted (all by one id, or an even split) and consumed once."""
    deadline = time.monotonic() + timeout
    stable_since = None
    last: dict[str, int] = {}
    while time.monotonic() < deadline:
        owners = await lease_owners(namespace)
        counts = await consumer_counts(namespace)
        split: dict[str, int] = {}
        for o in owners:
            split[str(o)] = split.get(str(o), 0) + 1
        last = split
        ok = all(c == 1 for c in counts)
        if ids is not None:
            want = PARTITIONS // len(ids)
            ok = ok and all(split.get(i) == want for i in ids) and None not in owners
        if ok:
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= 1.5:
                return split
        else:
            stable_since = None
        await asyncio.sleep(0.25)
    raise RuntimeError(f"partitions not owned as wanted within {timeout}s: {last}")


async def measure(urls: list[str], total: int, timeout: float) -> dict[str, Any]:
    t_first = c_first = None
    samples = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s:
        t_resume = time.monotonic()
        deadline = t_resume + timeout
        done = 0.0
        while time.monotonic() < deadline:
            vals = []
            for u in urls:
                async with s.get(u + "/metrics") as r:
                    vals.append(metric_sum(parse_metrics(await r.text()), "gateway_turns_total", outcome="ok"))
            now = time.monotonic()
            done = sum(vals)
            samples.append((round(now - t_resume, 3), done))
            if done > 0 and t_first is None:
                t_first, c_first = now, done
            if done >= total:
                break
            await asyncio.sleep(0.05)
        t_end = time.monotonic()
    if t_first is None or done < total:
        return {"ok": False, "done": done, "total": total, "samples": samples[-20:]}
    assert c_first is not None
    rate = (total - c_first) / (t_end - t_first) if t_end > t_first else float("nan")
    return {
        "ok": True,
        "done": done,
        "seconds": round(t_end - t_first, 3),
        "events_per_s": round(rate),
        "events_per_s_from_resume": round(total / (t_end - t_resume)),
        "first_turn_after_resume_s": round(t_first - t_resume, 3),
        "per_process_done": vals,
    }


def gateway_env(namespace: str, prefetch: int, config: Path, consumer_id: str) -> dict[str, str]:
    return {
        "AMQP_URL": AMQP_URL,
        "REDIS_URL": REDIS_URL,
        "GATEWAY_NAMESPACE": namespace,
        "GATEWAY_CONFIG": str(config),
        "GATEWAY_DEFAULT_AGENT": "sleep",
        "GATEWAY_PARTITIONS": str(PARTITIONS),
        "GATEWAY_PREFETCH": str(prefetch),
        "GATEWAY_CONSUMER_ID": consumer_id,
        # Long enough that the leases outlive the SIGSTOP during the preload.
        "GATEWAY_LEASE_TTL": "60",
        "PYTHONPATH": str(REPO),
    }


async def run_case(case: str, args: argparse.Namespace, out: Path, waves: list[list[Any]]) -> dict[str, Any]:
    kind, _, pf = case.partition("-p")
    prefetch = int(pf)
    namespace = f"bench-dispatch-{uuid.uuid4().hex[:8]}-{case}"
    log_dir = out / "logs" / namespace
    log_dir.mkdir(parents=True, exist_ok=True)
    total = sum(len(w) for w in waves)
    config = out / "gateway.toml"
    procs: list[Proc] = []
    result: dict[str, Any] = {"case": case, "namespace": namespace, "prefetch": prefetch, "events": total}
    try:
        await declare(namespace)
        if kind == "bare":
            port = free_port()
            argv = [PY, str(REPO / "bench/dispatch/bare.py"), "--namespace", namespace, "--prefetch", str(prefetch)]
            p = Proc("bare", [*argv, "--port", str(port)], dict(os.environ), log_dir, port=port)
            procs.append(p)
            p.wait_http("/metrics")
            split = await wait_owned(namespace, None)
        else:
            ids = ["c0", "c1"] if kind == "ours2" else ["c0"]
            for cid in ids:
                env = gateway_env(namespace, prefetch, config, cid)
                procs.append(gateway_proc(cid, "consume", env, log_dir))
            for p in procs:
                p.wait_http("/readyz")
            split = await wait_owned(namespace, ids)
        result["lease_split"] = split
        for p in procs:
            p.signal(signal.SIGSTOP)
        result["preload"] = await asyncio.wait_for(preload(namespace, waves), 40)
        cpu0 = {p.name: proc_cpu(p.pid) for p in procs}
        svc0 = service_cpu()
        interference = Interference([p.pid for p in procs])
        spies = []
        if args.profile:
            # py-spy (sampling, pauses the process for each sample: slows it a little) on the first consumer.
            dest = out / f"profile-{case}-{namespace}.txt"
            spies.append(
                subprocess.Popen(
                    py_spy_record(procs[0].pid, args.profile, dest),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            result["profile"] = str(dest)
        for p in procs:
            p.signal(signal.SIGCONT)
        m = await measure([p.url for p in procs], total, timeout=args.timeout)
        for spy in spies:
            spy.wait(30)
        result["interference"] = interference.done()
        result.update(m)
        secs = m.get("seconds") or 1.0
        cpu = {p.name: round(proc_cpu(p.pid) - cpu0[p.name], 2) for p in procs}
        svc = {k: round(v - svc0[k], 2) for k, v in service_cpu().items()}
        result["cpu_seconds"] = {**cpu, **svc}
        result["consumer_cpu_us_per_event"] = round(sum(cpu.values()) / total * 1e6)
        result["cores_used"] = {k: round(v / secs, 2) for k, v in {**cpu, **svc}.items()}
        await asyncio.sleep(0.3)
        left = await queue_depths(namespace, PARTITIONS)
        result["left_in_queues"] = sum(v for v in left.values() if v > 0)
        result["dead_letters"] = left.get(f"{namespace}.dead", -1)
        if kind != "bare":
            result["turn_errors"] = sum(
                metric_sum(fetch_metrics(p.url), "gateway_turns_total", outcome="error") for p in procs
            )
    finally:
        for p in procs:
            p.stop()
        logs = "".join(p.logs() for p in procs)
        result["order_violations"] = logs.count("order_violation")
        result["duplicate_seq"] = logs.count("duplicate_seq")
        with contextlib.suppress(Exception):
            await cleanup_namespace(namespace, PARTITIONS)
    return result


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    by_case: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_case.setdefault(r["case"], []).append(r)
    summary: dict[str, Any] = {}
    for case, rs in by_case.items():
        rates = [r["events_per_s"] for r in rs if r.get("ok")]
        summary[case] = {
            "runs": len(rs),
            "ok_runs": len(rates),
            "events_per_s": rates,
            "median_events_per_s": median(rates),
            "median_consumer_cpu_us_per_event": median([r["consumer_cpu_us_per_event"] for r in rs if r.get("ok")]),
            "order_violations": sum(r.get("order_violations", 0) for r in rs),
            "left_in_queues": sum(r.get("left_in_queues", 0) for r in rs),
            "dead_letters": sum(max(0, r.get("dead_letters", 0)) for r in rs),
            "turn_errors": sum(r.get("turn_errors", 0) for r in rs),
        }
    # Ratios computed inside each round (same round = same machine conditions), then the median.
    rounds: dict[int, dict[str, float]] = {}
    for r in results:
        if r.get("ok"):
            rounds.setdefault(r["round"], {})[r["case"]] = r["events_per_s"]
    ratios = {k: [round(x, 3) for x in v] for k, v in same_round_ratios(rounds.values()).items()}
    summary["ratios"] = {k: {"per_round": v, "median": median(v)} for k, v in ratios.items()}
    return summary


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--keys", type=int, default=KEYS)
    ap.add_argument("--cases", default="ours-p16,ours-p64,ours-p256,bare-p16,bare-p64,bare-p256,ours2-p64,ours2-p256")
    ap.add_argument("--timeout", type=float, default=45.0, help="measurement bound per case (s)")
    ap.add_argument("--out-dir", default="/tmp/bench-dispatch")
    ap.add_argument("--retries", type=int, default=2, help="re-runs of a case disturbed by other processes")
    ap.add_argument("--profile", type=int, default=0, help="py-spy the (first) consumer for this many seconds")
    args = ap.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gateway.toml").write_text('[agents.sleep]\npath = "bench.dispatch.sleep_agent:agent"\n')
    cases = args.cases.split(",")
    results: list[dict[str, Any]] = []
    info = machine_info()
    print(json.dumps({"machine": info}), flush=True)
    for rnd in range(args.rounds):
        order = cases[rnd % len(cases) :] + cases[: rnd % len(cases)]
        if rnd % 2:
            order.reverse()
        for case in order:
            r, seen = await run_undisturbed(
                f"dispatch {case}",
                args.retries,
                lambda case=case: run_case(case, args, out, build_events(args.events, args.keys)),
            )
            r["round"] = rnd
            r["machine_before"] = seen
            record_result(out, info, results, r, BRIEF)
    summary = summarize(results)
    save_results(out, info, results, summary=summary)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
