"""Operator tools end to end: ``gateway tail``, ``dlq``, ``send`` and ``status`` as processes, against
gateways running on RabbitMQ and Redis with the fake Slack."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from consumers.deadletter import dead_headers
from consumers.leases import lease_key
from gateway.commands.dlq_letters import borrow, selection
from gateway.commands.dlq_replay import execute, plan_replay
from gateway.core import samples
from gateway.core.bus.amqp import AmqpBus
from gateway.core.bus.base import Delivery
from gateway.core.bus.topology import Topology
from gateway.core.store.redis import RedisStore
from tests.e2e.conftest import SLACK_SECRET, gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.support.signing import slack_headers
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def with_root(env: dict[str, str]) -> dict[str, str]:
    """Processes import ``tests.e2e.flaky_agent`` whatever directory pytest runs from."""
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


async def start_cli(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        env={**os.environ, **env, "GATEWAY_LOG_FORMAT": "json"},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def gateway_cli(env: dict[str, str], *args: str, timeout: float = 30.0) -> tuple[int, str, str]:
    proc = await start_cli(env, *args)
    async with reaped(proc):
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return int(proc.returncode or 0), out.decode(), err.decode()


@contextlib.asynccontextmanager
async def reaped(proc: asyncio.subprocess.Process) -> AsyncIterator[asyncio.subprocess.Process]:
    """Never leave a CLI process behind when a test fails."""
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def running(command: str, env: dict[str, str], *, name: str | None = None) -> AsyncIterator[GatewayProcess]:
    """A gateway process, stopped even when it never became ready."""
    proc = GatewayProcess(command, env, name=name)
    try:
        yield await proc.start()
    finally:
        await proc.terminate()


async def wait_for_line(stream: asyncio.StreamReader | None, marker: str, timeout: float = 20.0) -> str:
    assert stream is not None
    seen: list[str] = []

    async def scan() -> str:
        while line := (await stream.readline()).decode():
            if marker in line:
                return line
            seen.append(line)
        raise AssertionError(f"stream ended before {marker!r}: {''.join(seen)[-2000:]}")

    return await asyncio.wait_for(scan(), timeout)


async def post_slack(gw: GatewayProcess, body: bytes) -> int:
    return await post(f"{gw.url}/slack/events", body, slack_headers(SLACK_SECRET, body))


@pytest.fixture
def env(services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram) -> dict[str, str]:
    amqp, redis, namespace = services
    return with_root(gateway_env(slack, telegram, amqp=amqp, redis=redis, namespace=namespace))


@pytest.fixture
async def dev(env: dict[str, str]) -> AsyncIterator[GatewayProcess]:
    async with running("dev", env) as proc:
        yield proc


# ---------------------------------------------------------------- tail and send


async def test_tail_json_shows_an_event_and_its_reply_while_delivery_happens(
    dev: GatewayProcess, env: dict[str, str], slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    async with reaped(await start_cli(env, "tail", "--json", "--count", "2", "--for", "20")) as tail:
        await wait_for_line(tail.stderr, "watching")
        body = samples.slack_message("tail me", channel="C7", ts="1700000500.000100")
        assert await post_slack(dev, body) == 200
        out, err = await asyncio.wait_for(tail.communicate(), 25)
    assert tail.returncode == 0, err.decode()
    items = [json.loads(line) for line in out.decode().splitlines()]
    assert sorted(i["direction"] for i in items) == ["in", "out"]
    inbound = next(i for i in items if i["direction"] == "in")
    outbound = next(i for i in items if i["direction"] == "out")
    assert (inbound["platform"], inbound["kind"], inbound["text"]) == ("slack", "message", "tail me")
    assert inbound["key"] == "slack:T0DEV:C7:1700000500.000100"
    assert inbound["agent"] == "echo"
    assert (outbound["kind"], outbound["text"], outbound["event_id"]) == ("reply", "echo: tail me", inbound["id"])
    # The tail read copies: the reply was still delivered.
    messages = await slack.wait_for_messages(1)
    assert [(m["text"], m["thread_ts"]) for m in messages] == [("echo: tail me", "1700000500.000100")]
    lags = {i["direction"]: (_at(i["seen_at"]) - _at(i["time"])).total_seconds() for i in items}
    assert all(0 <= lag < 1.0 for lag in lags.values()), lags
    with capsys.disabled():
        print(
            f"\n[operators] tail: inbound visible {lags['in'] * 1000:.1f} ms after acceptance, "
            f"outbound {lags['out'] * 1000:.1f} ms after the turn produced it"
        )


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_send_produces_a_reply_at_the_fake_platform(
    dev: GatewayProcess, env: dict[str, str], slack: FakeSlack
) -> None:
    code, out, err = await gateway_cli(env, "send", "slack", "hi from send", "--url", dev.url)
    assert code == 0, out + err
    assert "-> 200" in out
    messages = await slack.wait_for_messages(1)
    assert [m["text"] for m in messages] == ["echo: hi from send"]


async def test_tail_needs_the_broker(env: dict[str, str]) -> None:
    without = {k: v for k, v in env.items() if k != "AMQP_URL"}
    code, _, err = await gateway_cli({**without, "AMQP_URL": ""}, "tail", "--for", "1")
    assert code == 2
    assert "needs AMQP_URL" in err
    assert "no other process can see it" in err


# ---------------------------------------------------------------- dead letters


@pytest.fixture
async def flaky(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Path
) -> AsyncIterator[tuple[GatewayProcess, Path, dict[str, str], AmqpBus]]:
    amqp, _, namespace = services
    switch = tmp_path / "flaky-switch"
    switch.write_text("fail")
    env = with_root(
        gateway_env(
            slack,
            telegram,
            **service_env(services, config='[agents.flaky]\npath = "tests.e2e.flaky_agent:agent"\n', tmp_path=tmp_path),
            GATEWAY_DEFAULT_AGENT="flaky",
            GATEWAY_TURN_ATTEMPTS="2",
            GATEWAY_RETRY_BASE="0.05",
            FLAKY_AGENT_FILE=str(switch),
        )
    )
    bus = AmqpBus(amqp, Topology(namespace))
    async with running("dev", env) as proc:
        await bus.start()
        try:
            yield proc, switch, env, bus
        finally:
            await bus.close()


async def test_a_failing_agent_dead_letters_and_replay_delivers_exactly_one_reply(
    flaky: tuple[GatewayProcess, Path, dict[str, str], AmqpBus], slack: FakeSlack
) -> None:
    gw, switch, env, bus = flaky
    root = "1700000600.000100"
    assert await post_slack(gw, samples.slack_message("please work", channel="C8", ts=root)) == 200

    async def dead() -> int:
        return (await bus.queue_info(bus.topology.dead_queue)).messages

    await eventually(dead, until=lambda n: n == 1, timeout=15, what="the failed event in the dead-letter queue")
    code, out, err = await gateway_cli(env, "dlq", "list", "--json")
    assert code == 0, err
    [letter] = [json.loads(line) for line in out.splitlines()]
    assert (letter["stage"], letter["reason"], letter["attempts"]) == ("dispatch", "turn_failed", 2)
    assert letter["text"] == "please work"
    assert "flaky agent told to fail" in letter["error"]
    assert letter["origin_exchange"] == bus.topology.events_exchange
    code, out, _ = await gateway_cli(env, "dlq", "show", letter["id"], "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["body"]["id"] == letter["id"]
    assert 'flaky_agent.py", line' in shown["traceback"], "the agent author sees the failing line"
    assert shown["traceback"].endswith("RuntimeError: flaky agent told to fail by " + str(switch))
    code, text, _ = await gateway_cli(env, "dlq", "show", letter["id"])
    assert code == 0
    assert "traceback:" in text
    assert "raise RuntimeError" in text
    logged = [json.loads(line) for line in gw.logs().splitlines() if line.startswith("{")]
    failed = [line for line in logged if line["event"] == "turn_failed"]
    assert failed, "turn_failed is logged"
    assert all("flaky_agent.py" in line["traceback"] for line in failed)
    assert all(line["event_id"] == letter["id"] for line in failed)
    assert slack.messages == []

    switch.write_text("ok")
    code, out, err = await gateway_cli(env, "dlq", "replay", "--all")
    assert code == 0, out + err
    assert "replayed 1 of 1 selected" in out
    messages = await slack.wait_for_messages(1)
    assert [(m["text"], m["thread_ts"]) for m in messages] == [("flaky: please work", root)]
    code, out, _ = await gateway_cli(env, "dlq", "list", "--json")
    assert (code, out) == (0, "")

    code, out, _ = await gateway_cli(env, "dlq", "replay", "--all")
    assert code == 0
    assert "nothing to replay" in out
    # Even the same letter republished once more (a replay whose ack was lost) posts nothing twice.
    original = {k: v for k, v in shown["headers"].items() if not k.startswith("x-")}
    body = json.dumps(shown["body"]).encode()
    await bus.publish(
        bus.topology.events_exchange, letter["origin_routing_key"], body, headers=original, message_id=letter["id"]
    )
    follow = samples.slack_message("after replay", channel="C8", thread_ts=root, ts="1700000601.000200")
    assert await post_slack(gw, follow) == 200
    await slack.wait_for_messages(2)
    # Per conversation order: any duplicate would have been posted before the follow-up's reply.
    assert [m["text"] for m in slack.messages] == ["flaky: please work", "flaky: after replay"]


async def _noop(how: str) -> None:
    return None


async def test_reading_and_replaying_keep_the_dead_letter_order_on_rabbitmq(
    services: tuple[str, str, str],
) -> None:
    amqp, _, namespace = services
    topo = Topology(namespace)
    a, b = "slack:T1:C1:1.0", "slack:T1:C2:2.0"

    async def connected() -> AmqpBus:
        bus = AmqpBus(amqp, topo)
        await bus.start()
        return bus

    async def fail(bus: AmqpBus, i: int, key: str) -> None:
        """Dead-letter message ``m{i}`` the way consumers/deadletter.py does."""
        body = json.dumps({"id": f"m{i}", "conversation_key": key, "text": f"t{i}"}).encode()
        headers: dict[str, Any] = {"platform": "slack", "conversation_key": key}
        original = Delivery(body, headers, str(topo.partition_of(key)), topo.events_exchange, f"m{i}", 0, _noop)
        dead = dead_headers(original, stage="dispatch", reason="turn_failed", error="boom", attempts=3)
        await bus.publish(topo.dead_exchange, "", body, headers=dead, message_id=f"m{i}")

    async def ids() -> list[str]:
        bus = await connected()
        try:
            async with borrow(bus) as letters:
                return [x.id for x in letters]
        finally:
            await bus.close()

    other = await connected()
    reader = await connected()
    got: list[Delivery] = []

    async def collect(d: Delivery) -> None:
        got.append(d)
        await d.ack()

    try:
        for i, key in enumerate([a, b, a, b, a]):
            await fail(other, i, key)
        for _ in range(3):  # reading gives everything back, in order, every time
            assert await ids() == ["m0", "m1", "m2", "m3", "m4"]
        async with borrow(reader) as held:
            assert len(held) == 5
            await fail(other, 5, b)  # a letter that fails while these are held stays behind them
        assert await ids() == ["m0", "m1", "m2", "m3", "m4", "m5"]

        sub = await other.subscribe(topo.dispatch_queue(topo.partition_of(b)), collect, prefetch=10)
        async with borrow(reader) as letters:
            result = await execute(reader, plan_replay(letters, selection([f"key={b}"]), topo))
            await fail(other, 6, a)
        assert [s.letter.id for s in result.replayed] == ["m1", "m3", "m5"]
        assert await ids() == ["m0", "m2", "m4", "m6"]
        await eventually(lambda: len(got), until=lambda n: n == 3, what="the replayed letters in dispatch")
        await sub.close()
        assert [(d.message_id, json.loads(d.body)["text"]) for d in got] == [("m1", "t1"), ("m3", "t3"), ("m5", "t5")]
        assert got[0].headers["conversation_key"] == b
        assert got[0].headers["replays"] == 1
    finally:
        await reader.close()
        await other.close()


# ---------------------------------------------------------------- status


async def test_status_reports_the_partitions_two_consumers_hold(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram
) -> None:
    amqp, redis, namespace = services
    env = with_root(gateway_env(slack, telegram, amqp=amqp, redis=redis, namespace=namespace, GATEWAY_LEASE_TTL="2"))
    store = RedisStore(redis, namespace)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        serving = await stack.enter_async_context(running("serve", env))
        for i in range(2):
            await stack.enter_async_context(running("consume", {**env, "GATEWAY_CONSUMER_ID": f"c{i}"}, name=f"c{i}"))

        async def split() -> dict[str | None, int]:
            found = await store.lease_owners([lease_key(p) for p in range(16)])
            return {o: found.count(o) for o in set(found)}

        await eventually(split, until=lambda s: s == {"c0": 8, "c1": 8}, timeout=20, what="an even split")
        code, out, err = await gateway_cli(env, "status", "--json")
        assert code == 0, err
        report = json.loads(out)
        assert report["ok"] is True
        assert report["broker"]["ok"] is True
        assert report["redis"]["ok"] is True
        assert {c["id"]: len(c["partitions"]) for c in report["consumers"]} == {"c0": 8, "c1": 8}
        assert sorted(p for c in report["consumers"] for p in c["partitions"]) == list(range(16))
        assert report["members"] == ["c0", "c1"]
        assert report["unowned"] == []
        queues = {q["name"]: q for q in report["queues"]}
        assert len(queues) == 33
        dispatch = [queues[f"{namespace}.dispatch.{p}"] for p in range(16)]
        assert all(q["owner"] in ("c0", "c1") and q["consumers"] >= 1 for q in dispatch)
        assert report["dead_letters"] == 0
        assert report["waiting_events"] == 0
        [serve] = report["serve"]  # the one `gateway serve`, by host, pid and address
        assert serve.endswith("@" + serving.url.removeprefix("http://")), serve
        assert report["problems"] == []

        code, text, _ = await gateway_cli(env, "status", "--interval", "0", "--strict")
        assert code == 0
        assert "c0" in text
        assert "8 partitions" in text
        assert "serve: 1 live" in text

        code, out, _ = await gateway_cli(
            {**env, "REDIS_URL": "redis://127.0.0.1:1/0"}, "status", "--json", "--interval", "0"
        )
        assert code == 1
        assert json.loads(out)["redis"]["ok"] is False


async def test_status_says_plainly_when_no_consumer_or_serve_is_live_and_strict_exits_3(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram
) -> None:
    amqp, redis, namespace = services
    env = with_root(gateway_env(slack, telegram, amqp=amqp, redis=redis, namespace=namespace))
    bus = AmqpBus(amqp, Topology(namespace, 16))
    await bus.start()  # the topology exists, nobody serves or consumes it
    await bus.close()
    code, text, _ = await gateway_cli(env, "status", "--interval", "0")
    assert code == 0  # both services answer: without --strict this is not a failure
    assert "consumers: no live consumer: events wait in their queues" in text
    assert "serve: no live serve instance" in text
    code, out, _ = await gateway_cli(env, "status", "--json", "--interval", "0", "--strict")
    assert code == 3
    problems = json.loads(out)["problems"]
    assert problems[:2] == ["no live consumer: events wait in their queues", "no live serve instance"]
