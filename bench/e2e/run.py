"""End to end in one box: accepted and answered events/s, and webhook-to-reply latency at 300/s (issue 17 item 4).

    python bench/e2e/run.py                                   # every mode, one round
    python bench/e2e/run.py --modes bare,split,dev --offered 1500 --seconds 8 --rate 300 --latency-seconds 10

Modes, each on the real RabbitMQ and Redis with the fake Slack Web API as a process
(``python -m tests.fakes.slack_api``), the echo agent, outbound rate limits raised as in
bench/latency/run.py so pacing does not decide the numbers:

    dev     ``gateway dev``: ingress, dispatch and outbound in one process
    split   ``gateway serve`` + ``gateway consume``: two processes
    bare    the baseline, measured in the same invocation: bench/ingress/baseline.py (HMAC check, confirmed
            persistent publish of the raw body, 200) + bench/e2e/bare_relay.py (consume, parse,
            ``chat.postMessage`` ``echo: <text>``, ack). No dedupe, routing, history, leases, outbound
            queue, rate limiter, log line or metric: the floor of a durable webhook-to-reply path here.

Two phases per mode, with the same generator as bench/latency (open loop: request k leaves at
t0 + k/rate whatever happened to the earlier ones; signed Slack messages, one thread each, 100
channels):

    throughput  ``--offered`` events/s for ``--seconds``: accepted/s = 200s / send span; answered/s =
                replies the fake received / time from the first send to the last reply (replies are
                awaited up to ``--drain`` s after the last send; the rest are counted missing).
    latency     ``--rate`` events/s (300) for ``--latency-seconds``: send -> the fake's receipt of the reply,
                p50/p90/p99. Runs first, on an empty pipeline (after a 2 s warm-up at the same rate).

The fake's bot token is a realistic-looking test value (the gateway refuses placeholder secrets). Each
mode's queues, exchanges and Redis keys are deleted afterwards. Only 127.0.0.1 is contacted; every phase
is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (
    AMQP_URL,
    PY,
    REPO,
    Interference,
    Proc,
    cleanup_namespace,
    delete_queues_and_exchanges,
    gateway_proc,
    machine_info,
    proc_cpu,
    service_cpu,
    start_fake,
    stats_ms,
    stop_popen,
)
from bench.latency.run import (
    SECRET,
    TOKEN,
    _reply_id,
    build_requests,
    echo_env,
    fake_calls,
    generate,
    reset_fake,
    wait_leases,
)
from tests.support.processes import free_port

#: Looks like a Slack bot token (team id, bot id, 24 letters and digits): not a placeholder.
MODES = ("bare", "split", "dev")


def start_mode(mode: str, namespace: str, fake_base: str, log_dir: Path) -> tuple[list[Proc], str]:
    """Start a mode's processes; return them and the webhook URL once they are ready."""
    if mode == "bare":
        env = {"SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": TOKEN, "AMQP_URL": AMQP_URL}
        port = free_port()
        ingress = Proc(
            "bare-ingress",
            [PY, str(REPO / "bench/ingress/baseline.py"), "--port", str(port), "--namespace", namespace, "--uvloop"],
            {**_base_env(), **env},
            log_dir,
            port=port,
        )
        ingress.wait_http()
        relay = Proc(
            "bare-relay",
            [PY, str(REPO / "bench/e2e/bare_relay.py"), "--namespace", namespace, "--api-url", fake_base, "--uvloop"],
            {**_base_env(), **env},
            log_dir,
        )
        return [ingress, relay], ingress.url + "/slack/events"
    env = echo_env(namespace, fake_base)
    procs: list[Proc] = []
    if mode == "split":
        consumer = gateway_proc("consume", "consume", env, log_dir)
        procs.append(consumer)
        consumer.wait_http()
        ingress = gateway_proc("serve", "serve", env, log_dir)
        procs.append(ingress)
        ingress.wait_http()
    else:
        ingress = gateway_proc("dev", "dev", env, log_dir)
        procs.append(ingress)
        ingress.wait_http()
    return procs, ingress.url + "/slack/events"


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "SLACK_"))}


