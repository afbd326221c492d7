"""Limits on every event value that reaches AMQP headers, routing, Redis keys, metric labels or log fields.

A body may be up to ``GATEWAY_MAX_BODY_BYTES`` (1 MiB), but the conversation key travels in an AMQP
header, and a header frame larger than the broker's ``frame_max`` (128 KiB) makes RabbitMQ close the
*whole* connection (``frame_too_large``): every concurrent request on it would then fail. An event with
an over-long identifier is refused with a 400 for that request alone, before anything is published.

The checks are O(1) length tests on a handful of strings, on the ingest hot path.
"""

from __future__ import annotations

from gateway.core.errors import MalformedPayload
from gateway.core.events import Event

#: Longest conversation key (it is an AMQP header, a Redis key part and a log field).
MAX_KEY = 512
#: Longest platform identifier: delivery ids, team/channel/chat/thread/message/user ids, bot names.
MAX_ID = 256
#: Longest URL an event carries (webhook ``reply_url``, Slack ``response_url``).
MAX_URL = 2048
#: Longest sender display name (logged, shown to agents).
MAX_NAME = 512

#: Metric label values for events that start no turn; anything else is counted as "other".
SKIP_LABELS = frozenset(
    {
        "edit",
        "bot message",
        "no text",
        "reaction",
        "own message",
        "already handled",
        "unsupported update",
        "stop",
        "session event",
    }
)


class FieldTooLong(MalformedPayload):
    """400: a value the gateway must carry in headers, keys or logs is over its limit."""


def _check(name: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise FieldTooLong(f"{name} is {len(value)} characters; the limit is {limit}")


def check_event(event: Event) -> None:
    """Raise :class:`FieldTooLong` when a bounded value of ``event`` is over its limit."""
    _check("the conversation key", event.conversation_key, MAX_KEY)
    _check("the delivery id", event.delivery_id, MAX_ID)
    _check("the message reference", event.message_ref, MAX_ID)
    _check("the agent name", event.agent, MAX_ID)
    to = event.reply_to
    for name, value in (
        ("bot", to.bot),
        ("channel", to.channel),
        ("thread", to.thread),
        ("message id", to.message),
        ("user id", to.user),
    ):
        _check(f"the {name}", value, MAX_ID)
    _check("the reply URL", to.reply_url, MAX_URL)
    _check("the response URL", to.response_url, MAX_URL)
    if event.sender is not None:
        _check("the sender id", event.sender.id, MAX_ID)
        _check("the sender name", event.sender.name, MAX_NAME)


def skip_label(reason: str | None, kind: str) -> str:
    """A metric label from a fixed set for an event that starts no turn."""
    value = reason or kind
    return value if value in SKIP_LABELS else "other"


def clip(value: str, limit: int = 64) -> str:
    """A value cut to ``limit`` characters, for log fields and error messages."""
    return value if len(value) <= limit else f"{value[:limit]}…({len(value)} chars)"
