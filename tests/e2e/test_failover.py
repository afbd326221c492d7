"""Failover: `gateway serve` + two `gateway consume` on RabbitMQ and Redis, one killed under load."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from consumers.leases import lease_key
from gateway.core import samples
from gateway.core.store.redis import RedisStore
from tests.e2e.conftest import SLACK_SECRET, gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post, serve_and_consumers
from tests.support.signing import slack_headers
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
PARTITIONS = 16
LEASE_TTL = 2.0


@pytest.fixture
async def cluster(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram
) -> AsyncIterator[tuple[GatewayProcess, list[GatewayProcess], RedisStore]]:
    amqp, redis, namespace = services
    env = gateway_env(
        slack,
        telegram,
        amqp=amqp,
        redis=redis,
        namespace=namespace,
        GATEWAY_LEASE_TTL=str(LEASE_TTL),
        GATEWAY_PARTITIONS=str(PARTITIONS),
    )
    store = RedisStore(redis, namespace)
    try:
        async with serve_and_consumers(env) as (serve, consumers):
            yield serve, consumers, store
    finally:
        await store.close()


async def owners(store: RedisStore) -> list[str | None]:
    return await store.lease_owners([lease_key(p) for p in range(PARTITIONS)])


def split(found: list[str | None]) -> dict[str | None, int]:
    return {o: found.count(o) for o in set(found)}


async def test_two_consumers_split_partitions_and_one_takes_over(cluster, capsys) -> None:  # type: ignore[no-untyped-def]
    _, (c0, _c1), store = cluster
    found = await eventually(
        lambda: owners(store),
        until=lambda o: split(o) == {"c0": 8, "c1": 8},
        timeout=15,
        what="an even split of 16 partitions",
    )
    assert sorted(split(found).values()) == [8, 8]
    killed_at = time.monotonic()
    await c0.kill()
    await eventually(
        lambda: owners(store),
        until=lambda o: split(o) == {"c1": 16},
        timeout=LEASE_TTL + 8,
        what="c1 owning every partition after c0 was killed",
    )
    takeover = time.monotonic() - killed_at
    assert takeover <= LEASE_TTL + 3
    with capsys.disabled():
        print(f"\n[failover] SIGKILL takeover of 8 partitions: {takeover:.2f} s (lease TTL {LEASE_TTL} s)")


async def test_sigkill_under_load_loses_nothing_and_keeps_order(cluster, slack: FakeSlack, capsys) -> None:  # type: ignore[no-untyped-def]
    serve, (c0, _c1), store = cluster
    await eventually(
        lambda: owners(store), until=lambda o: split(o) == {"c0": 8, "c1": 8}, timeout=15, what="an even split"
    )
    threads, per_thread = 40, 12
    accepted: dict[int, list[int]] = {t: [] for t in range(threads)}
    kill_after = threads * per_thread // 3
    sent = 0
    killed = asyncio.Event()

    async def thread(t: int) -> None:
        nonlocal sent
        root = f"1700100{t:03d}.000000"
        for i in range(per_thread):
            body = samples.slack_message(
                f"t{t}-m{i}", channel=f"C{t % 5}", thread_ts=root, ts=f"1700200{t:03d}.{i:06d}"
            )
            status = await post(f"{serve.url}/slack/events", body, slack_headers(SLACK_SECRET, body))
            if status == 200:
                accepted[t].append(i)
            sent += 1
            if sent == kill_after and not killed.is_set():
                killed.set()
                await c0.kill()

    await asyncio.gather(*(thread(t) for t in range(threads)))
    total = sum(len(v) for v in accepted.values())
    assert killed.is_set()
    assert total == threads * per_thread  # serve stays up: every post is accepted

    def replies() -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for m in slack.messages:
            t, i = m["text"].removeprefix("echo: t").split("-m")
            out.setdefault(int(t), []).append(int(i))
        return out

    async def distinct() -> int:
        return sum(len(set(v)) for v in replies().values())

    await eventually(distinct, until=lambda n: n >= total, timeout=LEASE_TTL + 30, what="a reply to every event")
    got = replies()
    lost = {t: sorted(set(accepted[t]) - set(got.get(t, []))) for t in accepted}
    assert all(not v for v in lost.values()), f"lost: {lost}"
    duplicates = sum(len(v) - len(set(v)) for v in got.values())
    violations = 0
    for seq in got.values():
        first = list(dict.fromkeys(seq))
        violations += sum(1 for a, b in itertools.pairwise(first) if b < a)
    assert violations == 0, got
    # A reply posted by c0 just before SIGKILL, whose sent marker was never written, is found in its thread by
    # its metadata (connectors/slack/lookup.py) when redelivered, not posted again.
    assert duplicates == 0, {t: v for t, v in got.items() if len(v) != len(set(v))}
    with capsys.disabled():
        print(
            f"\n[failover] SIGKILL under load: accepted={total} replied={total} lost=0 "
            f"duplicates={duplicates} order_violations={violations}"
        )
