"""Named sessions of a conversation and their state, as kept in Redis.

A conversation key has one or more named sessions (``default`` unless a route says ``session = "ops"``, or
the agent switched with ``ctx.switch_session("ops")``). Each session has its own history and memory
(``hist:{agent}:@{session}:{KEY}``; the ``default`` session keeps the plain ``hist:{agent}:{KEY}``) and its
own state: a private part only the agent sees and a public part the client may read
(``GET /v1/conversations/{KEY}/state``). Everything about a conversation that is not a list lives in one
hash, ``conv:{KEY}``, read in one command at the start of a turn:

    active          the session the agent switched to (a route's ``session`` takes precedence)
    state:{name}    {"private": {...}, "public": {...}} of session ``name``
    handoff         the record of a handoff to a person, while there is one (gateway/core/handoff.py)
"""

from __future__ import annotations

import json
import re
from typing import Any

from gateway.core.store.base import Store

DEFAULT = "default"
ACTIVE = "active"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def check_name(name: str) -> str:
    """``name`` when it is a session name (lowercase letters, digits, ``_``, ``-``; at most 32)."""
    if not NAME.match(name):
        raise ValueError(f"session name {name!r}: lowercase letters, digits, '_' and '-', at most 32, please")
    return name


def scoped(conversation_key: str, session: str) -> str:
    """The key a session's history and memory are stored under. A conversation key starts with its platform's
    name (a letter), so ``@{session}:`` in front can never collide with another conversation."""
    return conversation_key if session == DEFAULT else f"@{session}:{conversation_key}"


def record_key(conversation_key: str) -> str:
    return f"conv:{conversation_key}"


def state_field(session: str) -> str:
    return f"state:{session}"


def parse_state(raw: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(private, public) from a stored ``state:{name}`` field; empty for none or a damaged one."""
    if not raw:
        return {}, {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}, {}
    if not isinstance(data, dict):
        return {}, {}
    private, public = data.get("private"), data.get("public")
    return (private if isinstance(private, dict) else {}, public if isinstance(public, dict) else {})


def dump_state(private: dict[str, Any], public: dict[str, Any]) -> str:
    """The stored form; raises TypeError/ValueError for a value JSON cannot hold."""
    return json.dumps({"private": private, "public": public}, sort_keys=True, allow_nan=False)


async def public_state(store: Store, conversation_key: str, session: str = DEFAULT) -> dict[str, Any]:
    """What a client may read of a session's state: its public part only."""
    return parse_state(await store.hget(record_key(conversation_key), state_field(session)))[1]
