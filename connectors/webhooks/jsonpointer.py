"""RFC 6901 JSON pointers, read-only (``/customer/id``, ``/items/0/text``)."""

from __future__ import annotations

import re
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
