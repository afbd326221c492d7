"""Scale-out proof: real `gateway serve` and `gateway consume` processes, real RabbitMQ and Redis.

    python -m bench.scaleout.run                # full run (~2 min)
    python -m bench.scaleout.run --quick        # the CI-sized run used by tests/e2e/test_scaleout.py

1. Capacity: drain a backlog with 1, 2 and 3 consumers (echo agent, replies to a local fake Slack).
2. Chaos under steady load (open-loop, per-conversation sequential like a chat): SIGKILL a consumer,
   add one, SIGTERM one, add one, restart RabbitMQ. Senders retry 503s and refused connections
   the way Slack does, so only 200s count as accepted.
3. Report: accepted, replied, lost (must be 0), duplicated, order violations (must be 0), how long
   partitions took to move after the SIGKILL and after the SIGTERM, and capacity per consumer count.
Everything runs on 127.0.0.1 and is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

import aiohttp

from consumers.leases import lease_key
from gateway.core import samples
from gateway.core.bus.amqp import AmqpBus
from gateway.core.bus.topology import Topology
from gateway.core.events import Event, EventKind, ReplyAddress
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.store.redis import RedisStore
from tests.fakes.slack_api import FakeSlack
from tests.support.processes import GatewayProcess
from tests.support.services import AMQP_URL, REDIS_URL, new_namespace, purge_namespace
from tests.support.signing import slack_headers

SECRET = "scaleout-signing-secret-32-chars"
PARTITIONS = 16


@dataclass
class Config:
    serves: int = 2
    rate: float = 150.0
    conversations: int = 60
    phase: float = 10.0
    capacity_events: int = 3000
    lease_ttl: float = 3.0
    restart_broker: bool = True
    seed: int = 0


@dataclass
class Report:
    capacity: dict[int, float] = field(default_factory=dict)
    accepted: int = 0
    replied_distinct: int = 0
    replies_total: int = 0
    lost: int = 0
    duplicated: int = 0
    order_violations: int = 0
    refused_503: int = 0
    connection_errors: int = 0
    move_after_sigkill_s: float | None = None
    move_after_sigterm_s: float | None = None
    broker_restart_s: float | None = None
    events: list[str] = field(default_factory=list)


class Cluster:
    def __init__(self, namespace: str, slack: FakeSlack, cfg: Config) -> None:
        self.ns = namespace
        self.cfg = cfg
        self.env = {
            "AMQP_URL": AMQP_URL,
            "REDIS_URL": REDIS_URL,
            "GATEWAY_NAMESPACE": namespace,
            "GATEWAY_PARTITIONS": str(PARTITIONS),
            "GATEWAY_LEASE_TTL": str(cfg.lease_ttl),
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": "xoxb-scale",
            "SLACK_API_URL": slack.base_url,
            "GATEWAY_SLACK_CHANNEL_RATE": "100000",
            "GATEWAY_SLACK_CHANNEL_BURST": "100000",
            "GATEWAY_SLACK_WORKSPACE_RATE": "100000",
            "GATEWAY_LOG_LEVEL": "warning",
            "GATEWAY_DRAIN_DELAY": "0",
        }
        self.serves: list[GatewayProcess] = []
        self.consumers: dict[str, GatewayProcess] = {}
        self._ids = itertools.count()
        self.store = RedisStore(REDIS_URL, namespace)

    async def start_serves(self) -> None:
        for i in range(self.cfg.serves):
            self.serves.append(await GatewayProcess("serve", self.env, name=f"serve-{i}").start())

    async def add_consumer(self) -> str:
        cid = f"c{next(self._ids)}"
        proc = GatewayProcess("consume", {**self.env, "GATEWAY_CONSUMER_ID": cid}, name=cid)
        self.consumers[cid] = await proc.start()
        return cid

    async def owners(self) -> list[str | None]:
        return await self.store.lease_owners([lease_key(p) for p in range(PARTITIONS)])

    async def wait_balanced(self, timeout: float = 30.0) -> float:
        """Seconds until every partition is owned by a live consumer, evenly."""
        start = time.monotonic()
        live = set(self.consumers)
        fair = {PARTITIONS // len(live), -(-PARTITIONS // len(live))} if live else set()
        while time.monotonic() - start < timeout:
            owners = await self.owners()
            if all(o in live for o in owners) and {owners.count(c) for c in live} <= fair:
                return time.monotonic() - start
            await asyncio.sleep(0.05)
        raise RuntimeError(f"partitions did not settle within {timeout}s: {await self.owners()}")

    async def kill(self, cid: str) -> None:
        await self.consumers.pop(cid).kill()

    async def terminate(self, cid: str) -> int:
        return await self.consumers.pop(cid).terminate()

    async def close(self) -> None:
        for proc in [*self.consumers.values(), *self.serves]:
            await proc.terminate()
        await self.store.close()


class SteadyLoad:
    """Each conversation sends its messages in sequence; across conversations at ``rate`` per second."""

    def __init__(self, urls: list[str], cfg: Config) -> None:
        self.urls = urls
        self.cfg = cfg
        self.accepted: dict[int, list[int]] = {t: [] for t in range(cfg.conversations)}
        self.refused = 0
        self.errors = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        per_conversation = self.cfg.rate / self.cfg.conversations
        self._tasks = [
            asyncio.create_task(self._conversation(t, per_conversation)) for t in range(self.cfg.conversations)
        ]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _conversation(self, t: int, rate: float) -> None:
        interval = 1.0 / rate
        next_at = time.monotonic() + (t / self.cfg.conversations) * interval
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            for i in itertools.count():
                if self._stop.is_set():
                    return
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                body = samples.slack_message(
                    f"t{t}-m{i}", channel=f"C{t % 8}", thread_ts=f"1702000{t:03d}.000000", ts=f"1702100{t:03d}.{i:06d}"
                )
                while not await self._deliver(session, t, body):
                    if self._stop.is_set():
                        return
                    await asyncio.sleep(0.5)  # like a platform retrying a failed delivery
                self.accepted[t].append(i)
                next_at += interval

    async def _deliver(self, session: aiohttp.ClientSession, t: int, body: bytes) -> bool:
        url = self.urls[t % len(self.urls)] + "/slack/events"
        try:
            async with session.post(url, data=body, headers=slack_headers(SECRET, body)) as resp:
                await resp.read()
                if resp.status == 200:
                    return True
                self.refused += 1
        except (aiohttp.ClientError, OSError, TimeoutError):
            self.errors += 1
        return False


def replies(slack: FakeSlack, prefix: str = "echo: t") -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for m in slack.messages:
        text = m["text"]
        if text.startswith(prefix):
            t, i = text.removeprefix(prefix).split("-m")
            out.setdefault(int(t), []).append(int(i))
    return out


async def wait_for(probe: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def measure_capacity(cluster: Cluster, slack: FakeSlack, consumers: int, n: int) -> float:
    """Drain rate (replies/s) of ``consumers`` processes over a backlog of ``n`` events."""
    while len(cluster.consumers) < consumers:
        await cluster.add_consumer()
    await cluster.wait_balanced()
    bus = AmqpBus(AMQP_URL, Topology(cluster.ns, PARTITIONS))
    await bus.start()
    publisher = Publisher(bus, Metrics())
    tag = f"cap{consumers}-"
    before = len(slack.messages)
    events = [
        Event(
            platform="slack",
            delivery_id=f"{tag}{k}",
            kind=EventKind.MESSAGE,
            agent="echo",
            conversation_key=f"slack:T:CCAP:{k % 200}",
            text=f"{tag}{k}",
            message_ref=f"{tag}{k}",
            reply_to=ReplyAddress(platform="slack", bot="T", channel=f"CCAP{k % 8}", thread=str(k % 200)),
        )
        for k in range(n)
    ]
    for chunk in range(0, n, 500):
        await asyncio.gather(*(publisher.event(e) for e in events[chunk : chunk + 500]))
    await bus.close()
    await wait_for(lambda: _at_least(slack, before + 1), 30, "the first capacity reply")
    first = slack.calls_for("chat.postMessage")[before].at
    await wait_for(lambda: _at_least(slack, before + n), 120, f"{n} capacity replies")
    last = slack.calls_for("chat.postMessage")[before + n - 1].at
    return n / max(1e-6, last - first)


async def _at_least(slack: FakeSlack, n: int) -> bool:
    return len(slack.messages) >= n


async def restart_broker() -> float:
    start = time.monotonic()
    for action in ("stop_app", "start_app"):
        proc = await asyncio.create_subprocess_exec(
            "rabbitmqctl", action, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        await proc.wait()
    proc = await asyncio.create_subprocess_exec(
        "rabbitmq-diagnostics",
        "-q",
        "check_running",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await proc.wait()
    return time.monotonic() - start


async def chaos(cluster: Cluster, slack: FakeSlack, cfg: Config, report: Report) -> None:
    while len(cluster.consumers) > 2:
        await cluster.terminate(sorted(cluster.consumers)[0])
    await cluster.wait_balanced()
    base = len(slack.messages)
    load = SteadyLoad([s.url for s in cluster.serves], cfg)
    load.start()

    def note(text: str) -> None:
        report.events.append(f"{time.strftime('%H:%M:%S')} {text}")

    rng = random.Random(cfg.seed)
    note(f"random seed {cfg.seed}")

    def pause() -> float:
        return cfg.phase * rng.uniform(0.6, 1.4)

    await asyncio.sleep(pause())
    victim = rng.choice(sorted(cluster.consumers))
    t0 = time.monotonic()
    await cluster.kill(victim)
    report.move_after_sigkill_s = (time.monotonic() - t0) + await cluster.wait_balanced()
    note(f"SIGKILL {victim}: partitions moved in {report.move_after_sigkill_s:.2f}s")
    await asyncio.sleep(pause())
    note(f"added {await cluster.add_consumer()}")
    await cluster.wait_balanced()
    await asyncio.sleep(pause())
    victim = rng.choice(sorted(cluster.consumers))
    t0 = time.monotonic()
    code = await cluster.terminate(victim)
    report.move_after_sigterm_s = (time.monotonic() - t0) + await cluster.wait_balanced()
    note(f"SIGTERM {victim} (exit {code}): partitions moved in {report.move_after_sigterm_s:.2f}s incl. drain")
    note(f"added {await cluster.add_consumer()}")
    await cluster.wait_balanced()
    await asyncio.sleep(cfg.phase)
    if cfg.restart_broker:
        report.broker_restart_s = await restart_broker()
        note(f"RabbitMQ restarted (stop_app/start_app) in {report.broker_restart_s:.2f}s")
        await asyncio.sleep(cfg.phase)
    await load.stop()
    report.accepted = sum(len(v) for v in load.accepted.values())
    report.refused_503, report.connection_errors = load.refused, load.errors

    async def all_answered() -> bool:
        got = replies(slack)
        return all(set(v) <= set(got.get(t, [])) for t, v in load.accepted.items())

    with contextlib.suppress(RuntimeError):
        await wait_for(all_answered, 60, "every accepted event to be answered")
    got = replies(slack)
    report.replies_total = len(slack.messages) - base
    report.replied_distinct = sum(len(set(v)) for v in got.values())
    report.lost = sum(len(set(v) - set(got.get(t, []))) for t, v in load.accepted.items())
    report.duplicated = sum(len(v) - len(set(v)) for v in got.values())
    for seq in got.values():
        first = list(dict.fromkeys(seq))
        report.order_violations += sum(1 for a, b in itertools.pairwise(first) if b < a)


async def run(cfg: Config) -> Report:
    namespace = new_namespace("scale")
    report = Report()
    async with FakeSlack(token="xoxb-scale") as slack:
        cluster = Cluster(namespace, slack, cfg)
        try:
            await cluster.start_serves()
            for n in (1, 2, 3):
                report.capacity[n] = round(await measure_capacity(cluster, slack, n, cfg.capacity_events), 1)
            await chaos(cluster, slack, cfg, report)
        finally:
            await cluster.close()
            await purge_namespace(namespace, PARTITIONS)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the CI-sized run (shorter phases, smaller backlog)")
    parser.add_argument("--no-broker-restart", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed", type=int, default=None, help="random seed for victims and timing (printed)")
    args = parser.parse_args(argv)
    cfg = Config(phase=5.0, capacity_events=1500, rate=100.0) if args.quick else Config()
    cfg.restart_broker = not args.no_broker_restart
    cfg.seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    report = asyncio.run(run(cfg))
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print(f"capacity (echo agent, replies/s): {report.capacity}")
        print(
            f"accepted={report.accepted} replied={report.replied_distinct} lost={report.lost} "
            f"duplicated={report.duplicated} order_violations={report.order_violations}"
        )
        print(f"503s retried={report.refused_503} connection errors retried={report.connection_errors}")
        print(
            f"partition move: after SIGKILL {report.move_after_sigkill_s:.2f}s, after SIGTERM "
            f"{report.move_after_sigterm_s:.2f}s (lease TTL {cfg.lease_ttl}s)"
        )
        for line in report.events:
            print("  " + line)
    return 0 if report.lost == 0 and report.order_violations == 0 else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
