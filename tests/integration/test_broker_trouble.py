"""Broker trouble is named plainly, retried gently, and never keeps a gateway from stopping."""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from gateway.core.backoff import Backoff
from gateway.core.bus.amqp import AmqpBus
from gateway.core.bus.diagnose import describe
from gateway.core.bus.reconnect import _HOOK, BackoffConnection
from gateway.core.bus.topology import Topology
from gateway.core.errors import StoppedWhileConnecting
from gateway.runtime import connect_bus
from tests.support.services import AMQP_URL, new_namespace, purge_namespace
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
BASE = AMQP_URL.rsplit("/", 1)[0]


async def start_error(url: str, timeout: float = 5.0) -> BaseException:
    bus = AmqpBus(url, Topology(new_namespace(), 2), connect_timeout=timeout)
    try:
        await bus.start()
    except Exception as exc:
        return exc
    finally:
        await bus.close()
    raise AssertionError(f"{url} connected")


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """Accepts TCP connections and never says a word (a wrong port, a stuck proxy)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for w in held:
            w.close()
        server.close()


async def test_a_missing_vhost_is_named(amqp_url: str) -> None:
    exc = await start_error(f"{BASE}/no-such-vhost-{uuid.uuid4().hex[:8]}")
    assert "vhost" in describe(exc)
    assert "does not exist" in describe(exc)


async def test_a_refused_login_is_named(amqp_url: str) -> None:
    exc = await start_error(BASE.replace("guest:guest", "guest:wrong-password") + "/")
    assert describe(exc).startswith("access refused")
    assert "wrong-password" not in describe(exc)


async def test_a_broker_that_never_completes_the_handshake_is_named() -> None:
    async with silent_server() as port:
        exc = await start_error(f"amqp://guest:guest@127.0.0.1:{port}/", timeout=0.5)
    assert str(exc) == ""  # what the logs used to print
    assert "did not complete the AMQP handshake" in describe(exc)


async def test_nothing_listening_is_named() -> None:
    exc = await start_error("amqp://guest:guest@127.0.0.1:1/", timeout=1)
    assert describe(exc).startswith("connection refused")


def test_backoff_grows_with_jitter_up_to_its_cap() -> None:
    backoff = Backoff(base=1.0, cap=8.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    bounds = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(b / 2 <= d <= b for d, b in zip(delays, bounds, strict=True)), delays
    assert len(set(delays)) == len(delays), "jitter: no two delays alike"
    backoff.reset()
    assert backoff.next_delay() <= 1.0


async def test_stop_ends_the_wait_for_an_unreachable_broker_at_once() -> None:
    bus = AmqpBus("amqp://guest:guest@127.0.0.1:1/", Topology(new_namespace(), 2), connect_timeout=1)
    stop = asyncio.Event()
    backoff = Backoff(base=30.0, cap=60.0)
    waiting = asyncio.create_task(connect_bus(bus, stop=stop, backoff=backoff))
    await eventually(lambda: backoff.failures, until=lambda n: n >= 1, timeout=5, what="a first failed attempt")
    stop.set()
    with pytest.raises(StoppedWhileConnecting):
        await asyncio.wait_for(waiting, 2)  # not the 15-30 s the backoff would wait
    await bus.close()


def test_the_reconnect_hook_exists_in_this_aio_pika() -> None:
    from aio_pika import RobustConnection

    assert callable(getattr(RobustConnection, _HOOK, None)), "aio-pika renamed its transport hook"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def vhost() -> Iterator[str]:
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed")
    name = f"t-vhost-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", name)
    _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    try:
        yield name
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _rabbitmqctl("delete_vhost", name)


async def test_a_deleted_vhost_is_retried_with_growing_delays(vhost: str) -> None:
    namespace = new_namespace()
    bus = AmqpBus(f"{BASE}/{vhost}", Topology(namespace, 2))
    await bus.start()
    try:
        conn = bus._conn
        assert isinstance(conn, BackoffConnection)
        conn.backoff.base, conn.backoff.cap = 0.05, 0.4  # the schedule, compressed for the test
        await asyncio.to_thread(_rabbitmqctl, "delete_vhost", vhost)
        await eventually(lambda: conn.backoff.failures, until=lambda n: n >= 5, timeout=30, what="5 failed attempts")
        assert 0.2 <= conn.reconnect_interval <= 0.4, "grew to the cap, and stays there"
    finally:
        await bus.close()
        await purge_namespace(namespace)
