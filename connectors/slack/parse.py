"""Slack payloads (Events API, interactivity, slash commands) into :class:`Event`.

Slack sends other apps' bot messages (``bot_id``), ``subtype: bot_message``,
``message_changed`` and ``message_deleted`` to the same ``message``
subscription; they are marked with ``skip_reason`` so no agent answers them.
https://api.slack.com/events/message#subtypes
"""

from __future__ import annotations

from typing import Any

from gateway.core.events import Event, EventKind, ReplyAddress, Sender
from gateway.core.routing import conversation_key

#: Message subtypes a person writes; every other subtype is platform noise.
_HUMAN_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "me_message"})


def _address(team: str, channel: str, thread: str | None, ts: str | None, user: str | None, **kw: Any) -> ReplyAddress:
    return ReplyAddress(platform="slack", bot=team, channel=channel, thread=thread, message=ts, user=user, **kw)


def _event(delivery_id: str, kind: EventKind, address: ReplyAddress, **fields: Any) -> Event:
    return Event(
        platform="slack",
        delivery_id=delivery_id,
        kind=kind,
        conversation_key=conversation_key(address),
        reply_to=address,
        **fields,
    )


def _message_kind(ev: dict[str, Any]) -> tuple[EventKind, str | None]:
    subtype = ev.get("subtype")
    if subtype == "message_changed":
        return EventKind.EDIT, "edit"
    if subtype == "message_deleted":
        return EventKind.DELETE, "delete"
    if ev.get("bot_id") or subtype == "bot_message":
        return EventKind.MESSAGE, "bot message"
    if subtype not in _HUMAN_SUBTYPES:
        return EventKind.OTHER, f"subtype {subtype}"
    return EventKind.MESSAGE, None


def _bot_user_ids(envelope: dict[str, Any]) -> set[str]:
    """The app's own bot user ids: its own messages must never start a turn."""
    auths = envelope.get("authorizations") or []
    return {str(a.get("user_id")) for a in auths if isinstance(a, dict) and a.get("is_bot")}


def _session_stopped(envelope: dict[str, Any], ev: dict[str, Any], team: str) -> Event:
    """The Stop button of an agent session: stop the thread's running turn (consumers/interrupts.py).
    https://docs.slack.dev/reference/events/agent_session_stopped: ``channel``, ``thread_ts``, ``user``,
    ``streaming_message_ts`` (the app's streams Slack already stopped), ``event_ts``."""
    channel = str(ev.get("channel") or "")
    thread = str(ev.get("thread_ts") or "") or None
    user = ev.get("user")
    return _event(
        str(envelope.get("event_id") or ""),
        EventKind.OTHER,
        _address(team, channel, thread, None, user),
        sender=Sender(id=str(user or "")),
        skip_reason="stop",
        control="stop",
        raw=envelope,
    )


#: Events of the assistant / agent surface: https://docs.slack.dev/reference/events/assistant_thread_started,
#: .../assistant_thread_context_changed, .../app_context_changed, .../app_home_opened (``tab``).
SESSION_EVENTS = frozenset(
    {"assistant_thread_started", "assistant_thread_context_changed", "app_context_changed", "app_home_opened"}
)


def _session(envelope: dict[str, Any], ev: dict[str, Any], team: str) -> Event:
    """The user opened the assistant thread or the Messages tab, or moved to another channel meanwhile.

    ``assistant_thread`` carries ``user_id``, ``channel_id`` (the DM), ``thread_ts`` and ``context``
    (what the user is looking at); ``app_home_opened`` has ``user``, ``channel`` and ``tab`` (only the
    ``messages`` tab is a conversation); ``app_context_changed`` has ``context.entities`` and, per the
    Node SDK's types, ``user`` and ``channel``. The agent reads the rest in ``event.raw``."""
    etype = str(ev.get("type"))
    thread: dict[str, Any] = ev.get("assistant_thread") or {}
    channel = str(thread.get("channel_id") or ev.get("channel") or "")
    user = thread.get("user_id") or ev.get("user")
    skip = "session event"
    if etype == "app_home_opened" and ev.get("tab") != "messages":
        skip = "event type app_home_opened"
    address = _address(team, channel, thread.get("thread_ts"), None, user)
    return _event(
        str(envelope.get("event_id") or ""),
        EventKind.SESSION,
        address,
        sender=Sender(id=str(user or "")),
        skip_reason=skip,
        raw=envelope,
    )


