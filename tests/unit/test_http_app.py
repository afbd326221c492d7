"""The aiohttp app end to end in-process: real connectors, the in-process bus and store twins."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from connectors import build_registry
from gateway import http as gateway_http
from gateway.core import ingest as gateway_ingest
from gateway.core import logs
from gateway.core.bus.base import Delivery
from gateway.core.bus.memory import MemoryBus
from gateway.core.bus.topology import Topology
from gateway.core.config import GatewayFile
from gateway.core.events import Event
from gateway.core.ingest import Ingestor, dedupe_key
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.routing import Router
from gateway.core.settings import Settings
from gateway.core.store.memory import MemoryStore
from gateway.http import HttpState, build_app
from tests.support.signing import slack_headers, slack_message, telegram_message, webhook_headers
from tests.unit.builders import fixture_bytes, to_bytes

SLACK_SECRET = "slack-signing-secret-7f3a9c"
TG_TOKEN = "telegram-secret-token-b81d"
SHOP_SECRET = "whsec_" + base64.b64encode(b"shop-webhook-key-for-http-tests").decode()
PARTITIONS = 4

SHOP_FILE = GatewayFile.model_validate(
    {"webhooks": {"sources": {"shop": {"secret_env": "SHOP_WEBHOOK_SECRET", "customer_pointer": "/customer/id"}}}}
)


@dataclass
class Gateway:
    client: TestClient[Any, Any]
    bus: MemoryBus
    store: MemoryStore
    metrics: Metrics
    state: HttpState

    @property
    def topology(self) -> Topology:
        return self.bus.topology

    async def published(self) -> list[tuple[int, Event]]:
        """Take everything from every dispatch partition: (partition, event).

        Subscribes, as consumers do (RabbitMQ refuses basic.get on single-active-consumer queues).
        The in-process bus delivers what is ready when a subscriber attaches, before yielding.
        """
        out: list[tuple[int, Event]] = []
        for p in range(self.topology.partitions):
            taken: list[Delivery] = []

            async def take(delivery: Delivery, box: list[Delivery] = taken) -> None:
                box.append(delivery)

            sub = await self.bus.subscribe(self.topology.dispatch_queue(p), take, prefetch=10_000)
            await asyncio.sleep(0)  # let the delivery tasks the subscription started run
            await sub.cancel()
            for delivery in taken:
                await delivery.ack()
                out.append((p, Event.model_validate_json(delivery.body)))
        return out

    async def slack(
        self, body: bytes, *, ts: int | None = None, secret: str = SLACK_SECRET, endpoint: str = "events"
    ) -> Any:
        return await self.client.post(f"/slack/{endpoint}", data=body, headers=slack_headers(secret, body, ts=ts))


@asynccontextmanager
async def running(
    settings: Settings | None = None,
    file: GatewayFile | None = None,
    *,
    max_body: int = 1024 * 1024,
    bus: Any = None,
    web: bool = False,
) -> AsyncIterator[Gateway]:
    settings = settings or Settings(
        slack_signing_secret=SLACK_SECRET, telegram_bot_token="1:abc", telegram_secret_token=TG_TOKEN
    )
    file = file or GatewayFile()
    memory_bus = MemoryBus(Topology("unit", PARTITIONS))
    await memory_bus.start()
    the_bus = bus(memory_bus) if bus is not None else memory_bus
    store = MemoryStore("unit")
    metrics = Metrics()
    ingestor = Ingestor(Publisher(the_bus, metrics), store, Router(file.routes, settings.default_agent), metrics)
    state = HttpState(
        bus=the_bus,
        store=store,
        metrics=metrics,
        registry=build_registry(settings, file),
        ingestor=ingestor,
        max_body=max_body,
    )
    if web:
        from connectors.platform import Parts
        from connectors.web.platform import http

        parts = Parts(settings, file, store=store, bus=the_bus, ingestor=ingestor, metrics=metrics, dev=True)
        mount = http(parts)
        assert mount is not None
        state.mounts.append(mount)
    async with TestClient(TestServer(build_app(state))) as client:
        yield Gateway(client, memory_bus, store, metrics, state)


def slack_event_key(body: bytes) -> str:
    data = json.loads(body)
    ev = data["event"]
    return f"slack:{data['team_id']}:{ev['channel']}:{ev.get('thread_ts') or ev['ts']}"


# --- accepted ----------------------------------------------------------------------------------


async def test_signed_slack_event_is_published_to_its_partition() -> None:
    body = slack_message("hello", thread_ts="1700000000.000100", event_id="EvOne")
    key = slack_event_key(body)
    assert key == "slack:T111:C111:1700000000.000100"
    async with running() as gw:
        resp = await gw.slack(body)
        assert resp.status == 200
        [(partition, event)] = await gw.published()
    assert partition == gw.topology.partition_of(key)
    assert event.conversation_key == key
    assert event.delivery_id == "EvOne"
    assert event.text == "hello"
    assert event.agent == "echo"


async def test_the_same_event_id_twice_is_published_once() -> None:
    body = slack_message("hello", event_id="EvTwice")
    async with running() as gw:
        first = await gw.slack(body)
        second = await gw.slack(body)
        assert (first.status, second.status) == (200, 200)
        assert len(await gw.published()) == 1
        metrics = await (await gw.client.get("/metrics")).text()
    assert 'gateway_requests_total{connector="slack",outcome="duplicate"} 1.0' in metrics
    assert 'gateway_dedupe_hits_total{connector="slack"} 1.0' in metrics


async def test_url_verification_answers_without_publishing() -> None:
    body = fixture_bytes("slack_url_verification.json")
    async with running() as gw:
        resp = await gw.slack(body)
        assert resp.status == 200
        assert (await resp.json())["challenge"] == json.loads(body)["challenge"]
        assert await gw.published() == []


async def test_slash_command_over_http() -> None:
    body = fixture_bytes("slack_slash_command_body.txt")
    async with running() as gw:
        resp = await gw.slack(body, endpoint="commands")
        assert resp.status == 200
        [(_, event)] = await gw.published()
    assert event.text == "/hello-world Hi"


async def test_telegram_update_is_published() -> None:
    async with running() as gw:
        resp = await gw.client.post(
            "/telegram/default",
            data=telegram_message("hi", update_id=77),
            headers={"X-Telegram-Bot-Api-Secret-Token": TG_TOKEN},
        )
        assert resp.status == 200
        [(partition, event)] = await gw.published()
    assert event.conversation_key == "telegram:default:1111111"
    assert partition == gw.topology.partition_of("telegram:default:1111111")


async def test_webhook_is_published(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_WEBHOOK_SECRET", SHOP_SECRET)
    body = to_bytes({"customer": {"id": "cus_9"}, "text": "refund please"})
    async with running(Settings(), SHOP_FILE) as gw:
        resp = await gw.client.post("/webhooks/shop", data=body, headers=webhook_headers(SHOP_SECRET, body))
        assert resp.status == 200
        [(_, event)] = await gw.published()
    assert event.conversation_key == "webhook:shop:cus_9"
    assert event.text == "refund please"


# --- refused -----------------------------------------------------------------------------------


async def test_wrong_signature_is_401_json() -> None:
    body = slack_message("hello")
    async with running() as gw:
        resp = await gw.slack(body, secret="not-the-secret")
        assert resp.status == 401
        assert resp.content_type == "application/json"
        data = await resp.json()
        assert data["ok"] is False
        assert data["error"]
        assert await gw.published() == []


async def test_stale_timestamp_is_401() -> None:
    body = slack_message("hello")
    async with running() as gw:
        resp = await gw.slack(body, ts=int(time.time()) - 400)
        assert resp.status == 401
        assert "replay window" in (await resp.json())["error"]
        assert await gw.published() == []


async def test_body_over_the_limit_is_413() -> None:
    body = b"x" * 4096
    async with running(max_body=2048) as gw:
        resp = await gw.slack(body)
        assert resp.status == 413
        assert (await resp.json())["ok"] is False


async def test_chunked_body_over_the_limit_is_413() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 1024

    async with running(max_body=2048) as gw:
        resp = await gw.client.post("/slack/events", data=chunks(), headers={"X-Slack-Request-Timestamp": "1"})
        assert resp.status == 413


async def test_malformed_json_is_400() -> None:
    body = b'{"type": "event_callback", '
    async with running() as gw:
        resp = await gw.slack(body)
        assert resp.status == 400
        assert (await resp.json())["ok"] is False


async def test_slack_disabled_is_404() -> None:
    body = slack_message("hello")
    async with running(Settings(telegram_bot_token="1:abc", telegram_secret_token=TG_TOKEN)) as gw:
        resp = await gw.slack(body)
        assert resp.status == 404
        assert await gw.published() == []


async def test_unknown_slack_endpoint_is_404() -> None:
    async with running() as gw:
        resp = await gw.slack(b"{}", endpoint="oauth")
        assert resp.status == 404


async def test_unknown_telegram_bot_is_404() -> None:
    async with running() as gw:
        resp = await gw.client.post(
            "/telegram/someone-else", data=telegram_message("hi"), headers={"X-Telegram-Bot-Api-Secret-Token": TG_TOKEN}
        )
        assert resp.status == 404


async def test_wrong_telegram_token_is_401() -> None:
    async with running() as gw:
        resp = await gw.client.post(
            "/telegram/default", data=telegram_message("hi"), headers={"X-Telegram-Bot-Api-Secret-Token": "guess"}
        )
        assert resp.status == 401


async def test_unknown_webhook_source_is_404(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_WEBHOOK_SECRET", SHOP_SECRET)
    body = to_bytes({"customer": {"id": "c"}})
    async with running(Settings(), SHOP_FILE) as gw:
        resp = await gw.client.post("/webhooks/billing", data=body, headers=webhook_headers(SHOP_SECRET, body))
        assert resp.status == 404


async def test_a_parser_crash_is_400_not_500() -> None:
    update = json.loads(telegram_message("hi"))
    update["message"]["entities"] = ["not an object"]
    async with running() as gw:
        resp = await gw.client.post(
            "/telegram/default", data=to_bytes(update), headers={"X-Telegram-Bot-Api-Secret-Token": TG_TOKEN}
        )
        assert resp.status == 400
        assert await gw.published() == []


async def test_refusals_never_echo_secrets() -> None:
    body = slack_message("hello")
    async with running() as gw:
        texts = [
            await (await gw.slack(body, secret="wrong")).text(),
            await (await gw.slack(body, ts=1)).text(),
            await (await gw.client.post("/slack/events", data=body)).text(),
            await (
                await gw.client.post(
                    "/telegram/default",
                    data=telegram_message("hi"),
                    headers={"X-Telegram-Bot-Api-Secret-Token": TG_TOKEN[:-1]},
                )
            ).text(),
        ]
    for text in texts:
        assert SLACK_SECRET not in text
        assert TG_TOKEN not in text
        assert TG_TOKEN[:-1] not in text
        assert json.loads(text)["ok"] is False


# --- health, readiness, metrics ----------------------------------------------------------------


async def test_healthz() -> None:
    async with running() as gw:
        resp = await gw.client.get("/healthz")
        assert resp.status == 200
        assert (await resp.json())["ok"] is True


async def test_readyz_follows_the_bus() -> None:
    async with running() as gw:
        ready = await gw.client.get("/readyz")
        assert ready.status == 200
        assert (await ready.json())["broker"] is True
        await gw.bus.close()
        not_ready = await gw.client.get("/readyz")
        assert not_ready.status == 503
        data = await not_ready.json()
        assert data["ok"] is False
        assert data["broker"] is False


async def test_draining_reports_not_ready_but_still_accepts_webhooks() -> None:
    # While a load balancer takes us out of rotation, requests that still arrive are queued durably.
    async with running() as gw:
        gw.state.draining = True
        assert (await gw.client.get("/readyz")).status == 503
        resp = await gw.slack(slack_message("hello"))
        assert resp.status == 200


async def test_metrics_count_requests_by_connector_and_outcome() -> None:
    async with running() as gw:
        await gw.slack(slack_message("hello"))
        await gw.slack(slack_message("hello"), secret="wrong")
        await gw.client.post("/telegram/nobody", data=b"{}")
        resp = await gw.client.get("/metrics")
        assert resp.status == 200
        text = await resp.text()
    assert 'gateway_requests_total{connector="slack",outcome="published"} 1.0' in text
    assert 'gateway_requests_total{connector="slack",outcome="BadSignature"} 1.0' in text
    assert 'gateway_requests_total{connector="telegram",outcome="not_found"} 1.0' in text


# --- delivery guarantees -----------------------------------------------------------------------


def _key_of(body: bytes) -> str:
    from connectors.slack.parse import event_from_callback

    return dedupe_key(event_from_callback(json.loads(body)))


async def test_publish_failure_is_503_and_releases_the_dedupe_key() -> None:
    body = slack_message("hello", event_id="EvLost")
    async with running() as gw:
        await gw.bus.close()
        resp = await gw.slack(body)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
        assert await gw.store.get(_key_of(body)) is None
        await gw.bus.start()
        assert await gw.published() == []


class FailFirstPublish:
    """The twin bus, refusing its first publish the way a broker without confirm would."""

    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus
        self.topology = bus.topology
        self.failures = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        if self.failures:
            self.failures -= 1
            from gateway.core.errors import PublishError

            raise PublishError("not confirmed")
        await self._bus.publish(*args, **kwargs)


async def test_a_retry_after_a_failed_publish_is_accepted_once() -> None:
    body = slack_message("hello", event_id="EvRetry")
    async with running(bus=FailFirstPublish) as gw:
        assert (await gw.slack(body)).status == 503
        assert (await gw.slack(body)).status == 200
        assert (await gw.slack(body)).status == 200
        published = await gw.published()
    assert [e.delivery_id for _, e in published] == ["EvRetry"]


async def test_a_retry_after_restarting_the_bus_is_published_once() -> None:
    body = slack_message("hello", event_id="EvRestart")
    async with running() as gw:
        await gw.bus.close()
        assert (await gw.slack(body)).status == 503
        await gw.bus.start()
        assert (await gw.slack(body)).status == 200
        assert len(await gw.published()) == 1


async def test_a_pending_claim_is_503_with_retry_after() -> None:
    body = slack_message("hello", event_id="EvPending")
    async with running() as gw:
        await gw.store.claim(_key_of(body), "pending:x", 30)
        resp = await gw.slack(body)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
        assert await gw.published() == []
        assert await gw.store.get(_key_of(body)) == "pending:x"


# --- logs --------------------------------------------------------------------------------------


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Call it inside the test (capsys swaps sys.stderr per phase): JSON logs to the current stderr,
    fresh loggers so no logger cached by an earlier configure() writes elsewhere; config restored after."""
    saved = structlog.get_config()

    def enable() -> None:
        logs.configure("json", "debug")
        structlog.configure(cache_logger_on_first_use=False)
        monkeypatch.setattr(gateway_http, "log", structlog.get_logger(gateway_http.__name__))
        monkeypatch.setattr(gateway_ingest, "log", structlog.get_logger(gateway_ingest.__name__))

    yield enable
    structlog.configure(**saved)


