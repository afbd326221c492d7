"""A web conversation's transcript: what the page shows after a reload, and where a reconnect resumes.

A Redis list per conversation (the last ``KEEP`` entries), each entry one JSON object with a stable
``id`` (the inbound event's id for the visitor's own message, the outbound message's id for a reply).
Delivery to the browser is at-least-once: a client resumes "after id X" and de-duplicates by id.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from gateway.core.bus.base import Bus
from gateway.core.errors import PublishError
from gateway.core.store.base import Store

KEEP = 200
#: Seconds a transcript lives after its last entry, unless the caller says (GATEWAY_HISTORY_TTL; 0 or None: kept).
TTL = 30 * 24 * 3600.0


def transcript_key(conversation_key: str) -> str:
    return f"web:transcript:{conversation_key}"


def entry(entry_id: str, role: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"id": entry_id, "role": role, "text": text, "at": round(time.time(), 3), **extra}


async def append(
    store: Store, bus: Bus, conversation_key: str, item: dict[str, Any], *, ttl: float | None = TTL
) -> None:
    """Record ``item`` (the transcript expires ``ttl`` seconds after its last entry), then tell every serve
    process (the fanout exchange) that the conversation moved."""
    await store.push(transcript_key(conversation_key), [json.dumps(item, separators=(",", ":"))], KEEP, ttl=ttl or None)
    await announce(bus, conversation_key, {"type": "changed"})


async def announce(bus: Bus, conversation_key: str, note: dict[str, Any]) -> None:
    """A hint without state (``changed``, ``typing``): listeners re-read the transcript on ``changed``."""
    body = json.dumps({"key": conversation_key, **note}, separators=(",", ":")).encode()
    # No serve process listening (unroutable), or the broker away: the entry is in the transcript, and
    # listeners re-read it at their next heartbeat or reconnect.
    with contextlib.suppress(PublishError):
        await bus.publish(bus.topology.web_exchange, "", body)


#: Entries read first when resuming after a known id: a live listener is usually one or two behind.
RECENT = 16


async def read_after(store: Store, conversation_key: str, last_id: str | None) -> list[dict[str, Any]]:
    """Entries after ``last_id`` (all of them when it is unknown or None), oldest first.

    A listener woken by a hint is usually one entry behind: the newest ``RECENT`` raw entries are searched
    for ``last_id`` by its JSON text first, and only the entries after it are decoded. Only when it is not
    among them is the whole transcript read (a reconnect long after, or a trimmed id).
    """
    key = transcript_key(conversation_key)
    if last_id:
        marker = json.dumps({"id": last_id}, separators=(",", ":"))[:-1] + ","  # '{"id":"X",' starts an entry
        for window in (RECENT, KEEP):
            raws = await store.tail(key, window)
            for i in range(len(raws) - 1, -1, -1):
                if raws[i].startswith(marker):
                    return [json.loads(raw) for raw in raws[i + 1 :]]
            if len(raws) < window:
                break  # the whole transcript was read: the id is not in it
    return [json.loads(raw) for raw in await store.tail(key, KEEP)]
