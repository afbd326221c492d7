"""Kills and graceful stops on RabbitMQ and Redis: nothing accepted is lost, order holds, handover is fast."""

from __future__ import annotations

import asyncio
import itertools
import time

import aiohttp
import pytest

from consumers.leases import lease_key
from gateway.core import samples
from gateway.core.store.redis import RedisStore
from tests.e2e.conftest import SLACK_SECRET, gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.support.processes import GatewayProcess, post
from tests.support.signing import slack_headers
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


async def try_post(url: str, body: bytes) -> int:
    try:
        return await post(url, body, slack_headers(SLACK_SECRET, body))
    except (aiohttp.ClientError, OSError):
        return 0


def replies(slack: FakeSlack) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for m in slack.messages:
        t, i = m["text"].removeprefix("echo: t").split("-m")
        out.setdefault(int(t), []).append(int(i))
    return out


def check(accepted: dict[int, list[int]], got: dict[int, list[int]]) -> tuple[int, int]:
    """Assert nothing accepted was lost and order held; return (duplicates, order violations)."""
    lost = {t: sorted(set(v) - set(got.get(t, []))) for t, v in accepted.items() if set(v) - set(got.get(t, []))}
    assert not lost, f"accepted but never answered: {lost}"
    duplicates = sum(len(v) - len(set(v)) for v in got.values())
    violations = 0
    for seq in got.values():
        first = list(dict.fromkeys(seq))
        violations += sum(1 for a, b in itertools.pairwise(first) if b < a)
    return duplicates, violations


async def burst(
    url: str, threads: int, per_thread: int, on_sent: int, action: asyncio.Future[None] | None, trigger: object
) -> dict[int, list[int]]:
    """Post per-thread sequences concurrently; call ``trigger`` once ``on_sent`` posts were made."""
    accepted: dict[int, list[int]] = {t: [] for t in range(threads)}
    sent = 0

    async def thread(t: int) -> None:
        nonlocal sent
        for i in range(per_thread):
            body = samples.slack_message(
                f"t{t}-m{i}", channel=f"C{t % 5}", thread_ts=f"1701000{t:03d}.000000", ts=f"1701100{t:03d}.{i:06d}"
            )
            status = await try_post(url, body)
            if status == 200:
                accepted[t].append(i)
            elif status == 0:
                return  # the process is gone: the rest of this thread is never sent
            sent += 1
            if sent == on_sent:
                await trigger()  # type: ignore[operator]

    await asyncio.gather(*(thread(t) for t in range(threads)))
    return accepted


async def test_gateway_dev_on_rabbitmq_killed_with_sigkill_loses_nothing(services, slack, telegram, capsys) -> None:  # type: ignore[no-untyped-def]
    amqp, redis, namespace = services
    env = gateway_env(slack, telegram, amqp=amqp, redis=redis, namespace=namespace, GATEWAY_LEASE_TTL="2")
    dev = await GatewayProcess("dev", env).start()
    accepted = await burst(f"{dev.url}/slack/events", 20, 15, on_sent=120, action=None, trigger=dev.kill)
    total = sum(len(v) for v in accepted.values())
    assert total >= 120
    restarted = await GatewayProcess("dev", env, name="dev-restarted").start()
    try:
        await eventually(
            lambda: _distinct(slack),
            until=lambda n: n >= total,
            timeout=30,
            what=f"replies to all {total} accepted events",
        )
    finally:
        assert await restarted.terminate() == 0
    duplicates, violations = check(accepted, replies(slack))
    assert violations == 0
    with capsys.disabled():
        print(f"\n[dev SIGKILL] accepted={total} lost=0 duplicates={duplicates} order_violations={violations}")


async def _distinct(slack: FakeSlack) -> int:
    return sum(len(set(v)) for v in replies(slack).values())


async def test_sigterm_during_burst_then_restart_answers_everything_exactly_once(
    services, slack, telegram, capsys
) -> None:  # type: ignore[no-untyped-def]
    amqp, redis, namespace = services
    env = gateway_env(slack, telegram, amqp=amqp, redis=redis, namespace=namespace, GATEWAY_LEASE_TTL="2")
    serve = await GatewayProcess("serve", env).start()
    consumer = await GatewayProcess("consume", {**env, "GATEWAY_CONSUMER_ID": "c0"}, name="c0").start()
    codes: list[int] = []

    async def stop_consumer() -> None:
        codes.append(await consumer.terminate())

    try:
        accepted = await burst(f"{serve.url}/slack/events", 20, 15, on_sent=100, action=None, trigger=stop_consumer)
        total = sum(len(v) for v in accepted.values())
        assert total == 300  # serve kept accepting while the consumer stopped
        assert codes == [0], consumer.logs()[-2000:]
        restarted = await GatewayProcess("consume", {**env, "GATEWAY_CONSUMER_ID": "c0b"}, name="c0b").start()
        await eventually(lambda: _distinct(slack), until=lambda n: n >= total, timeout=30, what="every reply")
        assert await restarted.terminate() == 0
    finally:
        await serve.terminate()
    duplicates, violations = check(accepted, replies(slack))
    assert (duplicates, violations) == (0, 0)
    with capsys.disabled():
        print(f"\n[consumer SIGTERM] accepted={total} answered exactly once, order_violations=0")


async def test_sigterm_hands_partitions_over_long_before_lease_expiry(services, slack, telegram, capsys) -> None:  # type: ignore[no-untyped-def]
    amqp, redis, namespace = services
    env = gateway_env(slack, telegram, amqp=amqp, redis=redis, namespace=namespace, GATEWAY_LEASE_TTL="10")
    store = RedisStore(redis, namespace)
    c0 = await GatewayProcess("consume", {**env, "GATEWAY_CONSUMER_ID": "c0"}, name="c0").start()
    c1 = await GatewayProcess("consume", {**env, "GATEWAY_CONSUMER_ID": "c1"}, name="c1").start()

    async def owners() -> list[str | None]:
        return await store.lease_owners([lease_key(p) for p in range(16)])

    try:
        await eventually(
            owners, until=lambda o: o.count("c0") == 8 and o.count("c1") == 8, timeout=20, what="an even split"
        )
        start = time.monotonic()
        assert await c0.terminate() == 0
        await eventually(owners, until=lambda o: o.count("c1") == 16, timeout=8, what="c1 owning all partitions")
        handover = time.monotonic() - start
    finally:
        await c1.terminate()
        await c0.terminate()
        await store.close()
    assert handover < 5.0  # the lease TTL is 10 s: released leases do not wait for expiry
    with capsys.disabled():
        print(f"\n[consumer SIGTERM] 8 partitions handed over in {handover:.2f} s (lease TTL 10 s)")


async def test_serve_reports_not_ready_while_draining_but_keeps_accepting(services, slack, telegram) -> None:  # type: ignore[no-untyped-def]
    amqp, redis, namespace = services
    env = gateway_env(slack, telegram, amqp=amqp, redis=redis, namespace=namespace, GATEWAY_DRAIN_DELAY="5")
    serve = await GatewayProcess("serve", env).start()
    assert serve.proc is not None
    serve.proc.terminate()
    await eventually(lambda: serve._status("/readyz"), until=lambda s: s == 503, timeout=3, what="readyz 503")
    body = samples.slack_message("late but welcome", channel="CDRAIN")
    assert await try_post(f"{serve.url}/slack/events", body) == 200
    assert await serve.terminate() == 0
