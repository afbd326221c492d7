"""Webhook-to-reply latency at a fixed rate: signed Slack message in, `chat.postMessage` out.

    . .venv/bin/activate && python bench/latency/run.py                 # 3 rounds x {split, dev}, 300/s, 20 s
    python bench/latency/run.py --rounds 1 --modes split --rate 300 --duration 20

Modes:
    split   `gateway serve` + `gateway consume` (two processes)
    dev     `gateway dev` with AMQP_URL and REDIS_URL (one process)

Both against the fake Slack Web API as a process (`python -m tests.fakes.slack_api --port 0 --token
xoxb-test`), echo agent. The outbound rate limits are raised so pacing does not dominate:
GATEWAY_SLACK_CHANNEL_RATE=100000, GATEWAY_SLACK_CHANNEL_BURST=100000,
GATEWAY_SLACK_WORKSPACE_RATE=1000000 (the defaults, 1/s per channel with a burst of 3 and 50/s per
workspace, would make this a rate-limiter benchmark).

Load: an open-loop generator in this process (aiohttp, one pooled connector of 256 connections):
sends are scheduled at t0 + i/rate and never wait for earlier responses. Each event is a signed
Slack `message` (tests/support/signing.slack_message + slack_headers) in its own thread (no
thread_ts, so thread = ts) over 100 channels, text `lat <run> <i>`. Latency = the fake's recorded
`at` (time.monotonic() of the fake process; CLOCK_MONOTONIC is shared by processes on Linux) of the
`chat.postMessage` whose text echoes `<i>`, minus this process's time.monotonic() right before the
POST. A 3 s warm-up at the same rate precedes the measured 20 s; the fake's calls are reset between.

The JSON log lines of the gateway processes give a breakdown per event (matched by conversation
key; wall clock, same machine): send -> `event_accepted` (ingress: verify, parse, dedupe claim,
confirmed publish), -> `turn_done` (queue, decode, done-marker check, agent, confirmed outbound
publish, history), -> the fake's call (outbound queue, sent-marker check, rate limiter, HTTP call).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import uuid
from datetime import datetime
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
    gateway_proc,
    machine_info,
    median,
    proc_cpu,
    py_spy_record,
    record_result,
    run_undisturbed,
    save_results,
    service_cpu,
    start_fake,
    stats_ms,
    stop_popen,
)
from tests.support.signing import slack_headers, slack_message

SECRET = "bench-latency-signing-secret-0032"
#: A realistic-looking test bot token: the gateway refuses placeholders such as "xoxb-test".
TOKEN = "xoxb-7305512940-5182736450918-Kq7Rw2Zt9Lm4Xp6Vb3Nc8Hd1"
CHANNELS = 100
#: What is printed of each run as it finishes.
BRIEF = (
    "round",
    "mode",
    "achieved_rate",
    "missing",
    "non_200",
    "latency_ms",
    "stages_ms",
    "cores_used",
    "interference",
)


def build_requests(run: str, start: int, n: int) -> list[tuple[int, str, bytes, dict[str, str]]]:
    out = []
    base = time.time()
    for i in range(start, start + n):
        channel = f"C{i % CHANNELS:05d}"
        ts = f"{base + i * 1e-4:.6f}"
        body = slack_message(f"lat {run} {i}", channel=channel, ts=ts)
        out.append((i, f"slack:T111:{channel}:{ts}", body, slack_headers(SECRET, body)))
    return out


async def generate(
    url: str, reqs: list[tuple[int, str, bytes, dict[str, str]]], rate: float
) -> dict[int, dict[str, Any]]:
    """Open loop: request k goes at t0 + k/rate whatever happened to the earlier ones."""
    sent: dict[int, dict[str, Any]] = {}
    conn = aiohttp.TCPConnector(limit=256, force_close=False)
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=10)) as s:

        async def one(i: int, body: bytes, headers: dict[str, str], scheduled: float) -> None:
            rec = sent[i]
            rec["wall"] = time.time()
            rec["t"] = t = time.monotonic()
            rec["late"] = t - scheduled
            try:
                async with s.post(url, data=body, headers=headers) as r:
                    await r.read()
                    rec["status"] = r.status
            except Exception as exc:
                rec["status"] = repr(exc)
            rec["http"] = time.monotonic() - t

        t0 = time.monotonic() + 0.05
        for k, (i, key, body, headers) in enumerate(reqs):
            at = t0 + k / rate
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[i] = {"key": key}
            task = asyncio.create_task(one(i, body, headers, at))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        last_scheduled = t0 + (len(reqs) - 1) / rate
        if tasks:
            await asyncio.wait(tasks, timeout=15)
    sent_span = max(r["t"] for r in sent.values()) - min(r["t"] for r in sent.values())
    sent[-1] = {"span": sent_span, "last_scheduled": last_scheduled}
    return sent


async def fake_calls(root: str, method: str = "chat.postMessage") -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(f"{root}/_calls", params={"method": method}) as r:
        return list((await r.json())["calls"])


async def reset_fake(root: str) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{root}/_reset") as r:
        await r.read()


async def wait_replies(root: str, run: str, ids: set[int], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        calls = await fake_calls(root)
        got = {_reply_id(c, run) for c in calls} & ids
        if len(got) >= len(ids) or time.monotonic() > deadline:
            return calls
        await asyncio.sleep(0.2)


def _reply_id(call: dict[str, Any], run: str) -> int | None:
    text = str(call.get("args", {}).get("text", ""))
    parts = text.split()
    if len(parts) >= 4 and parts[1] == "lat" and parts[2] == run:
        with contextlib.suppress(ValueError):
            return int(parts[3])
    return None


def log_times(procs: list[Proc]) -> dict[str, dict[str, float]]:
    """conversation key -> {log event -> wall time of its first line}."""
    want = {"event_accepted", "turn_done"}
    out: dict[str, dict[str, float]] = {}
    for p in procs:
        for line in p.logs().splitlines():
            if not line.startswith("{"):
                continue
            try:
                d = json.loads(line)
            except ValueError:
                continue
            ev = d.get("event")
            key = d.get("conversation_key")
            if ev in want and key:
                t = datetime.fromisoformat(d["timestamp"].replace("Z", "+00:00")).timestamp()
                out.setdefault(key, {}).setdefault(ev, t)
    return out


async def wait_leases(namespace: str, timeout: float = 30.0) -> None:
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            owners = await r.mget([f"{namespace}:lease:{p}" for p in range(16)])
            if all(owners):
                await asyncio.sleep(1.0)  # the last partition's subscription follows its lease
                return
            await asyncio.sleep(0.2)
        raise RuntimeError("consumer did not take all 16 partitions")
    finally:
        await r.aclose()


def echo_env(namespace: str, fake_base: str) -> dict[str, str]:
    """The gateway's environment for the echo agent answering through the fake Slack, pacing raised so the
    platform's limits do not set the latency being measured (bench/e2e uses the same)."""
    return {
        "AMQP_URL": AMQP_URL,
        "REDIS_URL": REDIS_URL,
        "GATEWAY_NAMESPACE": namespace,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_API_URL": fake_base,
        "GATEWAY_DEFAULT_AGENT": "echo",
        "GATEWAY_SLACK_CHANNEL_RATE": "100000",
        "GATEWAY_SLACK_CHANNEL_BURST": "100000",
        "GATEWAY_SLACK_WORKSPACE_RATE": "1000000",
        "GATEWAY_DRAIN_DELAY": "0",
    }


