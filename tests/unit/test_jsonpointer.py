"""RFC 6901 JSON pointers (connectors/webhooks/jsonpointer.py), with the RFC's own example document."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.webhooks.jsonpointer import resolve

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
