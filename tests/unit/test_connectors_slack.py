"""Slack: signing v0 against Slack's documented vector, and the connector on recorded payloads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.base import ConnectorResult
from connectors.slack import verify
from connectors.slack.connector import SlackConnector
from gateway.core.errors import BadSignature, MalformedPayload, NotFound, StaleTimestamp
from gateway.core.events import Event, EventKind
from tests.support.signing import slack_headers
from tests.unit.builders import fixture_bytes, fixture_json, request, slack_callback, slack_event, to_bytes

VECTOR = fixture_json("slack_signing_vector.json")
SECRET = VECTOR["signing_secret"]
TS = int(VECTOR["timestamp"])
NOW = 1_700_000_000


def vector_headers(**override: str) -> dict[str, str]:
    headers = {k.lower(): v for k, v in VECTOR["headers"].items()}
    headers.update(override)
    return headers


# --- verify.py against the official vector ---------------------------------------------------


def test_vector_body_is_the_docs_example_file() -> None:
    assert VECTOR["body"].encode() == fixture_bytes("slack_slash_command_docs_example.txt").rstrip(b"\n")


def test_sign_reproduces_the_documented_signature() -> None:
    assert verify.sign(SECRET, VECTOR["timestamp"], VECTOR["body"].encode()) == VECTOR["expected_signature"]


def test_verify_accepts_the_vector_at_its_own_time() -> None:
    verify.verify(SECRET, vector_headers(), VECTOR["body"].encode(), now=TS)


@pytest.mark.parametrize("delta", [-300, 300])
def test_verify_accepts_the_edges_of_the_window(delta: int) -> None:
    verify.verify(SECRET, vector_headers(), VECTOR["body"].encode(), now=TS + delta)


def test_verify_refuses_a_one_byte_body_change() -> None:
    body = bytearray(VECTOR["body"].encode())
    body[-1] ^= 0x01
    with pytest.raises(BadSignature):
        verify.verify(SECRET, vector_headers(), bytes(body), now=TS)


def test_verify_refuses_a_wrong_secret() -> None:
    with pytest.raises(BadSignature):
        verify.verify(SECRET[:-1] + "0", vector_headers(), VECTOR["body"].encode(), now=TS)


@pytest.mark.parametrize("missing", ["x-slack-signature", "x-slack-request-timestamp"])
def test_verify_refuses_missing_headers(missing: str) -> None:
    headers = vector_headers()
    del headers[missing]
    with pytest.raises(BadSignature) as info:
        verify.verify(SECRET, headers, VECTOR["body"].encode(), now=TS)
    assert info.value.status == 401
    assert info.value.platform == "slack"


@pytest.mark.parametrize("delta", [-301, 301])
def test_verify_refuses_a_timestamp_outside_the_window(delta: int) -> None:
    with pytest.raises(StaleTimestamp) as info:
        verify.verify(SECRET, vector_headers(), VECTOR["body"].encode(), now=TS + delta)
    assert info.value.status == 401


@pytest.mark.parametrize(
    ("our_clock", "expected"),
    [
        (TS + 400, "X-Slack-Request-Timestamp is 400 s old: the sender's clock is 400 s behind this server's"),
        (TS - 400, "X-Slack-Request-Timestamp is 400 s in the future: the sender's clock is 400 s ahead of"),
    ],
)
def test_a_stale_timestamp_says_which_way_the_clocks_differ(our_clock: int, expected: str) -> None:
    with pytest.raises(StaleTimestamp) as info:
        verify.verify(SECRET, vector_headers(), VECTOR["body"].encode(), now=our_clock)
    assert info.value.reason.startswith(expected)
    assert "300 s replay window" in info.value.reason


@pytest.mark.parametrize("stamp", ["soon", "1531420618.0", ""])
def test_verify_refuses_a_non_numeric_timestamp(stamp: str) -> None:
    body = VECTOR["body"].encode()
    headers = vector_headers(
        **{"x-slack-request-timestamp": stamp, "x-slack-signature": verify.sign(SECRET, stamp, body)}
    )
    with pytest.raises(BadSignature):
        verify.verify(SECRET, headers, body, now=TS)


# --- the connector ----------------------------------------------------------------------------

CONNECTOR_SECRET = "s3cr3t-signing"


@pytest.fixture
def slack() -> SlackConnector:
    return SlackConnector(CONNECTOR_SECRET)


def handle(slack: SlackConnector, body: bytes, target: str = "events") -> ConnectorResult:
    return slack.handle(request(target, body, slack_headers(CONNECTOR_SECRET, body, ts=NOW), now=NOW))


def one_event(slack: SlackConnector, body: bytes, target: str = "events") -> Event:
    result = handle(slack, body, target)
    assert result.status == 200
    assert len(result.events) == 1
    return result.events[0]


def callback(event: dict[str, Any], **kw: Any) -> bytes:
    return to_bytes(slack_callback(event, **kw))


def test_the_connector_verifies_before_parsing(slack: SlackConnector) -> None:
    body = b"not json at all"
    headers = slack_headers("another-secret", body, ts=NOW)
    with pytest.raises(BadSignature):
        slack.handle(request("events", body, headers, now=NOW))


def test_url_verification_answers_the_challenge(slack: SlackConnector) -> None:
    body = fixture_bytes("slack_url_verification.json")
    result = handle(slack, body)
    assert result.events == []
    assert result.content_type == "application/json"
    assert json.loads(result.body) == {"challenge": fixture_json("slack_url_verification.json")["challenge"]}


def test_ssl_check_on_events_publishes_nothing(slack: SlackConnector) -> None:
    result = handle(slack, to_bytes({"type": "ssl_check", "token": "t"}))
    assert result.events == []
    assert result.status == 200


def test_ssl_check_on_commands_publishes_nothing(slack: SlackConnector) -> None:
    result = handle(slack, b"ssl_check=1&token=verification_token", "commands")
    assert result.events == []
    assert result.status == 200


def test_app_mention_is_a_mention(slack: SlackConnector) -> None:
    event = one_event(slack, fixture_bytes("slack_app_mention.json"))
    assert event.kind is EventKind.MENTION
    assert event.triggers_turn
    assert event.delivery_id == "Ev111"
    assert event.text == "<@W111> Hi there!"
    assert event.conversation_key == "slack:T111:C111:1595926230.009600"
    assert event.reply_to.thread == event.reply_to.message == "1595926230.009600"
    assert event.sender is not None
    assert event.sender.id == "W222"


def test_thread_message_is_keyed_by_the_thread_root(slack: SlackConnector) -> None:
    event = one_event(slack, fixture_bytes("slack_message_in_thread.json"))
    assert event.kind is EventKind.MESSAGE
    assert event.triggers_turn
    assert event.conversation_key == "slack:T111:C111:1726133698.626339"
    assert event.reply_to.thread == "1726133698.626339"
    assert event.reply_to.message == "1726133700.887259"
    assert event.reply_to.channel == "C111"
    assert event.reply_to.bot == "T111"


def test_own_message_is_skipped(slack: SlackConnector) -> None:
    data = fixture_json("slack_message_channel.json")
    assert data["event"]["user"] == data["authorizations"][0]["user_id"] == "W111"
    event = one_event(slack, fixture_bytes("slack_message_channel.json"))
    assert event.skip_reason == "own message"
    assert not event.triggers_turn


def test_the_same_message_from_another_user_triggers(slack: SlackConnector) -> None:
    data = fixture_json("slack_message_channel.json")
    data["event"]["user"] = "W222"
    event = one_event(slack, to_bytes(data))
    assert event.skip_reason is None
    assert event.triggers_turn
    assert event.conversation_key == "slack:T111:C111:1610261659.001400"


@pytest.mark.parametrize(
    "fields",
    [
        {"bot_id": "B999", "user": None},
        {"subtype": "bot_message", "bot_id": "B999", "user": None},
        {"subtype": "bot_message", "user": None, "username": "legacy-integration"},
        {"bot_id": "B999"},
    ],
    ids=["bot_id", "bot_message", "bot_message_without_bot_id", "bot_id_with_user"],
)
def test_bot_messages_never_trigger(slack: SlackConnector, fields: dict[str, Any]) -> None:
    event = one_event(slack, callback(slack_event(**fields)))
    assert event.skip_reason is not None
    assert not event.triggers_turn


def test_message_changed_is_an_edit(slack: SlackConnector) -> None:
    edited = slack_event(
        subtype="message_changed",
        user=None,
        text=None,
        hidden=True,
        ts="1610261700.000100",
        message={"type": "message", "user": "W222", "text": "hello (edited)", "ts": "1610261659.001400"},
        previous_message={"type": "message", "user": "W222", "text": "hello", "ts": "1610261659.001400"},
    )
    event = one_event(slack, callback(edited))
    assert event.kind is EventKind.EDIT
    assert not event.triggers_turn
    assert event.text == "hello (edited)"
    assert event.reply_to.message == "1610261659.001400"


def test_message_deleted_is_a_delete(slack: SlackConnector) -> None:
    deleted = slack_event(
        subtype="message_deleted",
        user=None,
        text=None,
        hidden=True,
        deleted_ts="1610261659.001400",
        ts="1610261800.000100",
    )
    event = one_event(slack, callback(deleted))
    assert event.kind is EventKind.DELETE
    assert not event.triggers_turn


def test_channel_join_does_not_trigger(slack: SlackConnector) -> None:
    event = one_event(slack, callback(slack_event(subtype="channel_join", text="<@W222> has joined the channel")))
    assert not event.triggers_turn
    assert event.skip_reason is not None


def test_app_mention_and_message_for_one_ts_share_message_ref(slack: SlackConnector) -> None:
    mention = one_event(slack, fixture_bytes("slack_app_mention.json"))
    src = fixture_json("slack_app_mention.json")["event"]
    message = one_event(
        slack, callback(slack_event(ts=src["ts"], text=src["text"], user=src["user"]), event_id="Ev222")
    )
    assert mention.message_ref is not None
    assert mention.message_ref == message.message_ref
    assert mention.conversation_key == message.conversation_key
    assert mention.delivery_id != message.delivery_id


def test_slash_command(slack: SlackConnector) -> None:
    event = one_event(slack, fixture_bytes("slack_slash_command_body.txt"), "commands")
    assert event.kind is EventKind.COMMAND
    assert event.triggers_turn
    assert event.text == "/hello-world Hi"
    assert event.reply_to.response_url == "https://hooks.slack.com/commands/T111/111/xxxxx"
    assert event.reply_to.channel == "C111"
    assert event.reply_to.bot == "T111"
    assert event.delivery_id == "111.111.xxx"


def test_block_actions(slack: SlackConnector) -> None:
    event = one_event(slack, fixture_bytes("slack_block_actions_body.txt"), "interactions")
    payload = fixture_json("slack_block_actions_payload.json")
    assert event.kind is EventKind.ACTION
    assert event.triggers_turn
    assert event.text == "click_me_123"
    assert event.delivery_id == payload["trigger_id"] == "111.222.valid"
    assert event.reply_to.response_url == payload["response_url"]
    assert event.conversation_key == "slack:T111:C111:111.222"


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"], ids=["broken", "array", "not_utf8"])
def test_malformed_events_body(slack: SlackConnector, body: bytes) -> None:
    with pytest.raises(MalformedPayload) as info:
        handle(slack, body)
    assert info.value.status == 400


def test_event_callback_without_event_id_is_malformed(slack: SlackConnector) -> None:
    envelope = slack_callback(slack_event())
    del envelope["event_id"]
    with pytest.raises(MalformedPayload):
        handle(slack, to_bytes(envelope))


@pytest.mark.parametrize("body", [b"", b"team_id=T111&user_id=W111"], ids=["empty", "no_payload"])
def test_interaction_form_without_payload_is_malformed(slack: SlackConnector, body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        handle(slack, body, "interactions")


def test_interaction_payload_that_is_not_json_is_malformed(slack: SlackConnector) -> None:
    with pytest.raises(MalformedPayload):
        handle(slack, b"payload=%7Bnope", "interactions")


def test_command_form_without_command_is_malformed(slack: SlackConnector) -> None:
    with pytest.raises(MalformedPayload):
        handle(slack, b"team_id=T111&text=hi", "commands")


def test_unknown_endpoint_is_not_found(slack: SlackConnector) -> None:
    assert not slack.handles("oauth")
    assert all(slack.handles(t) for t in ("events", "interactions", "commands"))
    with pytest.raises(NotFound) as info:
        handle(slack, b"{}", "oauth")
    assert info.value.status == 404
