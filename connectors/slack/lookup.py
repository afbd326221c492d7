"""Has Slack shown this reply already? Every ``chat.postMessage`` of the gateway carries its outbound message id
in message metadata; a delivery that may have been posted before (consumers/outbound.py ``may_be_sent``) whose
``sent:`` marker is missing is looked up in its conversation before it is posted again.

Followed (docs.slack.dev, checked 2026-12): "Using message metadata" (``metadata`` is
``{"event_type", "event_payload"}``; an ``event_type`` may hold letters, digits, underscores and hyphens, an invalid
one is dropped with an ``invalid_metadata_schema`` warning; no size limit is documented there, ours is one id),
the ``metadata`` argument of ``chat.postMessage``, and ``conversations.replies`` / ``conversations.history``
(``include_all_metadata``: without it their messages carry no metadata; ``oldest`` is exclusive; ``limit`` and
cursor pagination; the conversation type's ``*:history`` scope, in ``SLACK_SCOPES``' default). As slack_sdk 3.48
sends them: ``chat_postMessage(metadata=...)`` in the JSON body, the two reads as GETs with
``include_all_metadata=1``.

Limits of the lookup: a reply in a thread is searched from the inbound message on (``to.message``, else the
thread root), oldest first; a message outside a thread in the channel's newest :data:`PAGES` pages since
:data:`LOOKBACK` seconds before the delivery's message was made (a re-run turn makes its messages anew, so one
re-run later than that is not found). The reads are rate-limited per app (Tier 3; for a commercially distributed
app outside the Marketplace 1 a minute and 15 messages a page, since 2025-05 for new installs): a 429 is raised
as RateLimited for the outbound worker to wait out.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from gateway.core.events import OutboundMessage

#: The metadata ``event_type`` of the gateway's messages.
EVENT_TYPE = "gateway_outbound"
#: Messages asked for per page, and pages read at most.
PAGE = 200
PAGES = 3
#: Seconds before its message was made that a message outside a thread is searched from.
LOOKBACK = 600.0


def metadata_for(message_id: str, **extra: str | int) -> dict[str, Any]:
    """The ``metadata`` argument of a post of outbound message ``message_id``."""
    return {"event_type": EVENT_TYPE, "event_payload": {"id": message_id, **extra}}


def carries(shown: dict[str, Any], message_id: str, **extra: str | int) -> bool:
    """``shown`` (a message as conversations.* return it) is the post of ``message_id`` (and ``extra``)."""
    meta = shown.get("metadata")
    if not isinstance(meta, dict) or meta.get("event_type") != EVENT_TYPE:
        return False
    payload = meta.get("event_payload")
    if not isinstance(payload, dict) or payload.get("id") != message_id:
        return False
    return all(payload.get(k) == v for k, v in extra.items())


def _ts(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def oldest_for(message: OutboundMessage) -> str:
    """Where the search starts: a reply cannot be older than what it answers."""
    to = message.to
    if to.thread:
        return to.message or to.thread
    bound = message.created_at.timestamp() - LOOKBACK
    inbound = _ts(to.message)
    return f"{max(bound, inbound) if inbound is not None else bound:.6f}"


async def find_post(client: AsyncWebClient, token: str | None, message: OutboundMessage) -> dict[str, Any] | None:
    """The ``ts`` and ``channel`` of the message Slack shows for ``message``, or None. Raises SlackApiError."""
    to = message.to
    cursor: str | None = None
    for _ in range(PAGES):
        args: dict[str, Any] = {
            "token": token,
            "channel": to.channel,
            "oldest": oldest_for(message),
            "include_all_metadata": True,
            "limit": PAGE,
        }
        if cursor:
            args["cursor"] = cursor
        if to.thread:
            resp = await client.conversations_replies(ts=to.thread, **args)
        else:
            resp = await client.conversations_history(**args)
        for shown in resp.get("messages") or []:
            if isinstance(shown, dict) and carries(shown, message.id):
                return {"ts": shown.get("ts"), "channel": to.channel, "found": True}
        cursor = (resp.get("response_metadata") or {}).get("next_cursor")
        if not (resp.get("has_more") and cursor):
            return None
    return None
