"""Telegram updates into :class:`Event`, parsed with python-telegram-bot.

Forum topics: only ``is_topic_message`` marks a message that lives in a topic;
replies in ordinary groups also carry ``message_thread_id``, and sending to
thread 1 (General) fails, so the topic is kept only for real topic messages.
https://core.telegram.org/bots/api#message
"""

from __future__ import annotations

from typing import Any

from telegram import Message, Update, User

from gateway.core.errors import MalformedPayload
from gateway.core.events import Event, EventKind, ReplyAddress, Sender
from gateway.core.routing import conversation_key


def _topic(message: Message) -> str | None:
    if message.is_topic_message and message.message_thread_id and message.message_thread_id != 1:
        return str(message.message_thread_id)
    return None


def _sender(user: User | None) -> Sender | None:
    if user is None:
        return None
    return Sender(id=str(user.id), name=user.username or user.full_name, is_bot=user.is_bot)


def _message_kind(message: Message) -> EventKind:
    text = message.text or ""
    return EventKind.COMMAND if text.startswith("/") else EventKind.MESSAGE


def _from_message(bot: str, update: Update, message: Message, kind: EventKind, raw: dict[str, Any]) -> Event:
    address = ReplyAddress(
        platform="telegram",
        bot=bot,
        channel=str(message.chat.id),
        thread=_topic(message),
        message=str(message.message_id),
        user=str(message.from_user.id) if message.from_user else None,
    )
    sender = _sender(message.from_user)
    skip: str | None = None
    if kind in (EventKind.EDIT, EventKind.DELETE):
        skip = "edit"
    elif sender is not None and sender.is_bot:
        skip = "bot message"
    elif not (message.text or message.caption):
        skip = "no text"
    return Event(
        platform="telegram",
        delivery_id=str(update.update_id),
        kind=kind,
        conversation_key=conversation_key(address),
        sender=sender,
        text=message.text or message.caption or "",
        reply_to=address,
        skip_reason=skip,
        message_ref=f"telegram:{bot}:{message.chat.id}:{message.message_id}",
        raw=raw,
    )


def event_from_update(bot: str, data: dict[str, Any]) -> Event:
    try:
        update = Update.de_json(data, None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # The library's own message names Python types and internals: say what is wrong in our words.
        field = exc.args[0] if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str) else None
        detail = f" (field {field[:40]!r} is missing)" if field else " (a field has the wrong type)"
        raise MalformedPayload("not a Telegram Update" + detail, platform="telegram") from exc
    if update is None or not isinstance(data.get("update_id"), int):
        raise MalformedPayload("not a Telegram Update: no update_id", platform="telegram")
    if update.message is not None:
        return _from_message(bot, update, update.message, _message_kind(update.message), data)
    if update.channel_post is not None:
        return _from_message(bot, update, update.channel_post, _message_kind(update.channel_post), data)
    edited = update.edited_message or update.edited_channel_post
    if edited is not None:
        return _from_message(bot, update, edited, EventKind.EDIT, data)
    query = update.callback_query
    if query is not None and isinstance(query.message, Message):
        event = _from_message(bot, update, query.message, EventKind.ACTION, data)
        return event.model_copy(
            update={
                "sender": _sender(query.from_user),
                "text": query.data or "",
                "skip_reason": None,
                "message_ref": f"telegram:{bot}:callback:{query.id}",
            }
        )
    return _other(bot, update, data)


def _other(bot: str, update: Update, data: dict[str, Any]) -> Event:
    chat = update.effective_chat
    address = ReplyAddress(platform="telegram", bot=bot, channel=str(chat.id) if chat else "-")
    return Event(
        platform="telegram",
        delivery_id=str(update.update_id),
        kind=EventKind.OTHER,
        conversation_key=conversation_key(address),
        sender=_sender(update.effective_user),
        reply_to=address,
        # A fixed reason: the update's own type names are unbounded input (raw keeps them).
        skip_reason="unsupported update",
        raw=data,
    )
