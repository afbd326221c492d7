"""The normalized envelopes that travel through RabbitMQ.

Every platform's webhook becomes one :class:`Event`; every answer becomes one
:class:`OutboundMessage`. Both are frozen and carry ``schema_version`` so that
consumers can refuse (dead-letter) what they do not understand instead of
guessing. Unknown platform fields are never dropped: the original payload
travels in ``raw``.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
#: A platform's name, checked against the platform list (connectors/registry.py) where events are made and
#: sent, not here: a new platform is not a change of the wire schema.
Platform = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


def new_id() -> str:
    """A sortable unique id (time-ordered like a UUIDv7, hex)."""
    ms = time.time_ns() // 1_000_000
    return f"{ms:012x}{os.urandom(10).hex()}"


class EventKind(StrEnum):
    MESSAGE = "message"
    MENTION = "mention"
    COMMAND = "command"
    ACTION = "action"
    EDIT = "edit"
    DELETE = "delete"
    REACTION = "reaction"
    #: The user opened or moved around the app's assistant/agent surface (Slack ``assistant_thread_started``,
    #: ``assistant_thread_context_changed``, ``app_context_changed``, ``app_home_opened`` on the Messages
    #: tab): no text; a turn only where the route has ``session_events = true``.
    SESSION = "session"
    OTHER = "other"


#: Kinds that start an agent turn. Edits, deletes and platform noise never do.
CONVERSATIONAL = frozenset(
    {EventKind.MESSAGE, EventKind.MENTION, EventKind.COMMAND, EventKind.ACTION, EventKind.SESSION}
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Sender(_Frozen):
    id: str
    name: str | None = None
    is_bot: bool = False


class ReplyAddress(_Frozen):
    """Everything an outbound tool needs to answer in the right place.

    - Slack: ``bot`` is the team id, ``channel`` the channel id, ``thread`` the
      thread root ``ts``, ``message`` the event's own ``ts`` (for reactions).
    - Telegram: ``bot`` is the configured bot name, ``channel`` the chat id,
      ``thread`` the forum topic's ``message_thread_id`` (only for real topics),
      ``message`` the message id.
    - Webhook: ``bot`` is the source name, ``channel`` the customer id,
      ``reply_url`` where the signed callback goes.
    """

    platform: Platform
    bot: str
    channel: str
    thread: str | None = None
    message: str | None = None
    user: str | None = None
    reply_url: str | None = None
    response_url: str | None = None


class Event(_Frozen):
    schema_version: int = SCHEMA_VERSION
    id: str = Field(default_factory=new_id)
    platform: Platform
    delivery_id: str
    kind: EventKind
    conversation_key: str
    agent: str | None = None
    #: What happens to messages that arrive during a turn: one turn each (queue), folded (collect), or the
    #: running turn is cancelled and the new message runs next (interrupt).
    busy: Literal["queue", "collect", "interrupt"] = "queue"
    #: ``stop``: this event asks to stop the conversation's running turn (a route's stop word, Slack's
    #: Stop button); it starts no turn itself (its ``skip_reason`` is "stop").
    control: Literal["stop"] | None = None
    #: The route streams its answers (``stream = true`` in ``gateway.toml`` or ``GATEWAY_STREAM=1``).
    stream: bool = False
    #: The named session the route pins (gateway/core/sessions.py); None: the conversation's current one.
    session: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    sender: Sender | None = None
    text: str = ""
    reply_to: ReplyAddress
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    #: Why this event must not start a turn (bot author, own message, edit...). None = conversational.
    skip_reason: str | None = None
    #: Identity of the platform message (two deliveries of one message share it: Slack sends
    #: ``message`` and ``app_mention`` for one mention).
    message_ref: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)

    @property
    def triggers_turn(self) -> bool:
        return self.skip_reason is None and self.kind in CONVERSATIONAL


OutboundAction = Literal["reply", "react", "typing", "edit", "status", "prompts", "title", "done", "stream"]
#: Best effort, sent at once and never retried, paced or dead-lettered: what a platform cannot show is dropped
#: (a sender lists what it shows in ``ambient``). ``status``: "is thinking…" while the agent works;
#: ``prompts``/``title``: an assistant thread's suggested prompts and title; ``done``: the turn ended, clear
#: the status (Slack agent sessions go back to ``active``).
AMBIENT_ACTIONS = frozenset({"typing", "status", "prompts", "title", "done"})


class OutboundMessage(_Frozen):
    """One call to a platform, produced by a connector tool during a turn.

    ``id`` is derived from the inbound event and the tool call's position in the
    turn, so a redelivered turn produces the same ids and the sender can refuse
    to post twice.
    """

    schema_version: int = SCHEMA_VERSION
    id: str
    event_id: str
    conversation_key: str
    action: OutboundAction = "reply"
    to: ReplyAddress
    text: str = ""
    emoji: str | None = None
    target_message: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    #: ``stream`` only: the position of this snapshot in its stream (``text`` is everything written so far,
    #: not a delta) and whether it is the last one. Every snapshot of a stream shares its ``id``.
    seq: int = 0
    final: bool = False
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
