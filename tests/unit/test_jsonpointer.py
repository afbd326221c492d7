"""RFC 6901 JSON pointers (connectors/webhooks/jsonpointer.py), with the RFC's own example document."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.webhooks.jsonpointer import build, resolve

#: RFC 6901 section 5.
DOC: dict[str, Any] = {
    "foo": ["bar", "baz"],
    "": 0,
    "a/b": 1,
    "c%d": 2,
    "e^f": 3,
    "g|h": 4,
    "i\\j": 5,
    'k"l': 6,
    " ": 7,
    "m~n": 8,
}


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        ("", DOC),
        ("/foo", ["bar", "baz"]),
        ("/foo/0", "bar"),
        ("/foo/1", "baz"),
        ("/", 0),
        ("/a~1b", 1),
        ("/c%d", 2),
        ("/e^f", 3),
        ("/g|h", 4),
        ("/i\\j", 5),
        ('/k"l', 6),
        ("/ ", 7),
        ("/m~0n", 8),
    ],
)
def test_rfc6901_examples(pointer: str, expected: Any) -> None:
    assert resolve(DOC, pointer) == expected


def test_tilde_escapes_are_decoded_in_order() -> None:
    # "~01" is "~1" literally (decode ~1 first, then ~0), never "/".
    doc = {"~1": "tilde-one", "/": "slash"}
    assert resolve(doc, "/~01") == "tilde-one"
    assert resolve(doc, "/~1") == "slash"


def test_nested_objects_and_arrays() -> None:
    doc = {"customer": {"id": "cus_1"}, "items": [{"text": "a"}, {"text": "b"}]}
    assert resolve(doc, "/customer/id") == "cus_1"
    assert resolve(doc, "/items/1/text") == "b"


@pytest.mark.parametrize(
    "pointer",
    ["/missing", "/foo/2", "/foo/-", "/foo/x", "/foo/0/deeper", "/a~1b/c", "/foo/-1"],
)
def test_missing_is_none(pointer: str) -> None:
    assert resolve(DOC, pointer) is None


def test_falsy_values_are_returned_not_treated_as_missing() -> None:
    doc = {"zero": 0, "empty": "", "no": False, "null": None}
    assert resolve(doc, "/zero") == 0
    assert resolve(doc, "/empty") == ""
    assert resolve(doc, "/no") is False


def test_a_pointer_must_start_with_a_slash() -> None:
    with pytest.raises(ValueError, match="must start with"):
        resolve(DOC, "foo")


def test_root_member_pointer_missing_is_none() -> None:
    assert resolve({"a": 1}, "/") is None


def test_array_index_with_leading_zero_is_missing() -> None:
    assert resolve(DOC, "/foo/01") is None


@pytest.mark.parametrize(
    "values",
    [
        {"/customer/id": "cus_1", "/message/text": "hi", "/type": "message.created"},
        {"/items/2/text": "hi", "/items/2/from": "me", "/a~1b/m~0n": 1},
        {"/customer_id": "c", "/text": "t"},
    ],
)
def test_build_makes_a_document_where_every_pointer_resolves(values: dict[str, Any]) -> None:
    doc = build(values)
    for pointer, value in values.items():
        assert resolve(doc, pointer) == value


def test_build_makes_lists_for_array_indices() -> None:
    assert build({"/items/1/text": "hi"}) == {"items": [None, {"text": "hi"}]}


@pytest.mark.parametrize("values", [{"/a": 1, "/a/b": 2}, {"/a/b": 2, "/a": 1}, {"/a/0": 1, "/a/x": 2}])
def test_build_refuses_pointers_that_overlap(values: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="overlaps"):
        build(values)


def test_gateway_send_builds_a_webhook_body_from_the_sources_pointers() -> None:
    import json

    from connectors.base import InboundRequest
    from connectors.webhooks.connector import WebhookConnector, WebhookSource
    from connectors.webhooks.platform import webhook_body
    from connectors.webhooks.signing import secret_key, signature_headers
    from gateway.core.config import WebhookSourceConfig

    config = WebhookSourceConfig(secret_env="X", customer_pointer="/data/customer/id", text_pointer="/data/body")
    body = webhook_body(config, "crm", "hello", "cus_7")
    assert json.loads(body) == {"type": "message.created", "data": {"customer": {"id": "cus_7"}, "body": "hello"}}
    key = secret_key("whsec_" + "a" * 32)
    source = WebhookSource("crm", (key,), config.customer_pointer, config.text_pointer)
    request = InboundRequest("crm", signature_headers(key, "msg_1", 1_700_000_000, body), body, now=1_700_000_000)
    [event] = WebhookConnector({"crm": source}).handle(request).events
    assert (event.conversation_key, event.text) == ("webhook:crm:cus_7", "hello")