async def test_logs_never_contain_the_secret_or_the_body(
    json_logs: Callable[[], None], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    json_logs()
    marker = "MARKER-4f9c2e-private-words"
    monkeypatch.setenv("SHOP_WEBHOOK_SECRET", SHOP_SECRET)
    settings = Settings(slack_signing_secret=SLACK_SECRET, telegram_bot_token="1:abc", telegram_secret_token=TG_TOKEN)
    good = slack_message(marker, event_id="EvLog")
    broken = b'{"type": "event_callback", "event": {"text": "' + marker.encode() + b'"'
    parser_crash = json.loads(telegram_message(marker))
    parser_crash["message"]["entities"] = ["x"]
    hook = to_bytes({"customer": {"name": marker}, "text": marker})
    async with running(settings, SHOP_FILE) as gw:
        statuses = [
            (await gw.slack(good)).status,
            (await gw.slack(good)).status,
            (await gw.slack(good, secret="wrong")).status,
            (await gw.slack(good, ts=1)).status,
            (await gw.slack(broken)).status,
            (
                await gw.client.post(
                    "/telegram/default",
                    data=telegram_message(marker),
                    headers={"X-Telegram-Bot-Api-Secret-Token": "guess"},
                )
            ).status,
            (
                await gw.client.post(
                    "/telegram/default",
                    data=to_bytes(parser_crash),
                    headers={"X-Telegram-Bot-Api-Secret-Token": TG_TOKEN},
                )
            ).status,
            (await gw.client.post("/webhooks/shop", data=hook, headers=webhook_headers(SHOP_SECRET, hook))).status,
        ]
        await gw.bus.close()
        statuses.append((await gw.slack(slack_message(marker, event_id="EvLog2"))).status)
    assert statuses == [200, 200, 401, 401, 400, 401, 400, 400, 503]
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    events = {line["event"] for line in lines}
    assert {"event_accepted", "request_refused", "event_not_queued"} <= events
    assert SLACK_SECRET not in err
    assert TG_TOKEN not in err
    assert SHOP_SECRET not in err
    assert SHOP_SECRET.removeprefix("whsec_") not in err
    assert marker not in err
