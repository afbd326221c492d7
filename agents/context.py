"""What an agent sees: the event, its conversation, history, memory and connector tools.

Replies are collected during the turn and published (confirmed) when the
turn succeeds, so a failing turn never leaves a half-answer behind; the
dispatcher retries the whole turn. A streamed reply (``ctx.stream()``,
agents/streaming.py) shows while it is written and is finished the same way. Each outbound message's id is derived from
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
from agents.streaming import ReplyStream
from agents.usage import Usage
from gateway.core.events import Event, OutboundMessage
from gateway.core.sessions import DEFAULT, check_name, dump_state, parse_state, scoped
from gateway.core.store.base import Store


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # "user" | "assistant"
    text: str
    event_id: str
    sender: str | None = None
    #: What the agent did for this answer (``{"name", "arguments", "result", "ok"}`` each), on the turn's
    #: first reply (or its last inbound message when it sent none); older records have none.
    tool_calls: tuple[dict[str, Any], ...] = ()
    #: Tokens the turn cost (``{"input_tokens", "output_tokens"}``), next to its tool calls.
    usage: dict[str, int] | None = None
    #: Unix time the turn was recorded.
    at: float | None = None
    #: Kept while the conversation was handed to a person (gateway/core/handoff.py): no agent saw it then.
    handoff: bool = False

    def to_json(self) -> str:
        d: dict[str, Any] = {"role": self.role, "text": self.text, "event_id": self.event_id, "sender": self.sender}
        if self.tool_calls:
            d["tool_calls"] = list(self.tool_calls)
        if self.usage is not None:
            d["usage"] = self.usage
        if self.at is not None:
            d["at"] = self.at
        if self.handoff:
            d["handoff"] = True
        return orjson.dumps(d).decode()

    @classmethod
    def from_json(cls, raw: str) -> Turn:
        d = json.loads(raw)
        calls = d.get("tool_calls")
        usage = d.get("usage")
        at = d.get("at")
        return cls(
            role=d["role"],
            text=d["text"],
            event_id=d["event_id"],
            sender=d.get("sender"),
            tool_calls=tuple(c for c in calls if isinstance(c, dict)) if isinstance(calls, list) else (),
            usage=dict(usage) if isinstance(usage, dict) else None,
            at=float(at) if isinstance(at, int | float) else None,
            handoff=d.get("handoff") is True,
        )


def history_key(agent: str, conversation_key: str, session: str = DEFAULT) -> str:
    return f"hist:{agent}:{scoped(conversation_key, session)}"


class State(dict[str, Any]):
    """A session's state, kept in Redis (gateway/core/sessions.py): the dict itself is private to the agent;
    ``public`` is what the client may read (``GET /v1/conversations/{KEY}/state``). Both hold JSON values.
    Changes are saved when the turn succeeds (a failed turn's changes are dropped with it)."""

    def __init__(self, private: dict[str, Any] | None = None, public: dict[str, Any] | None = None) -> None:
        super().__init__(private or {})
        self.public: dict[str, Any] = dict(public or {})

    @classmethod
    def parse(cls, raw: str | None) -> State:
        return cls(*parse_state(raw))

    def dump(self) -> str:
        try:
            return dump_state(dict(self), self.public)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"ctx.state holds a value JSON cannot keep: {exc}") from exc


@dataclass
class SessionContext:
    """Per warm instance: lives from ``on_session_enter`` to ``on_session_leave``."""

    agent: str
    conversation_key: str
    store: Store
    state: State = field(default_factory=State)
    #: Seconds the memory lives after its last write (``GATEWAY_MEMORY_TTL``); None: forever.
    memory_ttl: float | None = None
    #: The named session whose history, memory and state this context reads and writes.
    session_name: str = DEFAULT

    @property
    def memory(self) -> Memory:
        return Memory(self.store, self.agent, self.conversation_key, ttl=self.memory_ttl, session=self.session_name)

    async def history(self, n: int = 50) -> list[Turn]:
        key = history_key(self.agent, self.conversation_key, self.session_name)
        return [Turn.from_json(r) for r in await self.store.tail(key, n)]

    def session(self, name: str) -> SessionContext:
        """Another named session of this conversation (its ``history()`` and ``memory``), without switching."""
        return SessionContext(
            self.agent, self.conversation_key, self.store, memory_ttl=self.memory_ttl, session_name=check_name(name)
        )


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
        super().__init__(
            session.agent,
            session.conversation_key,
            session.store,
            session.state,
            session.memory_ttl,
            session.session_name,
        )
        self.events = events
        self.event = events[-1]
        self.history_window = history_window
        self.outbox: list[OutboundMessage] = []
        self._send_now = send_now
        self._seq = 0
        #: Tokens this turn's model calls cost; the agent loop adds to it, the consumer stores it.
        self.usage = Usage()
        #: The tools the agent called this turn, kept in the history record (``gateway history``).
        self.tool_calls: list[dict[str, Any]] = []
        #: The ``[[routes]]`` entry's label that claimed the event (None: the default route).
        self.route: str | None = None
        #: The route's own model key variable (bring your own key), for agents/providers.py.
        self.api_key_env: str | None = None
        #: The route streams answers (``stream = true`` / ``GATEWAY_STREAM``): ``stream()`` shows text live.
        self.streaming = any(e.stream for e in events)
        #: Every stream this turn opened, in order.
        self.streams: list[ReplyStream] = []
        #: Set by :meth:`handoff`: the consumer puts the conversation in ``human`` state after the turn.
        self.handoff_reason: str | None = None
        #: Set by the consumer when the conversation was already with a person: no agent ran this turn.
        self.human = False
        #: Set by :meth:`switch_session`: the session the conversation's next turns run in.
        self.switch_to: str | None = None

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

    def stream(self) -> ReplyStream:
        """A reply written piece by piece: ``async with ctx.stream() as s: await s.write(delta)``.

        On a streaming route the text shows as it is written (agents/streaming.py); elsewhere it is one
        ordinary reply when the stream finishes. Its id comes from the same sequence as ``reply``'s."""
        publish = self._send_now if self.streaming else None
        stream = ReplyStream(self._message("stream"), publish=publish, on_finish=self.outbox.append)
        self.streams.append(stream)
        return stream

    async def finish_streams(self) -> None:
        """Finish every open stream with the text it has (a turn cut short keeps its partial answer)."""
        for stream in self.streams:
            await stream.finish()

    async def react(self, emoji: str) -> str:
        """React to the inbound message (Slack reaction name like ``eyes``; Telegram emoji like 👀)."""
        message = self._message("react", emoji=emoji, target_message=self.event.reply_to.message)
        self.outbox.append(message)
        return message.id

    async def typing(self) -> None:
        """Show that the agent is working (Telegram chat action). Sent at once, best effort."""
        await self._send_now(self._message("typing"))

    def switch_session(self, name: str) -> None:
        """Run this conversation's next turns in session ``name`` (its own history, memory and state); this
        turn stays in the one it began in. A route's ``session = ...`` takes precedence over a switch."""
        self.switch_to = check_name(name)

    def handoff(self, reason: str) -> None:
        """Hand the conversation to a person once this turn is done (gateway/core/handoff.py): the replies of
        this turn still go out, the configured channel is notified, and from the next event on the agent is
        not called until an operator runs ``gateway handoff KEY --release``."""
        self.handoff_reason = reason.strip() or "the agent asked for a person"

    @property
    def replies(self) -> list[str]:
        return [m.text for m in self.outbox if m.action in ("reply", "stream")]
