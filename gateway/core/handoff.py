"""Human handoff: a conversation in ``human`` state, and the notice that tells a person to take it.

While a conversation key is handed off, its consumer still takes its events in order, keeps them in the
history (marked ``handoff``) and acknowledges them, but no agent runs: no model request, no reply. The
state lives in Redis under the namespace: the field ``handoff`` of the conversation's hash (``conv:{KEY}``,
gateway/core/sessions.py, read with the session's state in one HMGET at the start of every turn) and one
index hash (``handoffs``: KEY -> the same record) that ``gateway handoff --list`` and ``gateway status`` read.
A handoff lasts until it is released, or until the conversation has been idle for its retention
(``GATEWAY_HISTORY_TTL``: each message kept for a person renews it, like the history).

An agent hands off with its ``handoff`` tool (``Agent(..., handoff=True)``) or ``ctx.handoff(reason)``; an
operator with ``gateway handoff KEY``; ``gateway handoff KEY --release`` gives the conversation back, and its
next event goes to the agent again.

The notice goes through the outbound queue like any reply (rate-limited, and sent once: its id is fixed
for one handoff), to ``[handoff] slack_channel`` and/or a signed callback to ``[handoff] webhook_url``.

On release the user is told too, in their own conversation (``[handoff] release_text``; "" turns it off):
one message to the reply address of the conversation's latest event, kept in the field ``handoff_to`` of
``conv:{KEY}`` (written by the turn that handed off and by each event kept for a person; an operator's
handoff of a conversation nobody wrote in since has no address yet, and so no such message). Its id is
``{notice_id}:released:conversation``: a release that runs twice tells the user once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError

from gateway.core.config import HandoffConfig
from gateway.core.events import OutboundMessage, ReplyAddress
from gateway.core.sessions import record_key
from gateway.core.store.base import Store

INDEX = "handoffs"
#: The field of ``conv:{KEY}`` that holds the record.
FIELD = "handoff"
#: The field of ``conv:{KEY}`` that holds the reply address of the latest event while handed off.
TO_FIELD = "handoff_to"
#: The webhook "source" name that signs handoff callbacks (a real source name cannot start with "@").
WEBHOOK_SIGNER = "@handoff"


@dataclass(frozen=True, slots=True)
class Handoff:
    """One conversation in ``human`` state."""

    key: str
    reason: str
    #: ``agent:NAME`` when an agent's tool asked, ``operator`` for ``gateway handoff KEY``.
    by: str
    since: float
    #: Where the conversation is answered: the event that handed off, or the latest one kept for a person.
    #: None for a record written before the gateway kept it, or an operator's handoff nobody wrote in since.
    reply_to: ReplyAddress | None = None

    def to_json(self) -> str:
        d = {k: v for k, v in asdict(self).items() if k != "reply_to"}
        if self.reply_to is not None:
            d["reply_to"] = self.reply_to.model_dump(mode="json", exclude_none=True)
        return json.dumps(d)

    @classmethod
    def from_json(cls, raw: str) -> Handoff:
        d = json.loads(raw)
        to = d.get("reply_to")
        return cls(
            key=str(d["key"]),
            reason=str(d.get("reason", "")),
            by=str(d.get("by", "")),
            since=float(d["since"]),
            reply_to=ReplyAddress.model_validate(to) if isinstance(to, dict) else None,
        )

    @property
    def notice_id(self) -> str:
        """The outbound id of this handoff's notice: the same however often the turn that made it runs."""
        return f"handoff:{self.key}:{int(self.since * 1000)}"


async def current(store: Store, conversation_key: str) -> Handoff | None:
    raw = await store.hget(record_key(conversation_key), FIELD)
    return None if raw is None else Handoff.from_json(raw)


async def hand_off(
    store: Store,
    conversation_key: str,
    *,
    reason: str,
    by: str,
    ttl: float | None = None,
    reply_to: ReplyAddress | None = None,
) -> tuple[Handoff, bool]:
    """Put the conversation in ``human`` state; (the record, whether it was new). A conversation already
    handed off keeps its first record (and so its notice id: a retried turn notifies once). ``ttl``: the
    conversation's retention (``GATEWAY_HISTORY_TTL``), renewed here. ``reply_to``: the address of the
    event that handed off (None for an operator's ``gateway handoff KEY``)."""
    record = Handoff(conversation_key, reason, by, time.time(), reply_to)
    existing = await store.hclaim(record_key(conversation_key), FIELD, record.to_json())
    if existing is not None:
        record = Handoff.from_json(existing)
    raw = record.to_json()
    writes: list[Awaitable[None]] = [
        store.hput(record_key(conversation_key), FIELD, raw, ttl=ttl),
        store.hput(INDEX, conversation_key, raw),
    ]
    if reply_to is not None:
        writes.append(seen(store, conversation_key, reply_to, ttl=ttl))
    await asyncio.gather(*writes)
    return record, existing is None


