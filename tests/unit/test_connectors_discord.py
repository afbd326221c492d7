"""Discord interactions: Ed25519 verification with a key pair made here, the answers by interaction type, the
parse of real-shaped payloads, and the endpoint through the real aiohttp app (401, 400, 413, 404)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from nacl.signing import SigningKey

from connectors import build_registry
from connectors.base import InboundRequest
from connectors.discord.connector import DiscordConnector
from connectors.discord.parse import event_from_interaction, event_from_message
from connectors.discord.platform import PLATFORM, DiscordRates, slash_command
from connectors.discord.verify import public_key, sign
from connectors.platform import Parts
from gateway.core.bus.memory import MemoryBus
from gateway.core.bus.topology import Topology
from gateway.core.config import GatewayFile
from gateway.core.errors import BadSignature, ConfigError, MalformedPayload, StaleTimestamp
from gateway.core.events import EventKind
from gateway.core.ingest import Ingestor
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.routing import Router
from gateway.core.settings import Settings
from gateway.core.store.memory import MemoryStore
from gateway.http import HttpState, build_app
from tests.unit.builders import fixture_bytes, fixture_json

KEY = SigningKey(os.urandom(32))
PUBLIC = bytes(KEY.verify_key).hex()
NOW = 1765056657.0


def signed(body: bytes, *, key: SigningKey = KEY, at: float = NOW) -> InboundRequest:
    ts = str(int(at))
    headers = {"x-signature-ed25519": sign(key, ts, body), "x-signature-timestamp": ts}
    return InboundRequest("interactions", headers, body, NOW)


def connector() -> DiscordConnector:
    return DiscordConnector(public_key(PUBLIC), 300)


def test_a_signed_ping_is_answered_pong_and_publishes_nothing() -> None:
    result = connector().handle(signed(b'{"type":1,"id":"1","application_id":"2","token":"t","version":1}'))
    assert (json.loads(result.body), result.events, result.content_type) == ({"type": 1}, [], "application/json")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: {**r.headers, "x-signature-ed25519": sign(SigningKey(os.urandom(32)), str(int(NOW)), r.body)},
        lambda r: {**r.headers, "x-signature-timestamp": str(int(NOW) + 1)},
        lambda r: {**r.headers, "x-signature-ed25519": "zz" * 64},
        lambda r: {**r.headers, "x-signature-ed25519": "ab" * 10},
        lambda r: {k: v for k, v in r.headers.items() if k != "x-signature-ed25519"},
        lambda r: {k: v for k, v in r.headers.items() if k != "x-signature-timestamp"},
    ],
    ids=["other key", "timestamp changed", "not hex", "short", "no signature", "no timestamp"],
)
def test_a_forged_or_incomplete_signature_is_401(tamper: Any) -> None:
    good = signed(fixture_bytes("discord_slash_command.json"))
    forged = InboundRequest("interactions", tamper(good), good.body, NOW)
    with pytest.raises(BadSignature) as caught:
        connector().handle(forged)
    assert caught.value.status == 401


def test_a_changed_body_is_401() -> None:
    good = signed(fixture_bytes("discord_slash_command.json"))
    with pytest.raises(BadSignature):
        connector().handle(InboundRequest("interactions", good.headers, good.body + b" ", NOW))


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_stale_or_future_timestamp_is_401_even_when_signed(skew: int) -> None:
    with pytest.raises(StaleTimestamp) as caught:
        connector().handle(signed(fixture_bytes("discord_slash_command.json"), at=NOW + skew))
    assert caught.value.status == 401


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"type":"x"}', b'{"type":2}', b'{"type":7,"id":"1"}'])
def test_a_signed_malformed_interaction_is_400(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        connector().handle(signed(body))


def test_the_public_key_must_be_32_bytes_of_hex() -> None:
    for bad in ("", "REPLACE_ME", "ab" * 31, "zz" * 32):
        with pytest.raises(ConfigError, match="DISCORD_PUBLIC_KEY"):
            public_key(bad)


def test_a_slash_command_is_deferred_and_becomes_a_command_event() -> None:
    result = connector().handle(signed(fixture_bytes("discord_slash_command.json")))
    assert json.loads(result.body) == {"type": 5}
    [event] = result.events
    assert (event.kind, event.text, event.delivery_id) == (
        EventKind.COMMAND,
        "/cardsearch The Gitrog Monster",
        "786008729715212338",
    )
    assert event.conversation_key == "discord:290926798626357999:645027906669510667"
    assert event.reply_to.response_url == "webhooks/775799577604522054/A_UNIQUE_TOKEN"
    assert event.sender is not None
    assert (event.sender.id, event.sender.name) == ("53908232506183680", "Mason")
    assert "token" not in event.raw
    assert event.raw["data"]["name"] == "cardsearch"
    assert event.triggers_turn


def test_autocomplete_is_answered_with_no_choices_and_no_event() -> None:
    body = json.dumps({**fixture_json("discord_slash_command.json"), "type": 4}).encode()
    result = connector().handle(signed(body))
    assert (json.loads(result.body), result.events) == ({"type": 8, "data": {"choices": []}}, [])


def test_a_dm_command_is_keyed_at_me_and_a_thread_command_by_its_parent_and_thread() -> None:
    dm = event_from_interaction(slash_command("ask", "hi", guild=None, channel="111", user="222"))
    assert (dm.conversation_key, dm.reply_to.user) == ("discord:@me:111", "222")
    thread = fixture_json("discord_slash_command.json")
    thread["channel"] = {"id": "999", "type": 11, "parent_id": "645027906669510667", "guild_id": "290926798626357999"}
    thread["channel_id"] = "999"
    event = event_from_interaction(thread)
    assert event.conversation_key == "discord:290926798626357999:645027906669510667:999"
    assert (event.reply_to.channel, event.reply_to.thread) == ("645027906669510667", "999")


def test_subcommands_components_and_modals_have_their_words_as_text() -> None:
    command = slash_command("ticket", "")
    command["data"]["options"] = [
        {"name": "open", "type": 1, "options": [{"name": "title", "type": 3, "value": "printer on fire"}]}
    ]
    assert event_from_interaction(command).text == "/ticket open printer on fire"
    component = {**command, "type": 3, "data": {"custom_id": "approve", "component_type": 3, "values": ["yes"]}}
    assert (event_from_interaction(component).kind, event_from_interaction(component).text) == (
        EventKind.ACTION,
        "approve yes",
    )
    rows = [{"type": 1, "components": [{"type": 4, "custom_id": "why", "value": "because"}]}]
    modal = {**command, "type": 5, "data": {"custom_id": "feedback", "components": rows}}
    assert event_from_interaction(modal).text == "feedback because"


def test_a_message_create_mentioning_the_bot_is_a_mention_without_the_mention() -> None:
    data = fixture_json("discord_message_create.json")["d"]
    event = event_from_message(data, bot_id="775799577604522054")
    assert (event.kind, event.text, event.skip_reason) == (EventKind.MENTION, "what's on the menu today?", None)
    assert event.conversation_key == "discord:290926798626357999:645027906669510667"
    assert (event.reply_to.message, event.delivery_id) == ("1447021545107259392", "1447021545107259392")


def test_own_messages_other_bots_webhooks_and_system_messages_start_no_turn() -> None:
    data = fixture_json("discord_message_create.json")["d"]
    own = {**data, "author": {"id": "775799577604522054", "username": "gateway", "bot": True}}
    assert event_from_message(own, bot_id="775799577604522054").skip_reason == "own message"
    other = {**data, "author": {"id": "5", "username": "otherbot", "bot": True}}
    assert event_from_message(other, bot_id="775799577604522054").skip_reason == "bot message"
    hook = {**data, "webhook_id": "6"}
    assert event_from_message(hook, bot_id="775799577604522054").skip_reason == "bot message"
    pin = {**data, "type": 6}
    assert not event_from_message(pin, bot_id="775799577604522054").triggers_turn


def test_a_dm_message_and_a_thread_message() -> None:
    data = {
        k: v for k, v in fixture_json("discord_message_create.json")["d"].items() if k not in ("guild_id", "member")
    }
    dm = event_from_message({**data, "content": "hello"}, bot_id="775799577604522054")
    assert (dm.conversation_key, dm.kind, dm.text) == ("discord:@me:645027906669510667", EventKind.MESSAGE, "hello")
    thread = event_from_message(
        {**fixture_json("discord_message_create.json")["d"], "channel_id": "777"},
        bot_id=None,
        parent="645027906669510667",
    )
    assert thread.conversation_key == "discord:290926798626357999:645027906669510667:777"


def test_the_rate_policy_paces_per_channel_or_thread_and_per_bot() -> None:
    rates = DiscordRates.from_settings(Settings())
    to = event_from_message(fixture_json("discord_message_create.json")["d"], bot_id=None, parent="1").reply_to
    [local] = rates.local(to)
    [shared] = rates.shared(to)
    assert (local.key, local.rate, local.burst) == ("discord:290926798626357999:645027906669510667", 1.0, 5.0)
    assert (shared.key, shared.rate) == ("discord:bot", 50.0)


def _state(settings: Settings) -> HttpState:
    bus = MemoryBus(Topology("u", 2))
    metrics = Metrics()
    store = MemoryStore("u")
    ingestor = Ingestor(Publisher(bus, metrics), store, Router([], "echo"), metrics)
    registry = build_registry(settings, GatewayFile(), Parts(settings, GatewayFile(), store=store))
    return HttpState(bus=bus, store=store, metrics=metrics, registry=registry, ingestor=ingestor, max_body=4096)


def _headers(body: bytes, key: SigningKey = KEY) -> dict[str, str]:
    ts = str(int(time.time()))
    return {"X-Signature-Ed25519": sign(key, ts, body), "X-Signature-Timestamp": ts}


async def test_through_the_app_a_command_is_deferred_once_queued_and_bad_requests_are_refused() -> None:
    state = _state(Settings(DISCORD_PUBLIC_KEY=PUBLIC))  # type: ignore[call-arg]
    await state.bus.start()
    body = json.dumps(slash_command("ask", "hello")).encode()
    garbage = b"{not json"
    big = json.dumps(slash_command("ask", "x" * 5000)).encode()
    async with TestClient(TestServer(build_app(state))) as client:
        ok = await client.post("/discord/interactions", data=body, headers=_headers(body))
        again = await client.post("/discord/interactions", data=body, headers=_headers(body))
        forged = await client.post(
            "/discord/interactions", data=body, headers=_headers(body, SigningKey(os.urandom(32)))
        )
        malformed = await client.post("/discord/interactions", data=garbage, headers=_headers(garbage))
        oversized = await client.post("/discord/interactions", data=big, headers=_headers(big))
        elsewhere = await client.post("/discord/other", data=body, headers=_headers(body))
        assert (ok.status, await ok.json(), again.status, await again.json()) == (200, {"type": 5}, 200, {"type": 5})
        assert (forged.status, malformed.status, oversized.status, elsewhere.status) == (401, 400, 413, 404)
    counts = state.metrics.render().decode()
    assert 'gateway_requests_total{connector="discord",outcome="published"} 1.0' in counts
    assert 'gateway_requests_total{connector="discord",outcome="duplicate"} 1.0' in counts  # not published again


async def test_without_its_public_key_the_endpoint_is_404() -> None:
    state = _state(Settings())
    body = json.dumps(slash_command("ask", "hello")).encode()
    async with TestClient(TestServer(build_app(state))) as client:
        answer = await client.post("/discord/interactions", data=body, headers=_headers(body))
        assert answer.status == 404
    assert state.registry is not None
    assert state.registry.get("discord") is None
    notes = state.registry.notes
    assert any("DISCORD_PUBLIC_KEY is not set" in n for n in notes)


def test_the_platform_is_registered_with_its_endpoint() -> None:
    assert PLATFORM.name == "discord"
    assert [e.path for e in PLATFORM.endpoints] == ["/discord/{target:interactions}"]


def test_gateway_send_discord_signs_a_slash_command_the_connector_accepts(tmp_path: Any) -> None:
    import argparse

    seed = tmp_path / "key.hex"
    seed.write_text(bytes(KEY).hex())
    settings = Settings(DISCORD_PUBLIC_KEY=PUBLIC, DISCORD_APPLICATION_ID="42")  # type: ignore[call-arg]
    parser = argparse.ArgumentParser()
    assert PLATFORM.send_arguments is not None
    assert PLATFORM.sample is not None
    PLATFORM.send_arguments(parser)
    request = PLATFORM.sample(settings, parser.parse_args(["hello", "--key", str(seed), "--guild", "@me"]))
    headers = {k.lower(): v for k, v in request.headers.items()}
    result = connector().handle(InboundRequest("interactions", headers, request.body, time.time()))
    [event] = result.events
    assert (request.path, event.text, event.conversation_key) == (
        "/discord/interactions",
        "/ask hello",
        "discord:@me:1100000000000000003",
    )
    assert event.reply_to.response_url is not None
    assert event.reply_to.response_url.startswith("webhooks/42/")
    with pytest.raises(ConfigError, match="--key"):
        PLATFORM.sample(settings, parser.parse_args(["hello", "--key", str(tmp_path / "missing")]))
