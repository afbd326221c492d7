"""Nothing grows without bound: history and memory expire (GATEWAY_HISTORY_TTL, GATEWAY_MEMORY_TTL), and
`gateway purge` deletes a whole namespace."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from gateway.core import samples
from gateway.core.bus.amqp import AmqpBus
from gateway.core.bus.topology import Topology
from gateway.core.settings import Settings
from gateway.core.store.redis import RedisStore
from tests.e2e.conftest import SLACK_SECRET, gateway_env
from tests.e2e.test_cli_config import gateway
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import purge_namespace
from tests.support.signing import slack_headers

pytestmark = pytest.mark.e2e


def test_retention_defaults_are_30_days_of_history_and_90_of_memory() -> None:
    settings = Settings()
    assert settings.history_ttl == 30 * 24 * 3600
    assert settings.memory_ttl == 90 * 24 * 3600


async def test_a_turn_gives_its_conversation_history_the_configured_ttl(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram
) -> None:
    amqp, redis_url, namespace = services
    env = gateway_env(slack, telegram, amqp=amqp, redis=redis_url, namespace=namespace, GATEWAY_HISTORY_TTL="1234")
    gw = await GatewayProcess("dev", env).start()
    try:
        body = samples.slack_message("remember me", channel="CRET", ts="1700000000.000100")
        assert await post(f"{gw.url}/slack/events", body, slack_headers(SLACK_SECRET, body)) == 200
        await slack.wait_for_messages(1)
    finally:
        assert await gw.terminate() == 0
    raw = aioredis.Redis.from_url(redis_url)
    try:
        key = f"{namespace}:hist:echo:slack:T0DEV:CRET:1700000000.000100"
        assert await raw.llen(key) == 2
        assert 1_200_000 < await raw.pttl(key) <= 1_234_000
    finally:
        await raw.aclose()


# --- gateway purge ------------------------------------------------------------------------------


async def _fill(amqp: str, redis_url: str, namespace: str, partitions: int) -> None:
    """A namespace as a gateway leaves it: topology, waiting events, a dead letter, history, memory, markers."""
    topology = Topology(namespace, partitions)
    bus = AmqpBus(amqp, topology)
    await bus.start()
    try:
        for p in (0, 0, partitions - 1):
            await bus.publish(topology.events_exchange, str(p), b"{}")
        await bus.publish(topology.dead_exchange, "", b"{}")
    finally:
        await bus.close()
    store = RedisStore(redis_url, namespace)
    try:
        await store.push("hist:echo:slack:T:C:1", ["a", "b"], keep=10, markers=["turn:echo:1"], marker_ttl=60)
        await store.hput("mem:echo:slack:T:C:1", "fact", "x")
        await store.put("dedupe:slack:Ev1", "done:e1", 60)
    finally:
        await store.close()


async def _exists(amqp: str, kind: str, name: str) -> bool:
    import aio_pika

    async with await aio_pika.connect(amqp) as conn:
        channel = await conn.channel()
        try:
            if kind == "queue":
                await channel.declare_queue(name, passive=True)
            else:
                await channel.get_exchange(name, ensure=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False
        await channel.close()
        return True


async def _keys(redis_url: str, namespace: str) -> list[bytes]:
    raw = aioredis.Redis.from_url(redis_url)
    try:
        return [k async for k in raw.scan_iter(match=f"{namespace}:*")]
    finally:
        await raw.aclose()


async def test_purge_without_yes_says_what_it_would_delete_and_with_yes_deletes_only_that_namespace(
    services: tuple[str, str, str],
) -> None:
    amqp, redis_url, namespace = services
    sibling = namespace + "x"  # shares the prefix: must survive
    # 20 partitions, more than the default 16 `gateway purge` runs with: the extra ones go too.
    await _fill(amqp, redis_url, namespace, 20)
    await _fill(amqp, redis_url, sibling, 1)
    env = {"AMQP_URL": amqp, "REDIS_URL": redis_url, "GATEWAY_NAMESPACE": namespace}
    try:
        dry = await asyncio.to_thread(gateway, "purge", env=env)
        assert dry.returncode == 1, dry.stdout + dry.stderr
        assert f"gateway purge --yes would delete everything of namespace {namespace!r}:" in dry.stdout
        assert "RabbitMQ: 41 queues holding 4 messages (1 dead letter), 4 exchanges" in dry.stdout
        assert "Redis:    4 keys (dedupe 1, hist 1, mem 1, turn 1)" in dry.stdout
        assert "nothing was deleted" in dry.stdout
        assert len(await _keys(redis_url, namespace)) == 4
        assert await _exists(amqp, "queue", f"{namespace}.dispatch.19")

        done = await asyncio.to_thread(gateway, "purge", "--yes", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"deleted namespace {namespace!r}:" in done.stdout
        assert "41 queues holding 4 messages" in done.stdout
        assert await _keys(redis_url, namespace) == []
        names = [f"{namespace}.dispatch.{p}" for p in range(20)] + [f"{namespace}.outbound.{p}" for p in range(20)]
        for name in [*names, f"{namespace}.dead"]:
            assert not await _exists(amqp, "queue", name), name
        for name in (f"{namespace}.events", f"{namespace}.outbound", f"{namespace}.dead", f"{namespace}.web"):
            assert not await _exists(amqp, "exchange", name), name

        assert len(await _keys(redis_url, sibling)) == 4
        assert await _exists(amqp, "queue", f"{sibling}.dispatch.0")
        assert await _exists(amqp, "exchange", f"{sibling}.events")

        again = await asyncio.to_thread(gateway, "purge", env=env)
        assert again.returncode == 0
        assert f"namespace {namespace!r} is empty: nothing to delete" in again.stdout
    finally:
        await purge_namespace(sibling, 1)
