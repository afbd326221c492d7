"""Webhook to first visible text, streaming against not streaming, in one run.

    python bench/stream/run.py                                     # 2 rounds x {plain, fast, sdk}, 100 conversations
    python bench/stream/run.py --rounds 1 --conversations 100 --tokens 50 --gap 0.02
    python bench/stream/run.py --rounds 1 --conversations 300 --rate 300 --modes plain,fast,sdk

Each round starts `gateway dev` on RabbitMQ and Redis (its own namespace, deleted afterwards) with the built-in
llm agent, once without streaming (``plain``) and once with ``GATEWAY_STREAM=1`` per model client (``fast``:
``GATEWAY_MODEL_CLIENT=fast``, agents/sse.py; ``sdk``: the openai SDK's stream), the order rotating each round so all
see the same machine.
The fake OpenAI server (a process: ``python -m tests.fakes.openai_api``) answers ``--tokens`` words, one SSE chunk
each ``--gap`` seconds; a whole (not streamed) answer is held back just as long (``pace_whole``), as a real model
takes as long to write it either way. The fake Slack Web API is a process too, and records every visible change of
text with its time (``GET /_timeline``; CLOCK_MONOTONIC is shared by the processes of one machine).

Load: ``--conversations`` signed Slack messages posted at once (or ``--rate`` per second), each in its own channel (a thread of its own), so
the per-channel pacing (1 update/s, bursts of 3) is what a real conversation gets; the workspace limit is raised
(GATEWAY_SLACK_WORKSPACE_RATE=100000) so that 100 conversations of one workspace do not measure that bucket.
First visible text = the fake's first step for the conversation's channel minus the time right before its POST;
final = the step that shows the whole answer for good.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import AMQP_URL, REDIS_URL, cleanup_namespace, machine_info, proc_cpu, stats_ms
from tests.fakes.process import run_fake
from tests.support.processes import GatewayProcess
from tests.support.signing import slack_headers, slack_message

SECRET = "bench-stream-signing-secret-00032"
#: Log events counted in each round's result: what went wrong, if anything.
NOTABLE = frozenset(
    {
        "partition_lease_lost",
        "turn_failed",
        "turn_abandoned",
        "stream_snapshot_failed",
        "stream_snapshot_not_sent",
        "outbound_retry",
        "dead_lettered",
        "publish_failed",
    }
)
TOKEN = "xoxb-bench-stream"


MODES = ("plain", "fast", "sdk")


def env_for(slack_url: str, model_url: str, namespace: str, mode: str) -> dict[str, str]:
    stream = mode != "plain"
    return {
        "GATEWAY_NAMESPACE": namespace,
        "AMQP_URL": AMQP_URL,
        "REDIS_URL": REDIS_URL,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_API_URL": slack_url,
        "GATEWAY_SLACK_WORKSPACE_RATE": "100000",
        "OPENAI_BASE_URL": f"{model_url}/v1",
        "OPENAI_API_KEY": "sk-bench-stream",
        "GATEWAY_LLM_MODEL": "gpt-4o-mini",
        "GATEWAY_DEFAULT_AGENT": "llm",
        "GATEWAY_STREAM": "1" if stream else "0",
        "GATEWAY_MODEL_CLIENT": mode if stream else "fast",
        "GATEWAY_TYPING_EVERY": "0",
        "GATEWAY_LOG_FORMAT": "json",
    }


async def timeline(session: aiohttp.ClientSession, root: str) -> list[dict[str, Any]]:
    async with session.get(f"{root}/_timeline") as resp:
        data: dict[str, Any] = await resp.json()
    return list(data["timeline"])


async def warm_up(session: aiohttp.ClientSession, url: str, slack_root: str, label: str, n: int = 32) -> None:
    """``n`` conversations first (over most partitions), so the measured ones find every partition owned and
    every connection pool warm."""
    channels = {f"CW{label}{i:02d}" for i in range(n)}
    for i, channel in enumerate(sorted(channels)):
        body = slack_message("warm up", channel=channel, ts=f"1700399{i:03d}.000100")
        async with session.post(f"{url}/slack/events", data=body, headers=slack_headers(SECRET, body)) as resp:
            resp.raise_for_status()
    deadline = time.monotonic() + 60
    while not channels <= {s["chat"] for s in await timeline(session, slack_root) if s["final"]}:
        if time.monotonic() > deadline:
            raise RuntimeError("the warm-up conversations got no answer")
        await asyncio.sleep(0.1)


async def one_round(args: argparse.Namespace, slack: Any, model: Any, mode: str, label: str) -> dict[str, Any]:
    namespace = f"bench-stream-{uuid.uuid4().hex[:8]}"
    answer = " ".join(f"tok{i}" for i in range(args.tokens))
    await model.post_control("/_config", {"stream_delay": args.gap, "pace_whole": True, "answer": answer})
    await slack.reset()
    env = env_for(slack.base_url, model.root_url, namespace, mode)
    if args.split:  # ingress and consumer in processes of their own
        gw = await GatewayProcess("serve", env).start(timeout=30)
        consumer = await GatewayProcess("consume", env, name="consume").start(timeout=30)
    else:
        gw = await GatewayProcess("dev", env).start(timeout=30)
        consumer = gw
    sent: dict[str, float] = {}
    retried = [0]
    assert gw.proc is not None
    assert consumer.proc is not None
    if args.pid_file:
        Path(args.pid_file).write_text(f"{consumer.proc.pid}\n")
    pids = {"gateway": gw.proc.pid, "consumer": consumer.proc.pid, "fake_openai": model.pid, "fake_slack": slack.pid}
    try:
        async with aiohttp.ClientSession() as session:
            await warm_up(session, gw.url, slack.root_url, label)
            cpu_before = {k: proc_cpu(pid) for k, pid in pids.items()}
            wall = time.monotonic()

            async def ask(i: int) -> None:
                channel = f"CB{label}{i:03d}"
                body = slack_message(f"question {i}", channel=channel, ts=f"1700400{i:03d}.000100")
                sent[channel] = time.monotonic()
                for attempt in range(10):  # a 503 (publish not confirmed in time) is retried, as Slack does
                    headers = slack_headers(SECRET, body)
                    async with session.post(f"{gw.url}/slack/events", data=body, headers=headers) as resp:
                        if resp.status == 200:
                            return
                        retried[0] += 1
                    await asyncio.sleep(0.2 * (attempt + 1))
                raise RuntimeError(f"POST answered {resp.status} ten times")

            async def paced(i: int) -> None:
                if args.rate > 0:
                    await asyncio.sleep(max(0.0, wall + i / args.rate - time.monotonic()))
                await ask(i)

            await asyncio.gather(*(paced(i) for i in range(args.conversations)))
            deadline = time.monotonic() + args.timeout
            while True:
                steps = await timeline(session, slack.root_url)
                finals = {s["chat"] for s in steps if s["final"] and s["text"] == answer}
                if finals >= set(sent) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            calls = await slack.calls()
            cpu = {k: round((proc_cpu(pid) - cpu_before[k]) / (time.monotonic() - wall), 2) for k, pid in pids.items()}
    finally:
        if consumer is not gw:
            await consumer.terminate()
        await gw.terminate()
        await cleanup_namespace(namespace)
    logged: dict[str, int] = {}
    first_error = ""
    for line in (gw.logs() + "\n" + (consumer.logs() if consumer is not gw else "")).splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        name = record.get("event")
        if name in NOTABLE:
            logged[name] = logged.get(name, 0) + 1
            first_error = first_error or str(record.get("error", ""))[:200]
    first: dict[str, float] = {}
    final: dict[str, float] = {}
    for s in steps:
        chat = s["chat"]
        if chat in sent and s["at"] >= sent[chat]:
            first.setdefault(chat, s["at"] - sent[chat])
            if s["final"] and s["text"] == answer:
                final.setdefault(chat, s["at"] - sent[chat])
    made: dict[str, int] = {}
    for c in calls:
        if c.method in ("chat.startStream", "chat.postMessage") and c.status == 200:
            channel = str(c.args.get("channel"))
            made[channel] = made.get(channel, 0) + 1
    methods: dict[str, int] = {}
    for c in calls:
        if c.method.startswith("chat."):
            methods[c.method] = methods.get(c.method, 0) + 1
    return {
        "mode": mode,
        "rate": args.rate or "at once",
        "processes": "serve+consume" if args.split else "dev",
        "conversations": len(sent),
        "answered": len(final),
        "first_visible_ms": stats_ms(list(first.values())),
        "final_ms": stats_ms(list(final.values())),
        "post_retries": retried[0],
        "cpu_cores": cpu,
        "messages_per_answer_max": max((made.get(c, 0) for c in sent), default=0),
        "answers_with_more_than_one_message": sum(1 for c in sent if made.get(c, 0) > 1),
        "logged": logged,
        "first_error": first_error,
        "slack_calls_per_answer": round(sum(methods.values()) / max(1, len(final)), 1),
        "methods": methods,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between two streamed tokens")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--split", action="store_true", help="gateway serve + gateway consume instead of dev")
    parser.add_argument("--rate", type=float, default=0.0, help="messages per second (0: all at once)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated, of: plain, fast, sdk")
    parser.add_argument("--pid-file", help="write each round's consumer pid here (for py-spy)")
    args = parser.parse_args()
    print(json.dumps({"machine": machine_info(), "args": vars(args)}), flush=True)
    async with (
        run_fake("tests.fakes.slack_api", "--token", TOKEN) as slack,
        run_fake("tests.fakes.openai_api", "--api-key", "sk-bench-stream") as model,
    ):
        modes = [m for m in args.modes.split(",") if m]
        if not modes or set(modes) - set(MODES):
            parser.error(f"--modes: of {', '.join(MODES)}")
        for r in range(args.rounds):
            for k in range(len(modes)):
                mode = modes[(r + k) % len(modes)]
                result = await one_round(args, slack, model, mode, f"{r}{mode[0]}")
                print(json.dumps({"round": r, **result}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
