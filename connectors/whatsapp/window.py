"""WhatsApp's 24-hour customer service window, kept in the store.

A business may answer a user with free-form messages only within 24 hours of that user's last message;
after that only a template message goes out (Meta's error 131047 "Re-engagement message"). Ingress records
the time of each user message (the message's own ``timestamp``, never later than its arrival) under
``whatsapp:window:{business number id}:{user}``; the sender reads it before a reply and dead-letters a reply
outside the window with a reason that says a template is needed, rather than letting Meta refuse it.

A later message moves the window forward, an older one (Meta delivers late retries) never moves it back. Two
messages of one user recorded at the same instant by two ingress workers may leave the earlier of the two
times: the window then closes that much early (seconds, on a 24-hour window).
"""

from __future__ import annotations

from gateway.core.store.base import Store

#: Seconds a user's last message keeps the window open.
WINDOW = 24 * 3600.0


def window_key(number: str, user: str) -> str:
    return f"whatsapp:window:{number}:{user}"


async def record(store: Store, number: str, user: str, at: float) -> None:
    key = window_key(number, user)
    known = await store.get(key)
    if known is not None and _seconds(known) >= at:
        return
    await store.put(key, f"{at:.3f}", WINDOW + 60)


async def last_inbound(store: Store, number: str, user: str) -> float | None:
    """When the user last wrote to this business number (Unix seconds), or None when not within the TTL."""
    value = await store.get(window_key(number, user))
    return None if value is None else _seconds(value)


def _seconds(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0
