"""WhatsApp: the handshake, the X-Hub-Signature-256 check, parsing of each payload kind (recorded from Meta's
docs), the 24-hour window record, and the sender against the fake Graph API (errors mapped by code)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors import build_registry
from connectors.base import InboundRequest
from connectors.platform import Parts
from connectors.secret_policy import audit, enforce
from connectors.whatsapp.connector import WhatsAppConnector
from connectors.whatsapp.sender import WhatsAppSender
from connectors.whatsapp.verify import sign
from connectors.whatsapp.window import last_inbound, record
from gateway.core.bus.memory import MemoryBus
from gateway.core.bus.topology import Topology
from gateway.core.config import GatewayFile
from gateway.core.errors import (
    BadSignature,
    ConfigError,
    MalformedPayload,
    RateLimited,
    RequestError,
    SendError,
    StoreUnavailable,
)
from gateway.core.events import Event, EventKind, OutboundMessage, ReplyAddress
from gateway.core.ingest import Ingestor
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.routing import Router
from gateway.core.settings import Settings
from gateway.core.store.memory import MemoryStore
from gateway.http import HttpState, build_app
from tests.fakes.whatsapp_api import FakeWhatsApp
from tests.unit.builders import fixture_bytes, fixture_json

SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
VERIFY = "verify-token-0123456789"
NUMBER = "106540352242922"
USER = "16505551234"


def post(body: bytes, signature: str | None = None, now: float = 1749416400.0) -> InboundRequest:
    headers = {"x-hub-signature-256": sign(SECRET, body) if signature is None else signature}
    return InboundRequest("whatsapp", headers, body, now)


def get(**query: str) -> InboundRequest:
    return InboundRequest("whatsapp", {}, b"", 0.0, method="GET", query={f"hub.{k}": v for k, v in query.items()})


@pytest.fixture
def whatsapp() -> WhatsAppConnector:
    return WhatsAppConnector(SECRET, VERIFY)


def parse(whatsapp: WhatsAppConnector, name: str) -> list[Event]:
    return whatsapp.handle(post(fixture_bytes(name))).events


# --- handshake -------------------------------------------------------------------------------------


def test_handshake_echoes_the_challenge(whatsapp: WhatsAppConnector) -> None:
    result = whatsapp.handle(get(mode="subscribe", verify_token=VERIFY, challenge="1158201444"))
    assert (result.status, result.body, result.events) == (200, b"1158201444", [])


@pytest.mark.parametrize(
    "query",
    [
        {"mode": "subscribe", "verify_token": "wrong", "challenge": "1"},
        {"mode": "unsubscribe", "verify_token": VERIFY, "challenge": "1"},
        {"verify_token": VERIFY, "challenge": "1"},
        {"mode": "subscribe", "challenge": "1"},
        {"mode": "subscribe", "verify_token": VERIFY},
    ],
)
def test_handshake_refused_with_403(whatsapp: WhatsAppConnector, query: dict[str, str]) -> None:
    with pytest.raises(RequestError) as info:
        whatsapp.handle(get(**query))
    assert info.value.status == 403


# --- signature -------------------------------------------------------------------------------------


def test_meta_signature_is_hmac_sha256_hex_of_the_raw_body() -> None:
    # GitHub's documented vector of the same scheme (tests/fixtures/github_hub_signature_vector.json).
    vector = fixture_json("github_hub_signature_vector.json")
    assert sign(vector["secret"], vector["payload"].encode()) == vector["expected"]


@pytest.mark.parametrize(
    "signature", ["", "sha256=", "sha1=abc", "sha256=" + "0" * 64, sign("another-secret-of-32-characters!", b"{}")]
)
def test_wrong_signature_is_401(whatsapp: WhatsAppConnector, signature: str) -> None:
    with pytest.raises(BadSignature) as info:
        whatsapp.handle(post(fixture_bytes("whatsapp_text.json"), signature))
    assert info.value.status == 401


def test_a_changed_body_does_not_match_its_signature(whatsapp: WhatsAppConnector) -> None:
    body = fixture_bytes("whatsapp_text.json")
    with pytest.raises(BadSignature):
        whatsapp.handle(post(body.replace(b"color", b"colour"), sign(SECRET, body)))


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"object": "page", "entry": []}', b'{"object": "x"}'])
def test_malformed_but_signed_is_400(whatsapp: WhatsAppConnector, body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        whatsapp.handle(post(body))


# --- parsing ---------------------------------------------------------------------------------------


def test_text_message(whatsapp: WhatsAppConnector) -> None:
    [event] = parse(whatsapp, "whatsapp_text.json")
    assert event.kind is EventKind.MESSAGE
    assert event.text == "Does it come in another color?"
    assert event.delivery_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    assert event.conversation_key == f"whatsapp:{NUMBER}:{USER}"
    assert (event.reply_to.bot, event.reply_to.channel, event.reply_to.message) == (NUMBER, USER, event.delivery_id)
    assert event.sender is not None
    assert event.sender.name == "Sheena Nelson"
    assert event.triggers_turn


@pytest.mark.parametrize(
    ("name", "text", "reply_id"),
    [
        ("whatsapp_button_reply.json", "Cancel", "cancel-button"),
        ("whatsapp_list_reply.json", "Priority Mail Express", "priority_express"),
    ],
)
def test_interactive_replies_are_actions(whatsapp: WhatsAppConnector, name: str, text: str, reply_id: str) -> None:
    [event] = parse(whatsapp, name)
    assert (event.kind, event.text) == (EventKind.ACTION, text)
    interactive = event.raw["messages"][0]["interactive"]
    assert interactive[interactive["type"]]["id"] == reply_id
    assert event.triggers_turn


@pytest.mark.parametrize(
    ("name", "kind", "text", "media_id"),
    [
        ("whatsapp_image.json", "image", "Lucky Shrub order", "1003383421387256"),
        ("whatsapp_document.json", "document", "[document]", "1209356473748264"),
        ("whatsapp_audio.json", "audio", "[audio]", "1251163366347087"),
    ],
)
def test_media_are_references_not_downloads(
    whatsapp: WhatsAppConnector, name: str, kind: str, text: str, media_id: str
) -> None:
    [event] = parse(whatsapp, name)
    assert (event.kind, event.text) == (EventKind.MESSAGE, text)
    assert event.raw["messages"][0][kind]["id"] == media_id
    assert event.raw["metadata"]["phone_number_id"] == NUMBER


@pytest.mark.parametrize("name", ["whatsapp_status_delivered.json", "whatsapp_status_failed_131047.json"])
def test_statuses_are_not_turns(whatsapp: WhatsAppConnector, name: str) -> None:
    [event] = parse(whatsapp, name)
    assert event.kind is EventKind.OTHER
    assert event.skip_reason == "delivery status"
    assert not event.triggers_turn
    assert event.conversation_key == f"whatsapp:{NUMBER}:{USER}"
    status = event.raw["statuses"][0]
    assert event.delivery_id == f"{status['id']}:{status['status']}"


def test_a_batched_notification_gives_one_event_per_item(whatsapp: WhatsAppConnector) -> None:
    data = fixture_json("whatsapp_text.json")
    value = data["entry"][0]["changes"][0]["value"]
    second = {**value["messages"][0], "id": "wamid.SECOND", "text": {"body": "and another"}}
    value["messages"].append(second)
    value["statuses"] = fixture_json("whatsapp_status_delivered.json")["entry"][0]["changes"][0]["value"]["statuses"]
    events = whatsapp.handle(post(json.dumps(data).encode())).events
    assert [e.delivery_id.split(":")[0] for e in events][1:] == ["wamid.SECOND", value["statuses"][0]["id"]]
    assert [e.triggers_turn for e in events] == [True, True, False]


def test_a_message_without_id_is_400(whatsapp: WhatsAppConnector) -> None:
    data = fixture_json("whatsapp_text.json")
    del data["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    with pytest.raises(MalformedPayload):
        whatsapp.handle(post(json.dumps(data).encode()))


# --- the 24-hour window ----------------------------------------------------------------------------


async def test_ingest_records_the_users_last_message_never_moving_back() -> None:
    store = MemoryStore("t")
    connector = WhatsAppConnector(SECRET, VERIFY, store)
    await connector.handle_async(post(fixture_bytes("whatsapp_text.json"), now=1749416400.0))
    assert await last_inbound(store, NUMBER, USER) == 1749416383.0  # the message's own timestamp
    await record(store, NUMBER, USER, 1749000000.0)  # a late retry of an older message
    assert await last_inbound(store, NUMBER, USER) == 1749416383.0
    await connector.handle_async(post(fixture_bytes("whatsapp_status_delivered.json"), now=1749499999.0))
    assert await last_inbound(store, NUMBER, USER) == 1749416383.0  # a status is not the user writing


# --- the sender against the fake Graph API -------------------------------------------------------


@pytest.fixture
async def graph() -> AsyncIterator[FakeWhatsApp]:
    async with FakeWhatsApp(token="EAAG-unit") as fake:
        yield fake


def reply(text: str = "hello", action: str = "reply") -> OutboundMessage:
    to = ReplyAddress(platform="whatsapp", bot=NUMBER, channel=USER, message="wamid.IN1", user=USER)
    return OutboundMessage(id="o1", event_id="e1", conversation_key="k", action=action, to=to, text=text)  # type: ignore[arg-type]


async def test_reply_within_the_window_is_a_text_message(graph: FakeWhatsApp) -> None:
    store = MemoryStore("t")
    await record(store, NUMBER, USER, time.time() - 60)
    graph.customer_wrote(NUMBER, USER)
    sender = WhatsAppSender("EAAG-unit", graph.base_url, store)
    try:
        answer = await sender.send(reply("hi there"))
        await sender.send(reply(action="typing"))
    finally:
        await sender.close()
    assert answer["message_id"].startswith("wamid.")
    [sent] = graph.messages
    assert sent["to"] == USER
    assert sent["text"]["body"] == "hi there"
    typing = graph.calls_for("typing")[0].args
    assert typing["typing_indicator"] == {"type": "text"}
    assert typing["message_id"] == "wamid.IN1"


async def test_outside_the_window_the_reply_is_refused_before_any_call(graph: FakeWhatsApp) -> None:
    store = MemoryStore("t")
    await record(store, NUMBER, USER, time.time() - 25 * 3600)
    sender = WhatsAppSender("EAAG-unit", graph.base_url, store)
    try:
        with pytest.raises(SendError) as info:
            await sender.send(reply())
    finally:
        await sender.close()
    assert "template message is needed" in str(info.value)
    assert not info.value.retryable
    assert graph.calls == []


async def test_metas_131047_is_the_same_template_reason(graph: FakeWhatsApp) -> None:
    sender = WhatsAppSender("EAAG-unit", graph.base_url, None)  # our record lost; Meta still refuses
    try:
        with pytest.raises(SendError) as info:
            await sender.send(reply())
    finally:
        await sender.close()
    assert "template message is needed" in str(info.value)
    assert "131047" in str(info.value)


async def test_throttling_codes_are_rate_limits_and_a_bad_token_is_not(graph: FakeWhatsApp) -> None:
    graph.customer_wrote(NUMBER, USER)
    graph.rate_limit_next(1)
    sender = WhatsAppSender("EAAG-unit", graph.base_url, None)
    wrong = WhatsAppSender("EAAG-wrong", graph.base_url, None)
    try:
        with pytest.raises(RateLimited) as limited:
            await sender.send(reply())
        with pytest.raises(SendError) as refused:
            await wrong.send(reply())
    finally:
        await sender.close()
        await wrong.close()
    assert "130429" in str(limited.value)
    assert limited.value.retry_after == 1.0
    assert not isinstance(refused.value, RateLimited)
    assert "190" in str(refused.value)


# --- secrets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "WHATSAPP_ACCESS_TOKEN"])
def test_a_placeholder_never_enables_whatsapp(variable: str) -> None:
    settings = Settings(**{variable: "REPLACE_ME"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=variable):
        enforce(settings, GatewayFile(), command="dev")


def test_short_whatsapp_secrets_are_weak_refused_by_serve_and_only_warned_by_dev() -> None:
    settings = Settings(WHATSAPP_APP_SECRET="a1b2c3d4e5", WHATSAPP_VERIFY_TOKEN="k9x")  # type: ignore[call-arg]
    assert {p.variable for p in audit(settings, GatewayFile()) if p.severity == "weak"} == {
        "WHATSAPP_APP_SECRET",
        "WHATSAPP_VERIFY_TOKEN",
    }
    assert len(enforce(settings, GatewayFile(), command="dev")) == 2
    with pytest.raises(ConfigError):
        enforce(settings, GatewayFile(), command="serve")
    assert audit(Settings(WHATSAPP_APP_SECRET=SECRET, WHATSAPP_VERIFY_TOKEN=VERIFY), GatewayFile()) == []  # type: ignore[call-arg]


# --- through the real aiohttp app ------------------------------------------------------------------


class DownStore(MemoryStore):
    async def get(self, key: str) -> str | None:
        raise StoreUnavailable("Redis did not answer: connection refused")


@pytest.mark.parametrize(("store", "status"), [(MemoryStore("u"), 200), (DownStore("u"), 503)])
async def test_ingress_answers_503_when_the_window_cannot_be_recorded(store: MemoryStore, status: int) -> None:
    settings = Settings(WHATSAPP_APP_SECRET=SECRET, WHATSAPP_VERIFY_TOKEN=VERIFY)  # type: ignore[call-arg]
    bus = MemoryBus(Topology("u", 2))
    await bus.start()
    metrics = Metrics()
    ingestor = Ingestor(Publisher(bus, metrics), MemoryStore("u"), Router([], "echo"), metrics)
    registry = build_registry(settings, GatewayFile(), Parts(settings, GatewayFile(), store=store))
    state = HttpState(bus=bus, store=store, metrics=metrics, registry=registry, ingestor=ingestor)
    body = fixture_bytes("whatsapp_text.json")
    async with TestClient(TestServer(build_app(state))) as client:
        posted = await client.post("/whatsapp", data=body, headers={"X-Hub-Signature-256": sign(SECRET, body)})
        query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "42"}
        handshake = await client.get("/whatsapp", params=query)
        elsewhere = await client.post("/whatsapp/extra", data=body)
        assert (posted.status, handshake.status, await handshake.text()) == (status, 200, "42")
        assert elsewhere.status == 404
