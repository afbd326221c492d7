"""What an agent sees: the event, its conversation, history, memory and connector tools.

Replies are collected during the turn and published (confirmed) when the
turn succeeds, so a failing turn never leaves a half-answer behind; the
dispatcher retries the whole turn. Each outbound message's id is derived from
the inbound message and its position in the turn, so a redelivered or
replayed turn produces the same ids and the sender posts nothing twice.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from agents.memory import Memory
from gateway.core.events import Event, OutboundMessage
from gateway.core.store.base import Store


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # "user" | "assistant"
    text: str
    event_id: str
    sender: str | None = None

    def to_json(self) -> str:
        return orjson.dumps(
            {"role": self.role, "text": self.text, "event_id": self.event_id, "sender": self.sender}
        ).decode()

    @classmethod
    def from_json(cls, raw: str) -> Turn:
        d = json.loads(raw)
        return cls(role=d["role"], text=d["text"], event_id=d["event_id"], sender=d.get("sender"))


def history_key(agent: str, conversation_key: str) -> str:
    return f"hist:{agent}:{conversation_key}"


@dataclass
class SessionContext:
    """Per warm instance: lives from ``on_session_enter`` to ``on_session_leave``."""

    agent: str
    conversation_key: str
    store: Store
    state: dict[str, Any] = field(default_factory=dict)
    #: Seconds the memory lives after its last write (``GATEWAY_MEMORY_TTL``); None: forever.
    memory_ttl: float | None = None

    @property
    def memory(self) -> Memory:
        return Memory(self.store, self.agent, self.conversation_key, ttl=self.memory_ttl)

    async def history(self, n: int = 50) -> list[Turn]:
        return [Turn.from_json(r) for r in await self.store.tail(history_key(self.agent, self.conversation_key), n)]


class TurnContext(SessionContext):
    """Per turn. ``events`` holds more than one event when the route's busy policy is ``collect``."""

    def __init__(
        self,
        session: SessionContext,
        events: list[Event],
        *,
        history_window: int,
        send_now: Callable[[OutboundMessage], Awaitable[None]],
    ) -> None:
        super().__init__(session.agent, session.conversation_key, session.store, session.state, session.memory_ttl)
        self.events = events
        self.event = events[-1]
        self.history_window = history_window
        self.outbox: list[OutboundMessage] = []
        self._send_now = send_now
        self._seq = 0

    @functools.cached_property
    def log(self) -> Any:
        """A structlog logger bound to this turn's agent, conversation and event."""
        return structlog.get_logger("agent").bind(
            agent=self.agent, conversation_key=self.conversation_key, event_id=self.event.id
        )

    async def history(self, n: int | None = None) -> list[Turn]:
        """The last ``n`` turns before this one (default: the window, 50), oldest first."""
        return await super().history(self.history_window if n is None else n)

    def _next_id(self) -> str:
        self._seq += 1
        base = self.event.message_ref or self.event.id
        return f"{base}:{self.agent}:{self._seq}"

    def _message(self, action: str, **fields: Any) -> OutboundMessage:
        return OutboundMessage(
            id=self._next_id(),
            event_id=self.event.id,
            conversation_key=self.conversation_key,
            action=action,
            to=self.event.reply_to,
            **fields,
        )

    async def reply(self, text: str, **extra: Any) -> str:
        """Answer in the conversation (Slack thread, Telegram chat/topic, webhook callback)."""
        if not text.strip():
            raise ValueError("reply text is empty")
        message = self._message("reply", text=text, extra=extra)
        self.outbox.append(message)
        return message.id

    async def react(self, emoji: str) -> str:
        """React to the inbound message (Slack reaction name like ``eyes``; Telegram emoji like 👀)."""
        message = self._message("react", emoji=emoji, target_message=self.event.reply_to.message)
        self.outbox.append(message)
        return message.id

    async def typing(self) -> None:
        """Show that the agent is working (Telegram chat action). Sent at once, best effort."""
        await self._send_now(self._message("typing"))

    @property
    def replies(self) -> list[str]:
        return [m.text for m in self.outbox if m.action == "reply"]