def seen(store: Store, conversation_key: str, address: ReplyAddress, *, ttl: float | None = None) -> Awaitable[None]:
    """Keep ``address`` (an event's ``reply_to``) as where the conversation's release notice goes."""
    return store.hput(record_key(conversation_key), TO_FIELD, address.model_dump_json(exclude_none=True), ttl=ttl)


async def release(store: Store, conversation_key: str) -> Handoff | None:
    """Give the conversation back to its agent; the record it had (its ``reply_to`` the latest address kept
    for it), None when it was not handed off."""
    conv = record_key(conversation_key)
    raw, to = await store.hmget(conv, [FIELD, TO_FIELD])
    await asyncio.gather(store.hdel(conv, FIELD), store.hdel(conv, TO_FIELD), store.hdel(INDEX, conversation_key))
    if raw is None:
        return None
    record = Handoff.from_json(raw)
    if to is not None:
        with contextlib.suppress(ValidationError):
            record = dataclasses.replace(record, reply_to=ReplyAddress.model_validate_json(to))
    return record


async def listed(store: Store) -> list[Handoff]:
    """Every conversation in ``human`` state, oldest handoff first."""
    records = [Handoff.from_json(v) for v in (await store.hall(INDEX)).values()]
    return sorted(records, key=lambda r: r.since)


def slack_link(conversation_key: str) -> str | None:
    """A link into Slack for a Slack conversation key (``slack:{team}:{channel}[:...]``): Slack's documented
    ``app_redirect`` form (https://api.slack.com/docs/deep-linking), which opens the channel."""
    parts = conversation_key.split(":")
    if len(parts) < 3 or parts[0] != "slack":
        return None
    return "https://slack.com/app_redirect?" + urlencode({"team": parts[1], "channel": parts[2]})


def notice_text(record: Handoff, *, released: bool = False) -> str:
    key = record.key
    if released:
        return f"Conversation `{key}` is back with its agent (released by an operator)."
    lines = [f"A person is needed in conversation `{key}` (handed off by {record.by}): {record.reason or '-'}"]
    parts = key.split(":")
    link = slack_link(key)
    if link is not None:
        thread = f", thread {parts[3]}" if len(parts) > 3 else ""
        lines.append(f"Open it in Slack: {link}{thread}")
    lines.append(f"Read it: `gateway history {key}`. Give it back: `gateway handoff {key} --release`.")
    return "\n".join(lines)


def notices(config: HandoffConfig, record: Handoff, *, event_id: str, released: bool = False) -> list[OutboundMessage]:
    """The outbound messages that tell people about ``record``: one per configured target. Their
    ``conversation_key`` is the target's (all notices to one place queue behind each other); the handed-off
    conversation's key is in the text and in the callback's ``conversation_key``."""
    suffix = ":released" if released else ""
    text = notice_text(record, released=released)
    detail: dict[str, Any] = {
        "conversation_key": record.key,
        "state": "agent" if released else "human",
        "reason": record.reason,
        "by": record.by,
        "since": record.since,
        "link": slack_link(record.key),
        "history": f"gateway history {record.key}",
    }
    out = []
    if config.slack_channel:
        team = config.slack_team or (record.key.split(":")[1] if record.key.startswith("slack:") else "")
        out.append(
            OutboundMessage(
                id=f"{record.notice_id}{suffix}:slack",
                event_id=event_id,
                # Every notice to one channel on one partition, so its owner keeps the channel's rate limit
                # (the per-chat buckets are kept in the process that owns the chat's partition).
                conversation_key=f"handoff:slack:{team}:{config.slack_channel}",
                to=ReplyAddress(platform="slack", bot=team, channel=config.slack_channel),
                text=text,
            )
        )
    if config.webhook_url:
        out.append(
            OutboundMessage(
                id=f"{record.notice_id}{suffix}:webhook",
                event_id=event_id,
                conversation_key="handoff:webhook",
                to=ReplyAddress(
                    platform="webhook", bot=WEBHOOK_SIGNER, channel=record.key, reply_url=config.webhook_url
                ),
                text=text,
                extra={"handoff": detail},
            )
        )
    if released and config.release_text and record.reply_to is not None:
        out.append(
            OutboundMessage(
                id=f"{record.notice_id}{suffix}:conversation",
                event_id=event_id,
                # The conversation's own key: its partition, behind the conversation's other replies.
                conversation_key=record.key,
                to=record.reply_to,
                text=config.release_text,
            )
        )
    return out
