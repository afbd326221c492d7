"""Discord payloads into :class:`Event` s: interactions (HTTP) and ``MESSAGE_CREATE`` dispatches (Gateway).

The reply address, for both: ``bot`` is the guild id, or ``@me`` outside a guild (a DM, a group DM: the same
word Discord's own links use, ``discord.com/channels/@me/{channel}``); ``channel`` the channel id, or for a
message in a thread the thread's parent channel, with ``thread`` the thread's id (a thread is a channel of
its own in Discord: replies go to it). So the conversation key is ``discord:{guild}:{channel}[:{thread}]``, and
``discord:@me:{dm channel}`` for a DM. ``message`` is the message id (replies reference it) or, for an
interaction, the interaction id; ``user`` the author's id. An interaction's address also carries
``response_url = "webhooks/{application id}/{interaction token}"``: its replies are the interaction's
follow-ups (the token is valid for 15 minutes), not channel messages.

Interactions: ``APPLICATION_COMMAND`` (2) is a ``command`` whose text is ``/name`` followed by its options'
values (subcommands by name), ``MESSAGE_COMPONENT`` (3) and ``MODAL_SUBMIT`` (5) are ``action`` s (the
component's ``custom_id`` and values; the modal's field values). ``PING`` (1) and autocomplete (4) carry no
event. Messages: the author's own (the bot's user id, from READY) are ``own message`` and other bots' and
webhooks' ``bot message``: published, never a turn. A guild message that mentions the bot is a ``mention``
(the ``<@id>`` removed from the text); other messages (DMs, guild messages read with the MESSAGE_CONTENT
intent) are ``message`` s. Message types other than DEFAULT (0) and REPLY (19) (joins, pins, boosts...) start
no turn.

Followed: Discord developer docs "Interactions: Receiving and Responding" (interaction object, types),
"Application Commands" (option types), "Gateway Events" (MESSAGE_CREATE), "Channel" (channel types) and
"Message" (message types), API v10, checked 2026-12.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.core.errors import MalformedPayload
from gateway.core.events import Event, EventKind, ReplyAddress, Sender
from gateway.core.routing import conversation_key

DM = "@me"
#: Channel types that are threads: announcement, public and private threads.
THREAD_TYPES = frozenset({10, 11, 12})
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
#: Option types that hold other options (SUB_COMMAND, SUB_COMMAND_GROUP).
_NESTING = frozenset({1, 2})
#: DEFAULT, REPLY, CHAT_INPUT_COMMAND (a slash command's own reply message is a bot's anyway).
_HUMAN_MESSAGE_TYPES = frozenset({0, 19})
_SNOWFLAKE = re.compile(r"^[0-9]{1,20}$")


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


def snowflake(value: object, what: str) -> str:
    text = _str(value)
    if text is None or not _SNOWFLAKE.match(text):
        raise MalformedPayload(f"{what} is not a Discord snowflake id", platform="discord")
    return text


def address(
    guild: str | None,
    channel: str,
    *,
    parent: str | None = None,
    message: str | None = None,
    user: str | None = None,
    response_url: str | None = None,
) -> ReplyAddress:
    """The reply address; ``parent`` set means ``channel`` is a thread of that channel."""
    return ReplyAddress(
        platform="discord",
        bot=guild or DM,
        channel=parent or channel,
        thread=channel if parent else None,
        message=message,
        user=user,
        response_url=response_url,
    )


def _option_words(options: object) -> list[str]:
    words: list[str] = []
    for option in options if isinstance(options, list) else []:
        option = _obj(option)
        if option.get("type") in _NESTING:
            words.append(str(option.get("name", "")))
            words.extend(_option_words(option.get("options")))
        elif "value" in option:
            words.append(str(option["value"]))
    return [w for w in words if w]


def _interaction_text(kind: int, data: dict[str, Any]) -> str:
    if kind == APPLICATION_COMMAND:
        return " ".join([f"/{data.get('name', '')}", *_option_words(data.get("options"))]).strip()
    if kind == MESSAGE_COMPONENT:
        values = data.get("values")
        values = values if isinstance(values, list) else []
        return " ".join([str(data.get("custom_id", "")), *(str(v) for v in values)]).strip()
    fields = []  # MODAL_SUBMIT: action rows of text inputs
    for row in data.get("components") or []:
        for component in _obj(row).get("components") or []:
            value = _obj(component).get("value")
            if isinstance(value, str) and value:
                fields.append(value)
    return " ".join([str(data.get("custom_id", "")), *fields]).strip()


def _interaction_where(interaction: dict[str, Any]) -> tuple[str | None, str, str | None]:
    channel = _obj(interaction.get("channel"))
    channel_id = snowflake(interaction.get("channel_id") or channel.get("id"), "channel_id")
    guild = interaction.get("guild_id")
    guild_id = snowflake(guild, "guild_id") if guild is not None else None
    parent = channel.get("parent_id") if channel.get("type") in THREAD_TYPES else None
    return guild_id, channel_id, (snowflake(parent, "channel.parent_id") if parent else None)


def event_from_interaction(interaction: dict[str, Any]) -> Event:
    """An interaction of type 2, 3 or 5 into one event (the caller answers PING and autocomplete itself)."""
    kind = interaction.get("type")
    if kind not in (APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT):
        raise MalformedPayload(f"interaction type {kind!r} carries no event", platform="discord")
    interaction_id = snowflake(interaction.get("id"), "id")
    application = snowflake(interaction.get("application_id"), "application_id")
    token = _str(interaction.get("token"))
    if token is None or len(token) > 512 or not token.isascii() or "/" in token:
        raise MalformedPayload("the interaction has no usable token", platform="discord")
    guild, channel, parent = _interaction_where(interaction)
    user = _obj(_obj(interaction.get("member")).get("user")) or _obj(interaction.get("user"))
    user_id = _str(user.get("id"))
    to = address(
        guild,
        channel,
        parent=parent,
        message=interaction_id,
        user=user_id,
        response_url=f"webhooks/{application}/{token}",
    )
    return Event(
        platform="discord",
        delivery_id=interaction_id,
        kind=EventKind.COMMAND if kind == APPLICATION_COMMAND else EventKind.ACTION,
        conversation_key=conversation_key(to),
        sender=_sender(user) if user_id else None,
        text=_interaction_text(kind, _obj(interaction.get("data")))[:4000],
        reply_to=to,
        skip_reason="bot message" if user.get("bot") else None,
        message_ref=f"discord:interaction:{interaction_id}",
        raw=_without_token(interaction),
    )


def _without_token(interaction: dict[str, Any]) -> dict[str, Any]:
    """The payload as kept in ``raw``: the token travels only in the reply address."""
    return {k: v for k, v in interaction.items() if k != "token"}


def _sender(user: dict[str, Any]) -> Sender:
    name = _str(user.get("global_name")) or _str(user.get("username"))
    return Sender(id=str(user["id"]), name=name, is_bot=bool(user.get("bot")))


def _mention_free(text: str, bot_id: str | None) -> tuple[str, bool]:
    if not bot_id:
        return text, False
    pattern = re.compile(rf"<@!?{re.escape(bot_id)}>")
    return re.sub(r"\s+", " ", pattern.sub("", text)).strip(), bool(pattern.search(text))


def _message_kind(message: dict[str, Any], bot_id: str | None) -> tuple[EventKind, str, str | None]:
    author = _obj(message.get("author"))
    text, mentioned = _mention_free(str(message.get("content") or ""), bot_id)
    if bot_id and _str(author.get("id")) == bot_id:
        return EventKind.MESSAGE, text, "own message"
    if author.get("bot") or message.get("webhook_id"):
        return EventKind.MESSAGE, text, "bot message"
    if message.get("type", 0) not in _HUMAN_MESSAGE_TYPES:
        return EventKind.OTHER, text, f"message type {message.get('type')}"
    return (EventKind.MENTION if mentioned else EventKind.MESSAGE), text, None if text else "no text"


def event_from_message(message: dict[str, Any], *, bot_id: str | None, parent: str | None = None) -> Event:
    """A ``MESSAGE_CREATE`` dispatch's ``d`` into one event; ``parent`` when its channel is a thread."""
    message_id = snowflake(message.get("id"), "message id")
    channel = snowflake(message.get("channel_id"), "channel_id")
    guild = message.get("guild_id")
    guild_id = snowflake(guild, "guild_id") if guild is not None else None
    author = _obj(message.get("author"))
    to = address(guild_id, channel, parent=parent, message=message_id, user=_str(author.get("id")))
    kind, text, skip = _message_kind(message, bot_id)
    return Event(
        platform="discord",
        delivery_id=message_id,
        kind=kind,
        conversation_key=conversation_key(to),
        sender=_sender(author) if _str(author.get("id")) else None,
        text=text[:4000],
        reply_to=to,
        skip_reason=skip,
        message_ref=f"discord:{to.bot}:{channel}:{message_id}",
        raw=message,
    )
