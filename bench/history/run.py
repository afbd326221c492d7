"""Per-turn handling time vs stored history length, echo agent and LLM agent (instant fake model).

    . .venv/bin/activate && python bench/history/run.py          # 3 rounds
    python bench/history/run.py --rounds 1 --convs 20 --turns 5

In-process, with the real parts: consumers.dispatch.Dispatcher (decode, done-marker check, agent
pool, TurnContext, agent, confirmed outbound publish to RabbitMQ, history record in Redis, metrics,
JSON log line to a file) over gateway.core.store.redis.RedisStore and gateway.core.bus.amqp.AmqpBus, on uvloop
as `gateway` runs. Each turn is one Delivery handed to ``Dispatcher.run`` and timed with
perf_counter; turns run one at a time (no contention), conversations interleaved.

Before the turns, the history list of every conversation is preloaded in Redis at
``{ns}:hist:{agent}:{conversation_key}`` with N items shaped like agents/context.py Turn.to_json()
(alternating user/assistant, ~150-character texts), N in --lengths (default 10, 100, 10000).

Agents:
    echo  agents/echo.py (reads no history; the runtime still records two turns per event)
    llm   agents/agent.py Agent against `python -m tests.fakes.openai_api` (a process; it answers
          at once with "echo: <last user message>"): it reads the 50-turn window (LRANGE -50 -1) and
          sends system + window + the new message. Model time (the openai client's HTTP round trip
          to the fake) is timed separately, so runtime overhead = turn - model.

    flow  agents/flows Flow (bench_flow below): the first message gives the order number (a pattern, no
          model), every later one is at a free-text step: the flow state read (GET), a model call
          (system + 10-turn window + the message, fill_slots offered; the fake answers in text, so the
          step stays), the version claim (SET NX) and the state write (SET). Its store calls are
          timed as "flow_state" (and one by one: flow_get, flow_claim, flow_put).

Usage accounting is on as in `gateway consume` (consumers/usage.py UsageLedger: the turn's route and
budget terms before it, its tokens added to the usage hashes after it, timed as "usage"); --no-usage
turns it off.

Also timed on their own: the history read (store.tail) and the record (store.push: one EVALSHA that
appends, trims to HISTORY_KEEP=1000 and sets the turn's done markers). The first turn of a conversation preloaded with 10,000 items trims it to 1,000
(consumers/dispatch.py HISTORY_KEEP), so "first turn" and "later turns" are reported apart.
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
    REDIS_URL,
    Interference,
    cleanup_namespace,
    machine_info,
    median,
    record_result,
    run_undisturbed,
    save_results,
    start_fake,
    stats_ms,
    stop_popen,
)

#: What is printed of each round as it finishes (then a line per case).
BRIEF = ("round", "seconds", "list_lengths_after", "dead_letters", "turn_errors", "interference")
TEXT = "Could you check the status of order A-{n} and tell me when it ships? Thanks a lot, it is urgent for us."


async def preload(namespace: str, agent: str, keys: list[str], n: int) -> None:
    import redis.asyncio as aioredis

    from agents.context import Turn, history_key

    items = [
        Turn(
            "user" if i % 2 == 0 else "assistant", TEXT.format(n=i), f"ev{i:08d}", "U0HIST" if i % 2 == 0 else None
        ).to_json()
        for i in range(n)
    ]
    r = aioredis.Redis.from_url(REDIS_URL)
    try:
        for key in keys:
            k = f"{namespace}:{history_key(agent, key)}"
            pipe = r.pipeline(transaction=False)
            pipe.delete(k)
            for i in range(0, n, 1000):
                pipe.rpush(k, *items[i : i + 1000])
            await pipe.execute()
    finally:
        await r.aclose()


def bench_flow() -> Any:
    """Order number (deterministic), then a free-text problem the model would fill (agents/flows/)."""
    from pydantic import BaseModel, Field

    from agents.flows import Flow, Instructions, Step

    class Ticket(BaseModel):
        order_number: str = Field(pattern=r"^A-\d+$", description="order number, like A-1042")
        problem: str = Field(min_length=5, description="what went wrong")

    return Flow(
        "flow",
        schema=Ticket,
        model="gpt-4o-mini",
        instructions=Instructions("You take tickets.", must=["be brief"], must_not=["guess"], should=["be kind"]),
        steps=[
            Step("order", collect=["order_number"], prompt="Which order?"),
            Step("problem", collect=["problem"], prompt="What went wrong with {order_number}?", free_text=True),
        ],
    )


async def run_round(args: argparse.Namespace, fake_url: str, rnd: int, fake_pid: int) -> dict[str, Any]:
    from agents.agent import Agent
    from agents.context import history_key
    from agents.echo import EchoAgent
    from agents.registry import AgentFactory
    from consumers.deadletter import DeadLetters
    from consumers.dispatch import HISTORY_KEEP, DispatchConfig, Dispatcher
    from consumers.pool import AgentPool
    from consumers.usage import UsageLedger
    from gateway.client import slack_thread
    from gateway.core.bus.amqp import AmqpBus
    from gateway.core.bus.base import Delivery
    from gateway.core.bus.topology import Topology
    from gateway.core.events import Event, EventKind, Sender, new_id
    from gateway.core.metrics import Metrics
    from gateway.core.publish import Publisher, event_headers
    from gateway.core.routing import conversation_key
    from gateway.core.store.redis import RedisStore

    namespace = f"bench-history-{uuid.uuid4().hex[:8]}"

    store = RedisStore(REDIS_URL, namespace)
    bus = AmqpBus(AMQP_URL, Topology(namespace, 16))
    await bus.start()
    metrics = Metrics()
    publisher = Publisher(bus, metrics)
    llm = Agent(name="llm", model="gpt-4o-mini")
    llm.configure(base_url=fake_url + "/v1", api_key="sk-test", default_model=None)
    flow = bench_flow()
    flow.configure(base_url=fake_url + "/v1", api_key="sk-test", default_model=None)
    factories = {
        "echo": AgentFactory("echo", EchoAgent()),
        "llm": AgentFactory("llm", llm),
        "flow": AgentFactory("flow", flow),
    }
    pool = AgentPool(factories, store)
    dispatcher = Dispatcher(
        publisher=publisher,
        store=store,
        pool=pool,
        dead=DeadLetters(publisher, metrics),
        metrics=metrics,
        config=DispatchConfig(default_agent="echo", history_window=50),
        usage=UsageLedger(store, metrics, default_agent="echo") if args.usage else None,
    )

    # Timers around the model call, the history read and the record (the turns run one at a time).
    acc = {"model": 0.0, "model_cpu": 0.0, "tail": 0.0, "push": 0.0, "publish": 0.0}
    acc |= {"flow_get": 0.0, "flow_claim": 0.0, "flow_put": 0.0, "usage": 0.0}

    def timed(name: str, fn: Any) -> Any:
        async def wrapper(*a: Any, **kw: Any) -> Any:
            t, c = time.perf_counter(), time.process_time()
            try:
                return await fn(*a, **kw)
            finally:
                acc[name] += time.perf_counter() - t
                if name == "model":
                    acc["model_cpu"] += time.process_time() - c

        return wrapper

    for model in (llm.model, flow.agent.model):
        model.complete = timed("model", model.complete)  # type: ignore[method-assign]
    store.tail = timed("tail", store.tail)  # type: ignore[method-assign]
    store.push = timed("push", store.push)  # type: ignore[method-assign]
    publisher.outbound = timed("publish", publisher.outbound)  # type: ignore[method-assign]
    # The flow state's calls (nothing else in this process uses get, claim or put) and the usage record.
    store.get = timed("flow_get", store.get)  # type: ignore[method-assign]
    store.claim = timed("flow_claim", store.claim)  # type: ignore[method-assign]
    store.put = timed("flow_put", store.put)  # type: ignore[method-assign]
    store.hincr = timed("usage", store.hincr)  # type: ignore[method-assign]

    async def settle(how: str) -> None:
        settled.append(how)

    settled: list[str] = []
    lengths = [int(x) for x in args.lengths.split(",")]
    convs: list[tuple[str, int, str, Any]] = []  # (agent, length, key, address)
    for agent in args.agents.split(","):
        for length in lengths:
            keys = []
            for c in range(args.convs):
                addr = slack_thread(f"C{length}", f"1700000000.{c:06d}", team=f"T{agent.upper()}")
                keys.append(conversation_key(addr))
                convs.append((agent, length, keys[-1], addr))
            await preload(namespace, agent, keys, length)
    # Interleave: conversation c of every (agent, length) in turn.
    convs.sort(key=lambda x: (int(x[3].thread.split(".")[1]), x[0], x[1]))

    samples: dict[tuple[str, int], dict[str, list[float]]] = {}
    interference = Interference([fake_pid])
    sender = Sender(id="U0HIST", name="bench")
    dead_before = metrics.dead_letters.labels("dispatch")._value.get()
    try:
        for turn in range(args.turns):
            for agent, length, key, addr in convs:
                eid = new_id()
                event = Event(
                    id=eid,
                    platform="slack",
                    delivery_id=f"api:{eid}",
                    kind=EventKind.MESSAGE,
                    conversation_key=key,
                    agent=agent,
                    sender=sender,
                    text=f"turn {turn}: " + TEXT.format(n=turn),
                    reply_to=addr,
                    message_ref=f"api:{eid}",
                )
                d = Delivery(
                    body=event.model_dump_json().encode(),
                    headers=event_headers(event),
                    routing_key="0",
                    exchange=f"{namespace}.events",
                    message_id=eid,
                    redeliveries=0,
                    _settle=settle,
                )
                for k in acc:
                    acc[k] = 0.0
                t = time.perf_counter()
                await dispatcher.run(key, [d])
                dt = time.perf_counter() - t
                if settled[-1:] != ["ack"]:
                    raise RuntimeError(f"turn not acked: {settled[-1:]}")
                s = samples.setdefault((agent, length), {})
                phase = "first" if turn == 0 else "later"
                for name, v in (
                    ("turn", dt),
                    ("model", acc["model"]),
                    ("model_client_cpu", acc["model_cpu"]),
                    ("runtime", dt - acc["model"]),
                    ("history_read", acc["tail"]),
                    ("record", acc["push"]),
                    ("outbound_publish", acc["publish"]),
                    ("flow_state", acc["flow_get"] + acc["flow_claim"] + acc["flow_put"]),
                    ("flow_get", acc["flow_get"]),
                    ("flow_claim", acc["flow_claim"]),
                    ("flow_put", acc["flow_put"]),
                    ("usage", acc["usage"]),
                ):
                    s.setdefault(f"{name}_all", []).append(v)
                    s.setdefault(f"{name}_{phase}", []).append(v)
        seen_during = interference.done()
        lens = {}
        for agent, length, key, _ in convs:
            if f"{agent}/{length}" not in lens:
                lens[f"{agent}/{length}"] = await store.length(history_key(agent, key))
        dead = metrics.dead_letters.labels("dispatch")._value.get() - dead_before
        errors = sum(metrics.turns.labels(a, "error")._value.get() for a in args.agents.split(","))
    finally:
        await pool.close()
        await llm.model.close()  # type: ignore[attr-defined]
        await flow.agent.model.close()  # type: ignore[attr-defined]
        await bus.close()
        await store.close()
        with contextlib.suppress(Exception):
            await cleanup_namespace(namespace)
    result: dict[str, Any] = {
        "round": rnd,
        "namespace": namespace,
        "history_keep": HISTORY_KEEP,
        "interference": seen_during,
        "list_lengths_after": lens,
        "dead_letters": dead,
        "turn_errors": errors,
        "stats_ms": {
            f"{a}/{n}": {k: stats_ms(v, digits=3, mean=True) for k, v in s.items()} for (a, n), s in samples.items()
        },
    }
    return result


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--agents", default="echo,llm,flow")
    ap.add_argument("--no-usage", dest="usage", action="store_false", help="no usage accounting (UsageLedger)")
    ap.add_argument("--lengths", default="10,100,10000")
    ap.add_argument("--convs", type=int, default=40, help="conversations per (agent, length)")
    ap.add_argument("--turns", type=int, default=8, help="turns per conversation")
    ap.add_argument("--out-dir", default="/tmp/bench-history")
    ap.add_argument("--retries", type=int, default=2, help="re-runs of a round disturbed by other processes")
    args = ap.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    fake, fake_url = start_fake("tests.fakes.openai_api", ["--api-key", "sk-test"], out, "fake-openai")
    results: list[dict[str, Any]] = []
    # The gateway's JSON lines go to a file, as in a real process (configured once: loggers are cached).
    import structlog

    from gateway.core import logs

    log_file = (out / "gateway.log").open("w")
    real_stderr = sys.stderr
    sys.stderr = log_file
    structlog.reset_defaults()
    logs.configure("json", "info")
    try:
        for rnd in range(args.rounds):
            t0 = 0.0

            async def one_round(rnd: int = rnd) -> dict[str, Any]:
                nonlocal t0
                t0 = time.monotonic()
                return await asyncio.wait_for(run_round(args, fake_url, rnd, fake.pid), 60)

            r, seen = await run_undisturbed("history", args.retries, one_round, unit="round", err=real_stderr)
            r["seconds"] = round(time.monotonic() - t0, 1)
            r["machine_before"] = seen
            record_result(out, info, results, r, BRIEF)
            for case, st in r["stats_ms"].items():
                print(
                    case,
                    json.dumps(
                        {
                            k: st[k]
                            for k in (
                                "turn_all",
                                "turn_first",
                                "turn_later",
                                "runtime_all",
                                "history_read_all",
                                "record_all",
                                "flow_state_all",
                                "usage_all",
                            )
                            if k in st
                        }
                    ),
                    flush=True,
                )
            # Reset the fake's recorded calls (it keeps every request body).
            import aiohttp

            async with aiohttp.ClientSession() as s, s.post(fake_url + "/_reset") as resp:
                await resp.read()
    finally:
        stop_popen(fake)
        sys.stderr = real_stderr
        log_file.close()
    summary: dict[str, Any] = {}
    for case in results[0]["stats_ms"]:
        summary[case] = {}
        for metric in results[0]["stats_ms"][case]:
            for q in ("p50", "p99"):
                summary[case][f"{metric}_{q}"] = median([r["stats_ms"][case][metric][q] for r in results])
    save_results(out, info, results, summary=summary)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    raise SystemExit(asyncio.run(main()))
