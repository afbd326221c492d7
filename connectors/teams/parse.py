"""Bot Framework activities from Teams into :class:`Event` s.

A ``message`` activity is a turn: its text without the ``<at>…</at>`` markup of the bot's own mention (Teams
delivers channel messages to a bot only when it is mentioned, and puts the mention in the text); a message
with no text but a ``value`` (an Adaptive Card's ``Action.Submit``) is an action whose text is that value as
JSON. ``messageReaction`` activities are reactions, and every other type (``conversationUpdate``, ``invoke``,
``typing``, ``installationUpdate``...) is published without starting a turn.

The reply address: ``bot`` is the tenant (``channelData.tenant.id``, else ``conversation.tenantId``),
``channel`` the conversation id as Teams sends it, with its reply chain (``19:…@thread.tacv2;messageid=…``),
so each reply chain of a channel is one conversation; ``message`` the activity id (replies go to it),
``user`` the sender's ``aadObjectId`` (else ``from.id``), ``reply_url`` the activity's ``serviceUrl`` (the
connector's regional endpoint, proved by the token's claim). Conversation key ``teams:{tenant}:{conversation}``.

Followed: Bot Framework Activity schema (activity types, ``serviceUrl``, ``conversation``, ``channelData``) and
Teams "Conversation basics" / "Channel and group chat conversations", checked 2026-12.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gateway.core.errors import MalformedPayload
from gateway.core.events import Event, EventKind, ReplyAddress, Sender
from gateway.core.routing import conversation_key

_MENTION = re.compile(r"<at\b[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _without_bot_mention(text: str, bot_name: str | None) -> str:
    def drop(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        return "" if bot_name is None or name == bot_name else name

    return re.sub(r"\s+", " ", _MENTION.sub(drop, text)).strip()


def _kind(activity: dict[str, Any]) -> tuple[EventKind, str, str | None]:
    kind = _str(activity.get("type")) or "unknown"
    if kind == "message":
        bot_name = _str(_obj(activity.get("recipient")).get("name"))
        text = _without_bot_mention(_str(activity.get("text")) or "", bot_name)
        if text:
            return EventKind.MESSAGE, text, None
        value = activity.get("value")
        if isinstance(value, dict) and value:
            return EventKind.ACTION, json.dumps(value, ensure_ascii=False)[:4000], None
        return EventKind.MESSAGE, "", "no text"
    if kind == "messageReaction":
        return EventKind.REACTION, "", "reaction"
    return EventKind.OTHER, "", "unsupported activity"


def event_from_activity(activity: dict[str, Any]) -> Event:
    activity_id = _str(activity.get("id"))
    conversation = _obj(activity.get("conversation"))
    conversation_id = _str(conversation.get("id"))
    service_url = _str(activity.get("serviceUrl"))
    if activity_id is None or conversation_id is None or service_url is None:
        raise MalformedPayload("not a Bot Framework activity: no id, conversation.id or serviceUrl", platform="teams")
    tenant = _str(_obj(_obj(activity.get("channelData")).get("tenant")).get("id")) or _str(conversation.get("tenantId"))
    sender = _obj(activity.get("from"))
    user = _str(sender.get("aadObjectId")) or _str(sender.get("id"))
    address = ReplyAddress(
        platform="teams",
        bot=tenant or "-",
        channel=conversation_id,
        message=activity_id,
        user=user,
        reply_url=service_url,
    )
    kind, text, skip = _kind(activity)
    is_bot = sender.get("role") == "bot"
    if is_bot and skip is None:
        skip = "bot message"
    return Event(
        platform="teams",
        delivery_id=activity_id,
        kind=kind,
        conversation_key=conversation_key(address),
        sender=Sender(id=user, name=_str(sender.get("name")), is_bot=is_bot) if user else None,
        text=text,
        reply_to=address,
        skip_reason=skip,
        message_ref=f"teams:{address.bot}:{conversation_id}:{activity_id}",
        raw=activity,
    )
