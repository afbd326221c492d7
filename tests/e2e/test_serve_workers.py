"""`gateway serve --workers N`: N ingress processes on one port under a supervisor, on the real RabbitMQ and
Redis. Every event answered 200 reaches its reply; a worker that dies is started again while the others keep
answering; SIGTERM stops them all; a supervisor killed with SIGKILL leaves no worker behind."""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp
import pytest

from gateway.core import samples
from gateway.core.presence import INGRESS
from gateway.core.store.redis import RedisStore
from tests.e2e.conftest import SLACK_SECRET, gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess
from tests.support.services import service_env
from tests.support.signing import slack_headers
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def worker_pids(store: RedisStore) -> set[int]:
    """The live serve workers, from their presence heartbeats (``host-pid@host:port``)."""
    return {int(m.split("@")[0].rsplit("-", 1)[1]) for m in await store.members(INGRESS)}


async def post_new_connection(url: str, i: int) -> int:
    """One signed Slack event on its own connection (the kernel picks a worker per connection)."""
    body = samples.slack_message(f"m{i}", channel="CWORK", thread_ts=f"1700000{i:03d}.000001", ts=f"17000{i:05d}.1")
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as s,
        s.post(url + "/slack/events", data=body, headers=slack_headers(SLACK_SECRET, body)) as r,
    ):
        return r.status


async def retried(url: str, i: int) -> int:
    try:
        return await post_new_connection(url, i)
    except aiohttp.ClientOSError:
        return 0


async def test_workers_share_the_port_and_a_dead_one_is_replaced(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram
) -> None:
    env = gateway_env(slack, telegram, **service_env(services), GATEWAY_SERVE_WORKERS="2", GATEWAY_LEASE_TTL="3")
    store = RedisStore(services[1], services[2])
    serve = await GatewayProcess("serve", env).start()
    consume = await GatewayProcess("consume", env).start()
    try:
        pids = await eventually(lambda: worker_pids(store), until=lambda p: len(p) == 2, timeout=20, what="2 workers")
        assert serve.proc is not None
        assert serve.proc.pid not in pids  # the supervisor itself serves nothing
        statuses = await asyncio.gather(*(post_new_connection(serve.url, i) for i in range(40)))
        assert statuses == [200] * 40

        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        # The other worker keeps answering while the supervisor starts a new one. A connection the kernel had
        # already queued on the killed worker's socket is reset (SO_REUSEPORT keeps one accept queue per
        # worker): it never got a 200, and the platform sends it again, as here.
        assert await eventually(lambda: retried(serve.url, 40), until=lambda s: s == 200, timeout=10) == 200
        after = await eventually(
            lambda: worker_pids(store),
            until=lambda p: len(p) == 2 and victim not in p,
            timeout=30,
            what="a replacement worker",
        )
        assert len(after - pids) == 1
        assert await post_new_connection(serve.url, 41) == 200
        replies = await slack.wait_for_messages(42, timeout=30)
        assert sorted(m["text"] for m in replies) == sorted(f"echo: m{i}" for i in range(42))

        assert await serve.terminate() == 0
        assert not any(alive(p) for p in after)  # every worker drained and exited
    finally:
        await serve.terminate()
        await consume.terminate()
        await store.close()
    assert "worker_exited" in serve.logs()


async def test_a_supervisor_killed_with_sigkill_leaves_no_worker_holding_the_port(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram
) -> None:
    env = gateway_env(slack, telegram, **service_env(services), GATEWAY_SERVE_WORKERS="2")
    store = RedisStore(services[1], services[2])
    serve = await GatewayProcess("serve", env).start()
    try:
        pids = await eventually(lambda: worker_pids(store), until=lambda p: len(p) == 2, timeout=20, what="2 workers")
        await serve.kill()
        await eventually(lambda: not any(alive(p) for p in pids), timeout=20, what="the workers to exit")
        again = GatewayProcess("serve", {**env, "GATEWAY_SERVE_WORKERS": "1", "GATEWAY_PORT": str(serve.port)})
        await again.start()  # the port is free again
        assert await again.terminate() == 0
    finally:
        await serve.terminate()
        await store.close()