def event_from_callback(envelope: dict[str, Any]) -> Event:
    """An ``event_callback`` envelope into one event."""
    ev: dict[str, Any] = envelope.get("event") or {}
    team = str(envelope.get("team_id") or ev.get("team") or "")
    etype = ev.get("type")
    if etype == "agent_session_stopped":
        return _session_stopped(envelope, ev, team)
    if etype in SESSION_EVENTS:
        return _session(envelope, ev, team)
    inner = ev.get("message") if ev.get("subtype") == "message_changed" else ev
    inner = inner if isinstance(inner, dict) else ev
    channel = str(ev.get("channel") or ev.get("item", {}).get("channel") or "")
    ts = inner.get("ts")
    thread = inner.get("thread_ts") or ts
    skip: str | None
    if etype == "message":
        kind, skip = _message_kind(ev)
    elif etype == "app_mention":
        kind, skip = EventKind.MENTION, ("bot message" if ev.get("bot_id") else None)
    elif etype in ("reaction_added", "reaction_removed"):
        kind, skip = EventKind.REACTION, "reaction"
        ts = ev.get("item", {}).get("ts")
        thread = ts
    else:
        kind, skip = EventKind.OTHER, f"event type {etype}"
    user = inner.get("user") or ev.get("user")
    if skip is None and user and str(user) in _bot_user_ids(envelope):
        skip = "own message"
    address = _address(team, channel, thread, ts, user)
    return _event(
        str(envelope.get("event_id") or ""),
        kind,
        address,
        sender=Sender(id=str(user or inner.get("bot_id") or ""), is_bot=bool(inner.get("bot_id"))),
        text=str(inner.get("text") or ""),
        skip_reason=skip,
        message_ref=f"slack:{team}:{channel}:{ts}" if ts else None,
        raw=envelope,
    )


def event_from_command(form: dict[str, str]) -> Event:
    """A slash command (``application/x-www-form-urlencoded``) into one event."""
    team = form.get("team_id", "")
    address = _address(
        team,
        form.get("channel_id", ""),
        None,
        None,
        form.get("user_id"),
        response_url=form.get("response_url"),
    )
    command = form.get("command", "")
    text = form.get("text", "")
    return _event(
        form.get("trigger_id") or f"{team}:{command}:{form.get('user_id')}:{text}",
        EventKind.COMMAND,
        address,
        sender=Sender(id=form.get("user_id", ""), name=form.get("user_name")),
        text=f"{command} {text}".strip(),
        raw=dict(form),
    )


def _action_text(payload: dict[str, Any]) -> str:
    actions = payload.get("actions") or []
    if not actions:
        return str(payload.get("callback_id") or payload.get("type") or "")
    action = actions[0]
    for key in ("value", "selected_date", "selected_user", "selected_channel"):
        if action.get(key):
            return str(action[key])
    option = action.get("selected_option") or {}
    return str(option.get("value") or action.get("action_id") or "")


def event_from_interaction(payload: dict[str, Any]) -> Event:
    """An interactivity payload (``payload=`` JSON in a form) into one event."""
    team = str((payload.get("team") or {}).get("id") or payload.get("user", {}).get("team_id") or "")
    container = payload.get("container") or {}
    message = payload.get("message") or {}
    channel = str((payload.get("channel") or {}).get("id") or container.get("channel_id") or "")
    ts = message.get("ts") or container.get("message_ts")
    thread = message.get("thread_ts") or container.get("thread_ts") or ts
    user = payload.get("user") or {}
    address = _address(team, channel, thread, ts, user.get("id"), response_url=payload.get("response_url"))
    actions = payload.get("actions") or [{}]
    delivery = payload.get("trigger_id") or f"{team}:{user.get('id')}:{actions[0].get('action_ts')}"
    return _event(
        str(delivery),
        EventKind.ACTION,
        address,
        sender=Sender(id=str(user.get("id") or ""), name=user.get("username") or user.get("name")),
        text=_action_text(payload),
        raw=payload,
    )
