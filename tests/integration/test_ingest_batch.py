"""A dedupe batch with a store failure in the middle: 503 for exactly the events it could not record.

The claims (``SET NX GET``) of requests handled in one loop iteration go to Redis as one pipeline
(gateway/core/store/redis.py), and their publishes leave in one write (gateway/core/bus/publishes.py).
One command of the batch failing must fail only its own request. The failure is real: the dedupe
key of two events holds a list, so Redis answers ``WRONGTYPE`` to their ``SET`` (the in-memory twin
answers the same). Runs against the twins and against real Redis and RabbitMQ.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors import build_registry
from gateway.core.bus.base import Bus, Delivery
from gateway.core.config import GatewayFile
from gateway.core.errors import StoreUnavailable
from gateway.core.events import Event
from gateway.core.ingest import Ingestor, Outcome, dedupe_key
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.routing import Router
from gateway.core.settings import Settings
from gateway.core.store.base import Store
from gateway.core.store.redis import RedisStore
from gateway.http import HttpState, build_app
from tests.support.signing import slack_headers, slack_message
from tests.support.waiting import eventually

SECRET = "slack-signing-secret-batch-3c9e"
N = 8
BROKEN = {2, 5}  # positions in the batch whose dedupe key cannot be written


def event_body(i: int) -> bytes:
    return slack_message(f"hello {i}", channel=f"C{i:03d}", event_id=f"EvBatch{i}")


def key_of(i: int) -> str:
    return f"dedupe:slack:T111:EvBatch{i}"


async def break_keys(store: Store) -> None:
    for i in BROKEN:  # a list where the claim's string goes: SET ... GET answers WRONGTYPE
        await store.push(key_of(i), ["not a dedupe mark"], keep=10)


async def dispatched(bus: Bus, expected: int) -> list[Event]:
    """Every event in the dispatch queues, taken as a consumer takes them (subscribe, ack)."""
    got: list[Event] = []

    async def take(delivery: Delivery) -> None:
        got.append(Event.model_validate_json(delivery.body))
        await delivery.ack()

    subs = [
        await bus.subscribe(bus.topology.dispatch_queue(p), take, prefetch=100) for p in range(bus.topology.partitions)
    ]
    try:
        await eventually(lambda: len(got) >= expected, what=f"{expected} dispatched events")
    finally:
        for sub in subs:
            await sub.cancel()
    return got


class Batches:
    """Observes the Redis auto-pipeline's round trips: how many commands each carried."""

    def __init__(self, store: Store) -> None:
        self.sizes: list[int] = []
        if isinstance(store, RedisStore):
            pipe = store._pipe
            send = pipe._send

            async def observed(batch: list[Any], loads: dict[str, Any]) -> Any:
                self.sizes.append(len(batch))
                return await send(batch, loads)

            pipe._send = observed  # type: ignore[method-assign]


@pytest.fixture
def ingestor(bus: Bus, store: Store) -> Ingestor:
    return Ingestor(Publisher(bus, Metrics()), store, Router([], "echo"), Metrics())


async def test_claims_of_one_iteration_fail_only_where_the_store_failed(
    ingestor: Ingestor, bus: Bus, store: Store, kind: str
) -> None:
    await break_keys(store)
    events = [
        Event(
            platform="slack",
            delivery_id=f"EvBatch{i}",
            kind="message",
            conversation_key=f"slack:T111:C{i:03d}:1",
            reply_to={"platform": "slack", "bot": "T111", "channel": f"C{i:03d}", "thread": "1"},
            text=f"e{i}",
        )
        for i in range(N)
    ]
    batches = Batches(store)
    results = await asyncio.gather(*(ingestor.accept(e) for e in events), return_exceptions=True)
    for i, result in enumerate(results):
        if i in BROKEN:
            assert isinstance(result, StoreUnavailable), (i, result)
            assert "WRONGTYPE" in str(result)
        else:
            assert result is Outcome.PUBLISHED, (i, result)
    if kind == "real":
        assert batches.sizes[0] == N  # the N claims went to Redis in one round trip
    got = await dispatched(bus, N - len(BROKEN))
    assert sorted(e.delivery_id for e in got) == [f"EvBatch{i}" for i in range(N) if i not in BROKEN]
    for i, e in enumerate(events):
        value = await store.get(dedupe_key(e)) if i not in BROKEN else None
        if i not in BROKEN:
            assert value is not None
            assert value.startswith("done:")


async def test_concurrent_webhooks_answer_503_for_exactly_the_events_not_recorded(
    bus: Bus, store: Store, kind: str
) -> None:
    settings = Settings(slack_signing_secret=SECRET)
    file = GatewayFile()
    metrics = Metrics()
    ingestor = Ingestor(Publisher(bus, metrics), store, Router(file.routes, settings.default_agent), metrics)
    state = HttpState(bus=bus, store=store, metrics=metrics, registry=build_registry(settings, file), ingestor=ingestor)
    await break_keys(store)
    bodies = [event_body(i) for i in range(N)]
    async with TestClient(TestServer(build_app(state))) as client:
        responses = await asyncio.gather(
            *(client.post("/slack/events", data=b, headers=slack_headers(SECRET, b)) for b in bodies)
        )
        statuses = [r.status for r in responses]
        retry_after = [r.headers.get("Retry-After") for r in responses]
        for r in responses:
            r.release()
        got = await dispatched(bus, N - len(BROKEN))
        # A retry of a failed event, once its key is writable again, is accepted once.
        for i in BROKEN:
            await store.delete(key_of(i))
        b = bodies[min(BROKEN)]
        retried = await client.post("/slack/events", data=b, headers=slack_headers(SECRET, b))
        assert retried.status == 200
    assert statuses == [503 if i in BROKEN else 200 for i in range(N)]
    assert [retry_after[i] for i in BROKEN] == ["1"] * len(BROKEN)
    assert sorted(e.delivery_id for e in got) == [f"EvBatch{i}" for i in range(N) if i not in BROKEN]
    rendered = metrics.render().decode()
    assert f'gateway_requests_total{{connector="slack",outcome="unavailable"}} {float(len(BROKEN))}' in rendered
    assert f'gateway_requests_total{{connector="slack",outcome="published"}} {float(N - len(BROKEN) + 1)}' in rendered
