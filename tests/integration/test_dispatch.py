"""The dispatcher and sender, in process, on the in-process twins and on RabbitMQ + Redis.

The platform side is a recording sender (the platform, not our code, is faked here; the real
clients are exercised against fake servers in tests/e2e).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agents.context import SessionContext, TurnContext, history_key
from agents.memory import memory_key
from agents.registry import AgentFactory
from connectors.platform import ChatRates, Unlimited
from consumers.deadletter import DeadLetters
from consumers.dispatch import DispatchConfig, Dispatcher
from consumers.outbound import OutboundWorker
from consumers.partition import PartitionWorker
from consumers.pool import AgentPool
from consumers.ratelimit import RateLimiter
from gateway.core import handoff as handoffs
from gateway.core import sessions, tracing
from gateway.core.bus.amqp import AmqpBus
from gateway.core.bus.base import Bus
from gateway.core.bus.memory import MemoryBus
from gateway.core.bus.topology import Topology
from gateway.core.config import HandoffConfig
from gateway.core.errors import PublishError, RateLimited, SendError, StoreUnavailable
from gateway.core.events import SCHEMA_VERSION, Event, EventKind, OutboundMessage, ReplyAddress
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.store.base import Store
from gateway.core.store.memory import MemoryStore
from gateway.core.store.redis import RedisStore
from tests.support.services import AMQP_URL, REDIS_URL, purge_namespace, require
from tests.support.spans import memory_spans
from tests.support.waiting import eventually

PARTITIONS = 2
FAST = {"slack": ChatRates("slack", 1e6, 1e6, 1e6), "telegram": Unlimited("tests"), "webhook": Unlimited("tests")}


@dataclass
class RecordingPlatform:
    platform: str = "slack"
    sent: list[OutboundMessage] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    attempts: int = 0

    async def send(self, message: OutboundMessage) -> dict[str, Any]:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return {"ts": str(len(self.sent))}

    async def close(self) -> None:
        return None

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.sent]


@dataclass
class Rig:
    bus: Bus
    store: Store
    publisher: Publisher
    metrics: Metrics
    platform: RecordingPlatform = field(default_factory=RecordingPlatform)
    workers: list[PartitionWorker] = field(default_factory=list)
    letters: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)

    async def start(
        self,
        agents: dict[str, Any],
        *,
        attempts: int = 3,
        history_ttl: float | None = None,
        memory_ttl: float | None = None,
        handoff: HandoffConfig | None = None,
        **config: Any,
    ) -> None:
        dead = DeadLetters(self.publisher, self.metrics)
        pool = AgentPool({n: AgentFactory(n, a) for n, a in agents.items()}, self.store, memory_ttl=memory_ttl)
        dispatcher = Dispatcher(
            publisher=self.publisher,
            store=self.store,
            pool=pool,
            dead=dead,
            metrics=self.metrics,
            config=DispatchConfig(
                attempts=attempts,
                retry_base=0.01,
                history_ttl=history_ttl,
                handoff=handoff or HandoffConfig(),
                **config,
            ),
        )
        sender = OutboundWorker(
            {"slack": self.platform},
            store=self.store,
            limiter=RateLimiter(self.store, FAST),
            dead=dead,
            metrics=self.metrics,
            attempts=3,
            retry_base=0.01,
        )
        for p in range(PARTITIONS):
            worker = PartitionWorker(p, bus=self.bus, dispatcher=dispatcher, sender=sender, prefetch=20)
            await worker.start()
            self.workers.append(worker)

    async def stop(self) -> None:
        for w in self.workers:
            await w.stop(grace=5)

    async def dead(self) -> list[tuple[dict[str, Any], bytes]]:
        """Every dead letter so far (taken off the queue and kept here)."""
        while (d := await self.bus.get(self.bus.topology.dead_queue)) is not None:
            self.letters.append((d.headers, d.body))
            await d.ack()
        return list(self.letters)


@pytest.fixture(params=["memory", "rabbitmq+redis"])
async def rig(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[Rig]:
    topology = Topology(namespace, PARTITIONS)
    bus: Bus
    store: Store
    if request.param == "memory":
        bus, store = MemoryBus(topology), MemoryStore(namespace)
    else:
        require("RabbitMQ", "127.0.0.1", 5672)
        require("Redis", "127.0.0.1", 6379)
        bus, store = AmqpBus(AMQP_URL, topology), RedisStore(REDIS_URL, namespace)
    await bus.start()
    metrics = Metrics()
    r = Rig(bus, store, Publisher(bus, metrics), metrics)
    try:
        yield r
    finally:
        await r.stop()
        await bus.close()
        await store.close()
        if request.param != "memory":
            await purge_namespace(namespace, PARTITIONS)


def event(
    text: str, *, key: str = "slack:T:C:1", busy: str = "queue", agent: str = "rec", ref: str | None = None, **kw: Any
) -> Event:
    address = ReplyAddress(platform="slack", bot="T", channel="C", thread=key.rsplit(":", 1)[-1])
    return Event(
        platform="slack",
        delivery_id=ref or text,
        kind=EventKind.MESSAGE,
        conversation_key=key,
        agent=agent,
        busy=busy,
        text=text,
        reply_to=address,
        message_ref=ref or f"ref:{key}:{text}",
        **kw,
    )


class Recorder:
    """Replies with every text of its turn; can hold a turn until released."""

    def __init__(self) -> None:
        self.turns: list[list[str]] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.entered = asyncio.Event()

    async def on_event(self, ctx: TurnContext, ev: Event) -> None:
        self.turns.append([e.text for e in ctx.events])
        self.entered.set()
        await self.hold.wait()
        await ctx.reply(" + ".join(e.text for e in ctx.events))


async def test_queue_policy_runs_one_turn_per_message_in_order(rig: Rig) -> None:
    agent = Recorder()
    await rig.start({"rec": agent})
    for i in range(20):
        await rig.publisher.event(event(f"m{i}"))
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 20, what="20 replies")
    assert agent.turns == [[f"m{i}"] for i in range(20)]
    assert rig.platform.texts == [f"m{i}" for i in range(20)]


async def test_collect_policy_folds_messages_that_arrive_during_a_turn(rig: Rig) -> None:
    agent = Recorder()
    agent.hold.clear()
    await rig.start({"rec": agent})
    await rig.publisher.event(event("first", busy="collect"))
    await asyncio.wait_for(agent.entered.wait(), 10)
    for text in ("second", "third", "fourth"):
        await rig.publisher.event(event(text, busy="collect"))
    await eventually(
        lambda: sum(w.turns.pending() for w in rig.workers),
        until=lambda n: n == 4,
        what="three messages waiting behind the turn",
    )
    agent.hold.set()
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 2, what="two replies")
    assert agent.turns == [["first"], ["second", "third", "fourth"]]
    assert rig.platform.texts == ["first", "second + third + fourth"]


async def test_conversations_run_in_parallel_while_one_is_busy(rig: Rig) -> None:
    slow = Recorder()
    slow.hold.clear()
    await rig.start({"rec": slow})
    await rig.publisher.event(event("blocked", key="slack:T:C:busy"))
    await asyncio.wait_for(slow.entered.wait(), 10)
    waiting = event("behind it", key="slack:T:C:busy")
    await rig.publisher.event(waiting)
    others = [event(f"other{i}", key=f"slack:T:C:{i}") for i in range(10)]
    for ev in others:
        await rig.publisher.event(ev)
    await eventually(
        lambda: len(rig.platform.sent),
        until=lambda n: n == 0 and len(slow.turns) == 11,
        what="ten other conversations entering their turns",
    )
    slow.hold.set()
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 12, what="every reply")
    busy = [m.text for m in rig.platform.sent if m.conversation_key == "slack:T:C:busy"]
    assert busy == ["blocked", "behind it"]


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def on_event(self, ctx: TurnContext, ev: Event) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"flaky #{self.calls}")
        await ctx.reply(f"ok after {self.calls}")


async def test_a_failing_turn_is_retried_then_answers_once(rig: Rig) -> None:
    agent = Flaky(failures=2)
    await rig.start({"rec": agent}, attempts=3)
    await rig.publisher.event(event("try"))
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 1, what="a reply")
    assert rig.platform.texts == ["ok after 3"]
    assert await rig.dead() == []


async def test_a_turn_that_keeps_failing_is_dead_lettered_with_error_and_attempts(rig: Rig) -> None:
    agent = Flaky(failures=100)
    await rig.start({"rec": agent}, attempts=2)
    original = event("doomed")
    await rig.publisher.event(original)
    await rig.publisher.event(event("next in line"))
    letters = await eventually(rig.dead, until=lambda d: len(d) == 2, what="two dead letters")
    headers, body = letters[0]
    assert headers["x-stage"] == "dispatch"
    assert headers["x-reason"] == "turn_failed"
    assert headers["x-attempts"] == 2
    assert "RuntimeError: flaky #2" in headers["x-error"]
    assert Event.model_validate_json(body) == original
    assert agent.calls == 4  # two attempts each for "doomed" and for the message behind it
    assert rig.platform.sent == []


async def test_a_redelivered_or_duplicated_event_posts_nothing_twice(rig: Rig) -> None:
    agent = Recorder()
    await rig.start({"rec": agent})
    ev = event("once", ref="slack:T:C:1700.1")
    await rig.publisher.event(ev)
    await rig.publisher.event(ev)  # a redelivery: same event
    await rig.publisher.event(event("app_mention twin", ref="slack:T:C:1700.1"))  # same message, other event
    await rig.publisher.event(event("after"))
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n >= 2, what="replies")
    assert rig.platform.texts == ["once", "after"]
    assert agent.turns == [["once"], ["after"]]


async def test_a_store_outage_at_the_done_check_delays_turns_and_loses_nothing(rig: Rig) -> None:
    """The done lookup fails (Redis away): the conversation waits and retries it, in order, no dead letter."""
    real_lookup = rig.store.lookup
    failures = [StoreUnavailable("Redis did not answer (injected)") for _ in range(3)]

    def failing_lookup(key: str) -> asyncio.Future[str | None]:
        if failures:
            fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
            fut.set_exception(failures.pop())
            return fut
        return real_lookup(key)

    rig.store.lookup = failing_lookup  # type: ignore[method-assign]
    agent = Recorder()
    await rig.start({"rec": agent})
    await rig.publisher.event(event("through the outage"))
    await rig.publisher.event(event("behind it"))
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 2, what="both replies")
    assert rig.platform.texts == ["through the outage", "behind it"]
    assert failures == []
    assert await rig.dead() == []


async def test_bot_messages_and_edits_start_no_turn(rig: Rig) -> None:
    agent = Recorder()
    await rig.start({"rec": agent})
    await rig.publisher.event(event("a bot", skip_reason="bot message"))
    await rig.publisher.event(event("an edit", skip_reason="edit"))
    await rig.publisher.event(event("a person"))
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 1, what="one reply")
    assert agent.turns == [["a person"]]


async def test_undecodable_and_unknown_agent_events_are_dead_lettered(rig: Rig) -> None:
    await rig.start({"rec": Recorder()})
    topo = rig.bus.topology
    await rig.bus.publish(topo.events_exchange, "0", b"not json", headers={"conversation_key": "x"})
    await rig.publisher.event(event("who?", agent="nobody"))
    letters = await eventually(rig.dead, until=lambda d: len(d) == 2, what="two dead letters")
    assert sorted(h["x-reason"] for h, _ in letters) == ["undecodable", "unknown_agent"]


async def test_an_event_from_a_newer_schema_is_dead_lettered_not_run(rig: Rig) -> None:
    agent = Recorder()
    await rig.start({"rec": agent})
    await rig.publisher.event(event("from the future", schema_version=SCHEMA_VERSION + 1))
    await rig.publisher.event(event("today"))
    letters = await eventually(rig.dead, until=lambda d: len(d) == 1, what="one dead letter")
    assert [h["x-reason"] for h, _ in letters] == ["unsupported_schema"]
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 1, what="the current event's reply")
    assert agent.turns == [["today"]]


async def test_sender_waits_out_429_and_retries_failures_before_sending_only(rig: Rig) -> None:
    rig.platform.failures = [
        RateLimited("429", platform="slack", retry_after=0.3),
        SendError("connect refused", platform="slack", retryable=True),
    ]
    await rig.start({"rec": Recorder()})
    loop = asyncio.get_running_loop()
    start = loop.time()
    await rig.publisher.event(event("persist"))
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 1, what="a reply")
    assert loop.time() - start >= 0.3
    assert rig.platform.attempts == 3
    assert rig.platform.texts == ["persist"]


async def test_sender_dead_letters_a_failure_after_sending(rig: Rig) -> None:
    rig.platform.failures = [SendError("read timeout after the request was sent", platform="slack")]
    await rig.start({"rec": Recorder()})
    await rig.publisher.event(event("maybe posted"))
    letters = await eventually(rig.dead, until=lambda d: len(d) == 1, what="a dead letter")
    headers, body = letters[0]
    assert headers["x-stage"] == "outbound"
    assert headers["x-reason"] == "send_failed"
    assert json.loads(body)["text"] == "maybe posted"
    assert rig.platform.attempts == 1  # never resent: the platform may have posted it


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with memory_spans() as exporter:
        yield exporter


def _named(exporter: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]


async def test_trace_context_travels_in_headers_from_publish_to_send(rig: Rig, spans: InMemorySpanExporter) -> None:
    await rig.start({"rec": Recorder()})
    with tracing.span("caller") as caller:
        await rig.publisher.event(event("traced"))
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 1, what="a reply")
    await eventually(lambda: _named(spans, "send "), until=lambda s: len(s) == 1, what="the send span")
    trace_id = caller.get_span_context().trace_id
    chain = [
        _named(spans, "caller")[0],
        _named(spans, f"publish {rig.bus.topology.events_exchange}")[0],
        _named(spans, "turn rec")[0],
        _named(spans, f"publish {rig.bus.topology.outbound_exchange}")[0],
        _named(spans, "send slack reply")[0],
    ]
    assert {s.context.trace_id for s in chain} == {trace_id}
    for parent, child in itertools.pairwise(chain):
        assert child.parent is not None, child.name
        assert child.parent.span_id == parent.context.span_id, child.name
    assert chain[2].attributes is not None
    assert chain[2].attributes["gateway.conversation_key"] == "slack:T:C:1"


async def test_a_dead_lettered_turn_is_an_error_span_and_its_letter_continues_the_trace(
    rig: Rig, spans: InMemorySpanExporter
) -> None:
    await rig.start({"rec": Flaky(failures=100)}, attempts=2)
    await rig.publisher.event(event("doomed"))
    letters = await eventually(rig.dead, until=lambda d: len(d) == 1, what="a dead letter")
    turn = await eventually(lambda: _named(spans, "turn rec"), until=lambda s: len(s) == 1, what="turn span")
    assert turn[0].status.status_code is StatusCode.ERROR
    assert "RuntimeError: flaky #2" in (turn[0].status.description or "")
    assert [e.name for e in turn[0].events] == ["turn_failed", "turn_failed"]
    headers, _ = letters[0]
    # The letter's traceparent points into the failed turn, so a replay continues that trace.
    dead_publish = _named(spans, f"publish {rig.bus.topology.dead_exchange}")[0]
    assert dead_publish.parent is not None
    assert dead_publish.parent.span_id == turn[0].context.span_id
    assert str(headers["traceparent"]).split("-")[1:3] == [
        format(turn[0].context.trace_id, "032x"),
        format(dead_publish.context.span_id, "016x"),
    ]


async def test_a_429_shows_on_the_send_span(rig: Rig, spans: InMemorySpanExporter) -> None:
    rig.platform.failures = [RateLimited("429", platform="slack", retry_after=0.05)]
    await rig.start({"rec": Recorder()})
    await rig.publisher.event(event("slow down"))
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 1, what="a reply")
    send = await eventually(lambda: _named(spans, "send "), until=lambda s: len(s) == 1, what="send span")
    assert [e.name for e in send[0].events] == ["rate_limited"]
    assert send[0].attributes is not None
    assert send[0].attributes["gateway.attempts"] == 2


async def test_a_turn_retried_after_its_replies_were_queued_posts_them_once(rig: Rig) -> None:
    """The record fails after the reply was published: the retry publishes the same reply again,
    marked for a sent-marker check, and the sender posts it once."""
    real_push = rig.store.push
    failures = [StoreUnavailable("Redis did not answer (injected)")]

    async def push_failing_once(*args: Any, **kwargs: Any) -> None:
        if failures:
            raise failures.pop()
        await real_push(*args, **kwargs)

    rig.store.push = push_failing_once  # type: ignore[method-assign]
    await rig.start({"rec": Recorder()})
    await rig.publisher.event(event("only once"))
    await eventually(
        lambda: (
            rig.metrics.registry.get_sample_value("gateway_outbound_duplicates_suppressed_total", {"platform": "slack"})
            or 0.0
        ),
        until=lambda n: n == 1,
        what="the second copy suppressed by its sent marker",
    )
    assert rig.platform.texts == ["only once"]
    assert rig.platform.attempts == 1


async def test_a_reply_the_broker_does_not_confirm_is_published_again_without_running_the_agent(rig: Rig) -> None:
    """RabbitMQ does not confirm a turn's reply (a starved broker): the first time the reply never reached
    the queue, the second time it did but the confirm was lost. The reply is published again each time,
    the agent runs once, nothing is dead-lettered, and the user gets the reply once."""
    real_outbound = rig.publisher.outbound
    outcomes = ["lost", "queued-unconfirmed"]

    async def unconfirmed(message: OutboundMessage, *, recheck: bool = False) -> None:
        if outcomes:
            outcome = outcomes.pop(0)
            if outcome == "queued-unconfirmed":
                await real_outbound(message, recheck=recheck)
            raise PublishError("RabbitMQ did not confirm within 2.0 s (injected)", event_id=message.event_id)
        await real_outbound(message, recheck=recheck)

    rig.publisher.outbound = unconfirmed  # type: ignore[method-assign]
    agent = Flaky(failures=0)
    await rig.start({"rec": agent})
    await rig.publisher.event(event("answer me"))
    await eventually(
        lambda: (
            rig.metrics.registry.get_sample_value("gateway_outbound_duplicates_suppressed_total", {"platform": "slack"})
            or 0.0
        ),
        until=lambda n: n == 1,
        what="the copy that was queued without its confirm suppressed by its sent marker",
    )
    assert rig.platform.texts == ["ok after 1"]
    assert agent.calls == 1
    assert rig.metrics.registry.get_sample_value("gateway_reply_publish_retries_total") == 2
    assert await rig.dead() == []


class Remembering:
    """Stores a memory document each turn, then replies."""

    async def on_event(self, ctx: TurnContext, ev: Event) -> None:
        await ctx.memory.store(f"fact-{ev.text}", ev.text)
        await ctx.reply(f"noted {ev.text}")


async def test_history_and_memory_expire_after_their_retention(rig: Rig) -> None:
    await rig.start({"rec": Remembering()}, history_ttl=0.3, memory_ttl=0.3)
    await rig.publisher.event(event("m1"))
    await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 1, what="the reply")
    await eventually(
        lambda: rig.store.length(history_key("rec", "slack:T:C:1")), until=lambda n: n == 0, what="history expiry"
    )
    await eventually(
        lambda: rig.store.hall(memory_key("rec", "slack:T:C:1")), until=lambda h: h == {}, what="memory expiry"
    )


async def test_on_redis_every_turn_gives_history_and_memory_their_full_ttl_again(
    services: tuple[str, str, str],
) -> None:
    import redis.asyncio as aioredis

    amqp, redis_url, namespace = services
    bus, store = AmqpBus(amqp, Topology(namespace, PARTITIONS)), RedisStore(redis_url, namespace)
    await bus.start()
    metrics = Metrics()
    rig = Rig(bus, store, Publisher(bus, metrics), metrics)
    raw = aioredis.Redis.from_url(redis_url)
    hist = f"{namespace}:{history_key('rec', 'slack:T:C:1')}"
    mem = f"{namespace}:{memory_key('rec', 'slack:T:C:1')}"
    try:
        await rig.start({"rec": Remembering()}, history_ttl=3600, memory_ttl=7200)
        await rig.publisher.event(event("m1"))
        await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 1, what="the first reply")
        assert 3_500_000 < await raw.pttl(hist) <= 3_600_000
        assert 7_100_000 < await raw.pttl(mem) <= 7_200_000
        await raw.pexpire(hist, 5_000)  # as if the conversation had been quiet for almost an hour
        await raw.pexpire(mem, 5_000)
        await rig.publisher.event(event("m2"))
        await eventually(lambda: len(rig.platform.sent), until=lambda n: n == 2, what="the second reply")
        assert 3_500_000 < await raw.pttl(hist) <= 3_600_000
        assert 7_100_000 < await raw.pttl(mem) <= 7_200_000
        assert await raw.llen(hist) == 4  # two turns: user + assistant each
    finally:
        await rig.stop()
        await raw.aclose()
        await bus.close()
        await store.close()


class HandsOff:
    """Hands the conversation to a person when asked (failing the first time it does, when told to)."""

    def __init__(self, *, fail_once: bool = False) -> None:
        self.seen: list[str] = []
        self.fail_once = fail_once

    async def on_event(self, ctx: TurnContext, ev: Event) -> None:
        self.seen.append(ev.text)
        if ev.text == "person":
            ctx.handoff("asked for a person")
            await ctx.reply("a colleague will answer")
            if self.fail_once:
                self.fail_once = False
                raise RuntimeError("after the handoff (injected)")
            return
        await ctx.reply(f"bot: {ev.text}")


async def test_a_handed_off_conversation_keeps_its_events_in_order_and_the_agent_silent(rig: Rig) -> None:
    agent = HandsOff(fail_once=True)
    await rig.start({"rec": agent}, handoff=HandoffConfig(slack_channel="CHUMANS"))
    key = "slack:T:C:h1"
    for text in ("hi", "person", "one", "two", "three"):
        await rig.publisher.event(event(text, key=key))
    raw = await eventually(
        lambda: rig.store.tail(history_key("rec", key), 100), until=lambda t: len(t) >= 7, what="7 records"
    )
    turns = [json.loads(r) for r in raw]
    record = await handoffs.current(rig.store, key)
    await handoffs.release(rig.store, key)
    await rig.publisher.event(event("back", key=key))
    await eventually(  # the notice goes to another channel: its send is not ordered with the replies
        lambda: rig.platform.texts,
        until=lambda t: "bot: back" in t and any(x.startswith("A person") for x in t),
        what="the answer after release and the notice",
    )
    assert agent.seen == ["hi", "person", "person", "back"]  # the failed turn ran again; the rest were not shown
    user = [(t["text"], t.get("handoff", False)) for t in turns if t["role"] == "user"]
    assert user == [("hi", False), ("person", False), ("one", True), ("two", True), ("three", True)]
    assert record is not None
    assert record.by == "agent:rec"
    assert record.reason == "asked for a person"
    notices = [m for m in rig.platform.sent if m.to.channel == "CHUMANS"]
    assert len(notices) == 1
    assert key in notices[0].text
    assert [t for t in rig.platform.texts if not t.startswith("A person")] == [
        "bot: hi",
        "a colleague will answer",
        "bot: back",
    ]
    assert await rig.dead() == []


async def test_an_operator_handoff_silences_the_agent_until_release(rig: Rig) -> None:
    agent = HandsOff()
    await rig.start({"rec": agent})
    key = "slack:T:C:h2"
    _, new = await handoffs.hand_off(rig.store, key, reason="VIP", by="operator")
    again, second = await handoffs.hand_off(rig.store, key, reason="later", by="operator")
    await rig.publisher.event(event("waiting", key=key))
    await eventually(lambda: rig.store.tail(history_key("rec", key), 10), until=lambda t: len(t) == 1, what="kept")
    listed = await handoffs.listed(rig.store)
    assert await handoffs.release(rig.store, key) is not None
    assert await handoffs.release(rig.store, key) is None
    await rig.publisher.event(event("now", key=key))
    await eventually(lambda: rig.platform.texts, until=lambda t: t == ["bot: now"], what="the answer")
    assert new
    assert not second
    assert again.reason == "VIP"
    assert [h.key for h in listed] == [key]
    assert await handoffs.listed(rig.store) == []
    assert agent.seen == ["now"]


class Counting:
    """Counts its turns in ctx.state (failing once after changing it, when told to)."""

    def __init__(self, *, fail_once: bool = False) -> None:
        self.fail_once = fail_once

    async def on_session_enter(self, ctx: SessionContext) -> None:
        ctx.state.setdefault("entered", 0)
        ctx.state["entered"] += 1

    async def on_event(self, ctx: TurnContext, ev: Event) -> None:
        ctx.state["n"] = int(ctx.state.get("n", 0)) + 1
        ctx.state.public["n"] = ctx.state["n"]
        if self.fail_once and ev.text == "fail":
            self.fail_once = False
            ctx.state["n"] = 1000  # dropped with the failed attempt
            raise RuntimeError("after changing the state (injected)")
        if ev.text == "bad":
            ctx.state["oops"] = {1, 2}  # not JSON: the turn fails, and says why
        await ctx.reply(f"{ctx.session_name} {ctx.state['n']}")


async def test_state_outlives_the_warm_instance_and_a_failed_attempt_changes_nothing(rig: Rig) -> None:
    await rig.start({"rec": Counting(fail_once=True)}, attempts=2)
    key = "slack:T:C:s1"
    for text in ("a", "fail", "b"):
        await rig.publisher.event(event(text, key=key))
    await eventually(lambda: rig.platform.texts, until=lambda t: len(t) == 3, what="three replies")
    for w in rig.workers:  # a move to another process: the warm instance is gone, Redis keeps the state
        await w.stop(grace=5)
    rig.workers.clear()
    await rig.start({"rec": Counting()}, attempts=1)
    await rig.publisher.event(event("c", key=key))
    await rig.publisher.event(event("bad", key=key))
    await eventually(lambda: rig.dead(), until=lambda d: len(d) == 1, what="the turn with a non-JSON state")
    await eventually(lambda: rig.platform.texts, until=lambda t: len(t) == 4, what="the answer to c")
    raw = await rig.store.hget(sessions.record_key(key), sessions.state_field("default"))
    assert rig.platform.texts == ["default 1", "default 2", "default 3", "default 4"]
    assert sessions.parse_state(raw) == ({"entered": 2, "n": 4}, {"n": 4})
    assert "JSON cannot keep" in rig.letters[0][0]["x-error"]


async def test_a_route_pinned_session_has_its_own_history_memory_and_state(rig: Rig) -> None:
    await rig.start({"rec": Counting()})
    key = "slack:T:C:s2"
    await rig.publisher.event(event("a", key=key))
    await rig.publisher.event(event("b", key=key, session="ops"))
    await rig.publisher.event(event("c", key=key, session="ops"))
    await eventually(lambda: rig.platform.texts, until=lambda t: len(t) == 3, what="three replies")
    assert rig.platform.texts == ["default 1", "ops 1", "ops 2"]
    assert len(await rig.store.tail(history_key("rec", key), 10)) == 2
    assert len(await rig.store.tail(history_key("rec", key, "ops"), 10)) == 4
    assert await sessions.public_state(rig.store, key, "ops") == {"n": 2}
