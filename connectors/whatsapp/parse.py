"""Meta's ``whatsapp_business_account`` notifications into :class:`Event` s.

One POST carries ``entry[].changes[].value``; a value carries ``messages`` (what users sent) and/or
``statuses`` (what happened to what we sent), each a list: every item becomes one event.

- ``text``: its ``body``. ``interactive`` button and list replies (``button_reply``/``list_reply``) and a
  template's quick-reply ``button``: an ``action`` event whose text is the title the user tapped (the
  reply's ``id``/``payload`` stays in ``raw``). ``image``, ``document``, ``audio``, ``video``, ``sticker``: the
  caption, or ``[image]`` and so on; the media id (``raw["messages"][0]["image"]["id"]``) is a reference to
  fetch through the Graph API, never downloaded here. Reactions and unknown types do not start a turn.
- ``statuses`` (sent, delivered, read, failed) are events that never start a turn (``skip_reason``).

``raw`` is the notification's ``value`` narrowed to the one item (same shape as Meta's), so an agent finds
the fields where Meta's docs put them. The reply address: ``bot`` is the business phone number id
(``metadata.phone_number_id``, the id replies are posted under), ``channel`` and ``user`` the user's
``wa_id``, ``message`` the ``wamid``. Conversation key ``whatsapp:{phone number id}:{wa_id}``.

Followed: WhatsApp Cloud API webhooks reference, "messages" (text, interactive, button, image, document,
audio) and "statuses", Graph API v25.0, checked 2026-12.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.core.errors import MalformedPayload
from gateway.core.events import Event, EventKind, ReplyAddress, Sender
from gateway.core.routing import conversation_key

MEDIA = ("image", "document", "audio", "video", "sticker")


@dataclass(frozen=True)
class Inbound:
    """A user message, for the customer-service window: who wrote to which number, when."""

    number: str
    user: str
    at: float


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _timestamp(value: object, now: float) -> float:
    try:
        return min(float(str(value)), now)
    except ValueError:
        return now


def _text_of(message: dict[str, Any]) -> tuple[EventKind, str, str | None]:
    """(kind, text, skip reason) of one user message."""
    kind = _str(message.get("type")) or "unknown"
    if kind == "text":
        return EventKind.MESSAGE, _str(_obj(message.get("text")).get("body")) or "", None
    if kind == "interactive":
        interactive = _obj(message.get("interactive"))
        reply = _obj(interactive.get("button_reply") or interactive.get("list_reply"))
        if reply:
            return EventKind.ACTION, _str(reply.get("title")) or _str(reply.get("id")) or "", None
        return EventKind.OTHER, "", "unsupported interactive reply"
    if kind == "button":
        button = _obj(message.get("button"))
        return EventKind.ACTION, _str(button.get("text")) or _str(button.get("payload")) or "", None
    if kind in MEDIA:
        caption = _str(_obj(message.get(kind)).get("caption"))
        return EventKind.MESSAGE, caption or f"[{kind}]", None
    if kind == "reaction":
        return EventKind.REACTION, _str(_obj(message.get("reaction")).get("emoji")) or "", "reaction"
    return EventKind.OTHER, "", "unsupported message"


def _value_with(
    value: dict[str, Any], key: str, item: dict[str, Any], contact: dict[str, Any] | None
) -> dict[str, Any]:
    narrowed: dict[str, Any] = {"messaging_product": value.get("messaging_product"), "metadata": value.get("metadata")}
    if contact is not None:
        narrowed["contacts"] = [contact]
    narrowed[key] = [item]
    return narrowed


def _message_event(number: str, value: dict[str, Any], message: dict[str, Any], contacts: dict[str, Any]) -> Event:
    wamid = _str(message.get("id"))
    user = _str(message.get("from")) or _str(message.get("from_user_id"))
    if wamid is None or user is None:
        raise MalformedPayload("a WhatsApp message has no id or from", platform="whatsapp")
    contact = contacts.get(user)
    kind, text, skip = _text_of(message)
    address = ReplyAddress(platform="whatsapp", bot=number, channel=user, message=wamid, user=user)
    name = _str(_obj(_obj(contact).get("profile")).get("name"))
    return Event(
        platform="whatsapp",
        delivery_id=wamid,
        kind=kind,
        conversation_key=conversation_key(address),
        sender=Sender(id=user, name=name),
        text=text,
        reply_to=address,
        skip_reason=skip,
        message_ref=f"whatsapp:{number}:{wamid}",
        raw=_value_with(value, "messages", message, contact),
    )


def _status_event(number: str, value: dict[str, Any], status: dict[str, Any]) -> Event:
    wamid = _str(status.get("id"))
    recipient = _str(status.get("recipient_id")) or _str(status.get("recipient_user_id"))
    state = _str(status.get("status")) or "unknown"
    if wamid is None or recipient is None:
        raise MalformedPayload("a WhatsApp status has no id or recipient_id", platform="whatsapp")
    address = ReplyAddress(platform="whatsapp", bot=number, channel=recipient, user=recipient)
    return Event(
        platform="whatsapp",
        # One message has several statuses (sent, delivered, read): each is its own delivery.
        delivery_id=f"{wamid}:{state[:16]}",
        kind=EventKind.OTHER,
        conversation_key=conversation_key(address),
        reply_to=address,
        skip_reason="delivery status",
        raw=_value_with(value, "statuses", status, None),
    )


def parse(data: dict[str, Any], now: float) -> tuple[list[Event], list[Inbound]]:
    """Every message and status of one notification, and the user messages that open the 24-hour window."""
    if data.get("object") != "whatsapp_business_account" or not isinstance(data.get("entry"), list):
        raise MalformedPayload("not a whatsapp_business_account notification", platform="whatsapp")
    events: list[Event] = []
    inbound: list[Inbound] = []
    for entry in _list(data.get("entry")):
        for change in _list(_obj(entry).get("changes")):
            value = _obj(_obj(change).get("value"))
            number = _str(_obj(value.get("metadata")).get("phone_number_id"))
            if number is None:
                continue  # account, template and quality updates carry no phone number: nothing to answer
            contacts = {
                str(c.get("wa_id") or c.get("user_id")): c for c in map(_obj, _list(value.get("contacts"))) if c
            }
            for message in map(_obj, _list(value.get("messages"))):
                event = _message_event(number, value, message, contacts)
                events.append(event)
                inbound.append(Inbound(number, event.reply_to.channel, _timestamp(message.get("timestamp"), now)))
            for status in map(_obj, _list(value.get("statuses"))):
                events.append(_status_event(number, value, status))
    return events, inbound
