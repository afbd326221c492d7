"""Standard Webhooks: the official vectors (positive and negative), and the webhook connector.

github_hub_signature_vector.json is deliberately absent: GitHub's X-Hub-Signature-256 is not a
Standard Webhooks signature and the gateway does not claim to support it.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from connectors.base import ConnectorResult
from connectors.webhooks import signing
from connectors.webhooks.connector import WebhookConnector, WebhookSource
from gateway.core.errors import BadSignature, ConfigError, MalformedPayload, NotFound, StaleTimestamp
from gateway.core.events import EventKind
from tests.support.signing import webhook_headers
from tests.unit.builders import fixture_json, request, to_bytes

VECTORS = fixture_json("standardwebhooks_vectors.json")
NEGATIVE = VECTORS["negative_vectors"]
DEFAULT = VECTORS["vectors"][0]


def vector_headers(vector: dict[str, Any], signature: str | None = None, **override: str) -> dict[str, str]:
    headers = {
        "webhook-id": vector["msg_id"],
        "webhook-timestamp": str(vector["timestamp"]),
        "webhook-signature": signature if signature is not None else vector["expected_signature"],
    }
    headers.update(override)
    return headers


def verify_vector(
    vector: dict[str, Any], headers: dict[str, str], *, now: float | None = None, keys: tuple[bytes, ...] | None = None
) -> str:
    return signing.verify(
        keys if keys is not None else (signing.secret_key(vector["secret"]),),
        headers,
        vector["payload"].encode(),
        now=vector["timestamp"] if now is None else now,
    )


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=[v["name"] for v in VECTORS["vectors"]])
def test_sign_reproduces_the_official_vector(vector: dict[str, Any]) -> None:
    key = signing.secret_key(vector["secret"])
    assert (
        signing.sign(key, vector["msg_id"], vector["timestamp"], vector["payload"].encode())
        == vector["expected_signature"]
    )


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=[v["name"] for v in VECTORS["vectors"]])
def test_verify_accepts_the_official_vector(vector: dict[str, Any]) -> None:
    assert verify_vector(vector, vector_headers(vector)) == vector["msg_id"]


def test_signature_headers_match_the_vector() -> None:
    key = signing.secret_key(DEFAULT["secret"])
    headers = signing.signature_headers(key, DEFAULT["msg_id"], DEFAULT["timestamp"], DEFAULT["payload"].encode())
    assert headers == vector_headers(DEFAULT)


def test_invalid_signature_is_refused() -> None:
    with pytest.raises(BadSignature) as info:
        verify_vector(DEFAULT, vector_headers(DEFAULT, NEGATIVE["invalid_signature_for_default_payload"]))
    assert info.value.status == 401


def test_multi_signature_header_with_decoys_verifies() -> None:
    decoy_v1, decoy_v2 = NEGATIVE["multi_sig_decoys_used_in_tests"]
    header = " ".join([decoy_v1, decoy_v2, DEFAULT["expected_signature"], decoy_v1])
    assert verify_vector(DEFAULT, vector_headers(DEFAULT, header)) == DEFAULT["msg_id"]


def test_decoys_alone_are_refused() -> None:
    header = " ".join(NEGATIVE["multi_sig_decoys_used_in_tests"])
    with pytest.raises(BadSignature):
        verify_vector(DEFAULT, vector_headers(DEFAULT, header))


def test_a_valid_signature_under_another_version_is_refused() -> None:
    body = DEFAULT["expected_signature"].partition(",")[2]
    with pytest.raises(BadSignature):
        verify_vector(DEFAULT, vector_headers(DEFAULT, f"v2,{body}"))


def test_a_changed_body_is_refused() -> None:
    key = signing.secret_key(DEFAULT["secret"])
    with pytest.raises(BadSignature):
        signing.verify((key,), vector_headers(DEFAULT), DEFAULT["payload"].encode() + b" ", now=DEFAULT["timestamp"])


@pytest.mark.parametrize("case", sorted(NEGATIVE["unpadded_secret_cases"]))
def test_unpadded_secrets_work(case: str) -> None:
    raw = NEGATIVE["unpadded_secret_cases"][case]
    key = signing.secret_key("whsec_" + raw)
    assert key == base64.b64decode(raw + "=" * (-len(raw) % 4))
    assert signing.secret_key(raw) == key  # the prefix is optional
    body = b'{"test": 1}'
    headers = signing.signature_headers(key, "msg_1", 1_700_000_000, body)
    assert signing.verify((key,), headers, body, now=1_700_000_000) == "msg_1"


def test_unpadded_secret_equals_the_vector_secret() -> None:
    raw = NEGATIVE["unpadded_secret_cases"]["needs_no_padding"]
    assert signing.secret_key("whsec_" + raw) == signing.secret_key(DEFAULT["secret"])


@pytest.mark.parametrize("secret", NEGATIVE["empty_secrets_must_error"])
def test_empty_secrets_are_a_config_error(secret: str) -> None:
    with pytest.raises(ConfigError):
        signing.secret_key(secret)


def test_a_secret_that_is_not_base64_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        signing.secret_key("whsec_not*base64!")


@pytest.mark.parametrize("delta", [-301, 301])
def test_timestamps_outside_tolerance_are_stale(delta: int) -> None:
    key = signing.secret_key(DEFAULT["secret"])
    now = 1_700_000_000
    ts = now + delta
    body = DEFAULT["payload"].encode()
    headers = signing.signature_headers(key, DEFAULT["msg_id"], ts, body)
    with pytest.raises(StaleTimestamp):
        signing.verify((key,), headers, body, now=now)


@pytest.mark.parametrize("delta", [-300, 300])
def test_timestamps_at_the_edge_of_tolerance_pass(delta: int) -> None:
    key = signing.secret_key(DEFAULT["secret"])
    body = DEFAULT["payload"].encode()
    headers = signing.signature_headers(key, DEFAULT["msg_id"], 1_700_000_000 + delta, body)
    assert signing.verify((key,), headers, body, now=1_700_000_000) == DEFAULT["msg_id"]


@pytest.mark.parametrize("stamp", ["161426533.0", "invalid timestamp"])
def test_non_integer_timestamps_are_refused(stamp: str) -> None:
    with pytest.raises(BadSignature):
        verify_vector(DEFAULT, vector_headers(DEFAULT, **{"webhook-timestamp": stamp}))


def test_negative_timestamp_is_refused() -> None:
    with pytest.raises((BadSignature, StaleTimestamp)):
        verify_vector(DEFAULT, vector_headers(DEFAULT, **{"webhook-timestamp": "-161426533"}))


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_refused(missing: str) -> None:
    headers = vector_headers(DEFAULT)
    del headers[missing]
    with pytest.raises(BadSignature):
        verify_vector(DEFAULT, headers)


def test_rotation_accepts_a_signature_by_the_second_key() -> None:
    old = signing.secret_key(VECTORS["vectors"][1]["secret"])
    new = signing.secret_key(DEFAULT["secret"])
    assert verify_vector(DEFAULT, vector_headers(DEFAULT), keys=(old, new)) == DEFAULT["msg_id"]
    assert verify_vector(DEFAULT, vector_headers(DEFAULT), keys=(new, old)) == DEFAULT["msg_id"]
    with pytest.raises(BadSignature):
        verify_vector(DEFAULT, vector_headers(DEFAULT), keys=(old,))


# --- the connector ----------------------------------------------------------------------------

SECRET = "whsec_" + base64.b64encode(b"shop-webhook-key-0123456789abcdef").decode()
NOW = 1_700_000_000


def shop(**kw: Any) -> WebhookSource:
    fields: dict[str, Any] = {
        "name": "shop",
        "keys": (signing.secret_key(SECRET),),
        "customer_pointer": "/customer/id",
        "text_pointer": "/message/text",
        "reply_url": "https://shop.example.com/agent-replies",
    }
    fields.update(kw)
    return WebhookSource(**fields)


@pytest.fixture
def hooks() -> WebhookConnector:
    return WebhookConnector({"shop": shop()})


def post(hooks: WebhookConnector, payload: Any, *, source: str = "shop", msg_id: str = "msg_1") -> ConnectorResult:
    body = payload if isinstance(payload, bytes) else to_bytes(payload)
    return hooks.handle(request(source, body, webhook_headers(SECRET, body, msg_id=msg_id, ts=NOW), now=NOW))


def test_webhook_event_fields(hooks: WebhookConnector) -> None:
    result = post(hooks, {"customer": {"id": "cus_42"}, "message": {"text": "where is my order?"}}, msg_id="msg_abc")
    assert result.status == 200
    [event] = result.events
    assert event.platform == "webhook"
    assert event.kind is EventKind.MESSAGE
    assert event.triggers_turn
    assert event.delivery_id == "msg_abc"
    assert event.text == "where is my order?"
    assert event.conversation_key == "webhook:shop:cus_42"
    assert event.reply_to.bot == "shop"
    assert event.reply_to.channel == "cus_42"
    assert event.reply_to.reply_url == "https://shop.example.com/agent-replies"


def test_numeric_customer_id_is_a_string_key(hooks: WebhookConnector) -> None:
    [event] = post(hooks, {"customer": {"id": 42}, "message": {"text": "hi"}}).events
    assert event.conversation_key == "webhook:shop:42"


def test_missing_text_is_empty(hooks: WebhookConnector) -> None:
    [event] = post(hooks, {"customer": {"id": "c1"}}).events
    assert event.text == ""


@pytest.mark.parametrize(
    "payload",
    [{"message": {"text": "hi"}}, {"customer": {"id": ""}}, {"customer": {"id": {"nested": 1}}}, {"customer": None}],
    ids=["absent", "empty", "object", "null"],
)
def test_missing_customer_is_malformed(hooks: WebhookConnector, payload: dict[str, Any]) -> None:
    with pytest.raises(MalformedPayload) as info:
        post(hooks, payload)
    assert info.value.status == 400


@pytest.mark.parametrize("body", [b"[1, 2, 3]", b'"text"', b"{broken"], ids=["array", "string", "broken"])
def test_non_object_json_is_malformed(hooks: WebhookConnector, body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        post(hooks, body)


def test_unknown_source_is_not_found(hooks: WebhookConnector) -> None:
    assert hooks.handles("shop")
    assert not hooks.handles("billing")
    with pytest.raises(NotFound):
        post(hooks, {"customer": {"id": "c1"}}, source="billing")


def test_connector_refuses_a_wrong_secret(hooks: WebhookConnector) -> None:
    body = to_bytes({"customer": {"id": "c1"}})
    other = "whsec_" + base64.b64encode(b"another-key").decode()
    with pytest.raises(BadSignature):
        hooks.handle(request("shop", body, webhook_headers(other, body, ts=NOW), now=NOW))


def test_connector_accepts_rotated_keys() -> None:
    other = "whsec_" + base64.b64encode(b"next-key").decode()
    hooks = WebhookConnector({"shop": shop(keys=(signing.secret_key(other), signing.secret_key(SECRET)))})
    [event] = post(hooks, {"customer": {"id": "c1"}}).events
    assert event.conversation_key == "webhook:shop:c1"
