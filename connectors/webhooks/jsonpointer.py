"""RFC 6901 JSON pointers (``/customer/id``, ``/items/0/text``): read one, or build a document from several."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_MISSING = object()
_INDEX = re.compile(r"0|[1-9][0-9]*")


def resolve(document: Any, pointer: str) -> Any:
    """The value at ``pointer``, or None when any step is missing."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer must start with '/': {pointer!r}")
    current = document
    for token in pointer[1:].split("/"):
        current = _get(current, token.replace("~1", "/").replace("~0", "~"))
        if current is _MISSING:
            return None
    return current


def _get(node: Any, token: str) -> Any:
    if isinstance(node, dict):
        return node.get(token, _MISSING)
    if isinstance(node, list) and _INDEX.fullmatch(token) and int(token) < len(node):
        return node[int(token)]
    return _MISSING


def _tokens(pointer: str) -> list[str]:
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer must start with '/': {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def build(values: Mapping[str, Any]) -> dict[str, Any]:
    """The smallest document where each pointer resolves to its value (``gateway send webhook``'s sample).

    Array indices become lists (padded with None). Raises ValueError when one pointer runs through
    another's value (``/a`` and ``/a/b``), as no document could hold both.
    """
    root: dict[str, Any] = {}
    for pointer, value in values.items():
        tokens = _tokens(pointer)
        node: Any = root
        for i, token in enumerate(tokens):
            last = i == len(tokens) - 1
            fresh: Any = value if last else ([] if _INDEX.fullmatch(tokens[i + 1]) else {})
            node = _step(node, token, fresh, last, pointer)
    return root


def _step(node: Any, token: str, fresh: Any, last: bool, pointer: str) -> Any:
    """Go one token down from ``node``, placing ``fresh`` there when the place is empty."""
    if isinstance(node, list) and _INDEX.fullmatch(token):
        index = int(token)
        node.extend([None] * (index + 1 - len(node)))
        if node[index] is None:
            node[index] = fresh
            return fresh
        current = node[index]
    elif isinstance(node, dict):
        if token not in node:
            node[token] = fresh
            return fresh
        current = node[token]
    else:
        current = None
    if not last and isinstance(current, dict | list):
        return current
    raise ValueError(f"JSON pointer {pointer!r} overlaps another one")