async def run_case(mode: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    namespace = f"bench-latency-{run}-{mode}"
    log_dir = out / "logs" / namespace
    log_dir.mkdir(parents=True, exist_ok=True)
    fake, fake_base = start_fake("tests.fakes.slack_api", ["--token", TOKEN], log_dir, "fake-slack")
    fake_root = fake_base.rsplit("/api/", 1)[0]
    env = {
        **echo_env(namespace, fake_base),
        **({"GATEWAY_PREFETCH": str(args.prefetch)} if args.prefetch else {}),
        **({"BENCH_VARIANT": args.variant} if args.variant else {}),
    }
    launcher = [PY, str(REPO / "bench/latency/variant.py")] if args.variant else None
    procs: list[Proc] = []
    result: dict[str, Any] = {
        "mode": mode,
        "variant": args.variant,
        "namespace": namespace,
        "rate": args.rate,
        "duration": args.duration,
    }
    profilers: list[Any] = []
    try:
        if mode == "split":
            consumer = gateway_proc("consume", "consume", env, log_dir, launcher=launcher)
            procs.append(consumer)
            consumer.wait_http()
            await wait_leases(namespace)
            ingress = gateway_proc("serve", "serve", env, log_dir)
            procs.append(ingress)
            ingress.wait_http()
        else:
            ingress = gateway_proc("dev", "dev", env, log_dir, launcher=launcher)
            procs.append(ingress)
            ingress.wait_http()
            await wait_leases(namespace)
        url = ingress.url + "/slack/events"
        # Warm-up (connections, pools, code paths), then forget its calls.
        warm = build_requests(run + "w", 0, int(args.rate * args.warmup))
        await generate(url, warm, args.rate)
        await wait_replies(fake_root, run + "w", {i for i, *_ in warm}, 10)
        await reset_fake(fake_root)
        await asyncio.sleep(0.5)

        n = int(args.rate * args.duration)
        reqs = build_requests(run, 0, n)
        if args.profile:
            for p in procs:
                dest = out / f"profile-{mode}-{p.name}-{run}.txt"
                profilers.append(
                    await asyncio.create_subprocess_exec(
                        *py_spy_record(p.pid, int(args.duration), dest),
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=asyncio.subprocess.DEVNULL,
                    )
                )
        cpu0 = {p.name: proc_cpu(p.pid) for p in procs}
        svc0 = service_cpu()
        fake_cpu0 = proc_cpu(fake.pid)
        gen_cpu0 = time.process_time()
        interference = Interference([p.pid for p in procs] + [fake.pid])
        t_start = time.monotonic()
        sent = await generate(url, reqs, args.rate)
        meta = sent.pop(-1)
        calls = await wait_replies(fake_root, run, set(sent), args.drain)
        result["interference"] = interference.done()
        elapsed = time.monotonic() - t_start
        cpu = {p.name: round(proc_cpu(p.pid) - cpu0[p.name], 2) for p in procs}
        cpu.update({k: round(v - svc0[k], 2) for k, v in service_cpu().items()})
        cpu["fake_slack"] = round(proc_cpu(fake.pid) - fake_cpu0, 2)
        cpu["generator"] = round(time.process_time() - gen_cpu0, 2)
        for pr in profilers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pr.wait(), 20)

        reply_at: dict[int, float] = {}
        dup = 0
        for c in calls:
            i = _reply_id(c, run)
            if i is None:
                continue
            if i in reply_at:
                dup += 1
                continue
            reply_at[i] = float(c["at"])
        lat = [reply_at[i] - rec["t"] for i, rec in sent.items() if i in reply_at]
        bad_status = sum(1 for rec in sent.values() if rec.get("status") != 200)
        http = [rec["http"] for rec in sent.values() if rec.get("status") == 200]
        late = [rec["late"] for rec in sent.values()]
        result.update(
            {
                "sent": len(sent),
                "achieved_rate": round((len(sent) - 1) / meta["span"], 1) if meta["span"] else None,
                "replies": len(reply_at),
                "missing": len(sent) - len(reply_at),
                "duplicates": dup,
                "non_200": bad_status,
                "latency_ms": stats_ms(lat),
                "http_ms": stats_ms(http),
                "generator_late_ms": stats_ms(late),
                "cpu_seconds": cpu,
                "cores_used": {k: round(v / elapsed, 2) for k, v in cpu.items()},
                "elapsed_s": round(elapsed, 1),
            }
        )
        # Stage breakdown from the JSON logs (wall clock). The fake's `at` is monotonic: shift it.
        offset = time.time() - time.monotonic()
        logs = log_times(procs)
        st: dict[str, list[float]] = {"ingress": [], "to_turn_done": [], "to_platform_call": []}
        for i, rec in sent.items():
            lt = logs.get(rec["key"], {})
            if i not in reply_at or "event_accepted" not in lt or "turn_done" not in lt:
                continue
            st["ingress"].append(lt["event_accepted"] - rec["wall"])
            st["to_turn_done"].append(lt["turn_done"] - lt["event_accepted"])
            st["to_platform_call"].append(reply_at[i] + offset - lt["turn_done"])
        result["stages_ms"] = {k: stats_ms(v) for k, v in st.items()}
    finally:
        for p in procs:
            p.stop()
        stop_popen(fake)
        with contextlib.suppress(Exception):
            await cleanup_namespace(namespace)
    return result


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--modes", default="split,dev")
    ap.add_argument("--rate", type=float, default=300.0)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--drain", type=float, default=15.0, help="max wait for the last replies (s)")
    ap.add_argument("--prefetch", type=int, default=0, help="GATEWAY_PREFETCH (0 = the default)")
    ap.add_argument(
        "--variant",
        default="",
        help="run consume/dev through bench/latency/variant.py with these experiments (see there); serve is stock",
    )
    ap.add_argument(
        "--profile", action="store_true", help="py-spy record (collapsed stacks) the gateway processes; see profile.py"
    )
    ap.add_argument("--out-dir", default="/tmp/bench-latency")
    ap.add_argument("--retries", type=int, default=2, help="re-runs of a case disturbed by other processes")
    args = ap.parse_args()
    if args.duration > 30:
        ap.error("--duration is capped at 30 s (each run must stay under 60 s)")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    results: list[dict[str, Any]] = []
    modes = args.modes.split(",")
    for rnd in range(args.rounds):
        order = modes if rnd % 2 == 0 else list(reversed(modes))
        for mode in order:
            r, seen = await run_undisturbed(
                f"latency {mode}", args.retries, lambda mode=mode: run_case(mode, args, out)
            )
            r["round"] = rnd
            r["machine_before"] = seen
            record_result(out, info, results, r, BRIEF)
    summary: dict[str, Any] = {}
    for mode in modes:
        rs = [r for r in results if r["mode"] == mode]
        summary[mode] = {
            k: median([r["latency_ms"][k] for r in rs if r["latency_ms"].get("n")])
            for k in ("p50", "p90", "p99", "max")
        }
        summary[mode]["achieved_rate"] = median([r["achieved_rate"] for r in rs])
        summary[mode]["missing_total"] = sum(r["missing"] for r in rs)
        summary[mode]["non_200_total"] = sum(r["non_200"] for r in rs)
        summary[mode]["p99_per_round"] = [r["latency_ms"].get("p99") for r in rs]
        for stage in ("ingress", "to_turn_done", "to_platform_call"):
            summary[mode][f"{stage}_p50"] = median([r["stages_ms"][stage].get("p50", float("nan")) for r in rs])
            summary[mode][f"{stage}_p99"] = median([r["stages_ms"][stage].get("p99", float("nan")) for r in rs])
    save_results(out, info, results, summary=summary)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