async def phase(
    name: str, url: str, fake_root: str, rate: float, seconds: float, drain: float, procs: list[Proc], fake_pid: int
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    reqs = build_requests(run, 0, int(rate * seconds))
    await reset_fake(fake_root)
    cpu0 = {p.name: proc_cpu(p.pid) for p in procs}
    svc0 = service_cpu()
    interference = Interference([p.pid for p in procs] + [fake_pid])
    t_start = time.monotonic()
    sent = await generate(url, reqs, rate)
    meta = sent.pop(-1)
    ids = set(sent)
    deadline = time.monotonic() + drain
    while True:
        calls = await fake_calls(fake_root)
        got = {_reply_id(c, run) for c in calls} & ids
        if len(got) >= len(ids) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    elapsed = time.monotonic() - t_start
    cpu = {p.name: round(proc_cpu(p.pid) - cpu0[p.name], 2) for p in procs}
    cpu.update({k: round(v - svc0[k], 2) for k, v in service_cpu().items()})
    reply_at: dict[int, float] = {}
    for c in calls:
        i = _reply_id(c, run)
        if i is not None and i not in reply_at:
            reply_at[i] = float(c["at"])
    accepted = [rec for rec in sent.values() if rec.get("status") == 200]
    first_send = min(rec["t"] for rec in sent.values())
    last_reply = max(reply_at.values()) if reply_at else first_send
    lat = [reply_at[i] - rec["t"] for i, rec in sent.items() if i in reply_at]
    return {
        "phase": name,
        "offered_per_s": rate,
        "sent": len(sent),
        "accepted": len(accepted),
        "non_200": len(sent) - len(accepted),
        "accepted_per_s": round(len(accepted) / meta["span"], 1) if meta["span"] else None,
        "answered": len(reply_at),
        "missing": len(sent) - len(reply_at),
        "answered_per_s": round(len(reply_at) / (last_reply - first_send), 1) if reply_at else 0.0,
        "latency_ms": stats_ms(lat),
        "cpu_seconds": cpu,
        "cores_used": {k: round(v / elapsed, 2) for k, v in cpu.items()},
        "interference": interference.done(),
    }


async def run_mode(mode: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    namespace = f"bench-e2e-{uuid.uuid4().hex[:8]}-{mode}"
    log_dir = out / "logs" / namespace
    log_dir.mkdir(parents=True, exist_ok=True)
    fake, fake_base = start_fake("tests.fakes.slack_api", ["--token", TOKEN], log_dir, "fake-slack")
    fake_root = fake_base.rsplit("/api/", 1)[0]
    procs: list[Proc] = []
    result: dict[str, Any] = {"mode": mode, "namespace": namespace}
    try:
        procs, url = start_mode(mode, namespace, fake_base, log_dir)
        if mode != "bare":
            await wait_leases(namespace)
        # Warm-up at the latency rate (connections, pools, code paths), then the latency phase on an empty
        # pipeline, then the throughput phase (its backlog would otherwise sit in front of the latency phase).
        await phase("warmup", url, fake_root, args.rate, 2, 10, procs, fake.pid)
        result["latency"] = await phase(
            "latency", url, fake_root, args.rate, args.latency_seconds, args.drain, procs, fake.pid
        )
        result["throughput"] = await phase(
            "throughput", url, fake_root, args.offered, args.seconds, args.drain, procs, fake.pid
        )
    finally:
        for p in procs:
            p.stop()
        stop_popen(fake)
        with contextlib.suppress(Exception):
            if mode == "bare":
                await delete_queues_and_exchanges(AMQP_URL, [f"{namespace}.baseline"], [])
            else:
                await cleanup_namespace(namespace)
    return result


def brief(r: dict[str, Any]) -> str:
    t, lat = r["throughput"], r["latency"]
    return (
        f"{r['mode']:<6} offered {t['offered_per_s']:.0f}/s: accepted {t['accepted_per_s']}/s, answered "
        f"{t['answered_per_s']}/s, missing {t['missing']}, non-200 {t['non_200']} | at {lat['offered_per_s']:.0f}/s: "
        f"p50 {lat['latency_ms'].get('p50')} ms, p99 {lat['latency_ms'].get('p99')} ms, missing {lat['missing']}, "
        f"non-200 {lat['non_200']} | cores {lat['cores_used']} | other processes "
        f"{t['interference']['foreign_cores']} / {lat['interference']['foreign_cores']} cores"
    )


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--offered", type=float, default=1500.0, help="offered events/s in the throughput phase")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of the throughput phase (max 20)")
    ap.add_argument("--rate", type=float, default=300.0, help="events/s in the latency phase")
    ap.add_argument("--latency-seconds", type=float, default=10.0, help="length of the latency phase (max 20)")
    ap.add_argument("--drain", type=float, default=15.0, help="max wait for the last replies of a phase (s)")
    ap.add_argument("--out-dir", default=f"/tmp/bench-e2e-{time.strftime('%Y%m%d-%H%M%S')}")
    args = ap.parse_args()
    if args.seconds > 20 or args.latency_seconds > 20:
        ap.error("phases are capped at 20 s")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    modes = [m for m in args.modes.split(",") if m]
    if unknown := set(modes) - set(MODES):
        ap.error(f"unknown modes {sorted(unknown)}")
    results = []
    for rnd in range(args.rounds):
        for mode in modes if rnd % 2 == 0 else list(reversed(modes)):
            r = await run_mode(mode, args, out)
            r["round"] = rnd
            results.append(r)
            print(brief(r), flush=True)
    doc: dict[str, Any] = {
        "machine": machine_info(),
        "command": " ".join([Path(PY).name, *sys.argv]),
        "args": vars(args),
    }
    doc["results"] = results
    (out / "results.json").write_text(json.dumps(doc, indent=1))
    print(f"results: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
