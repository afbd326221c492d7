"""What an agent sees: the event, its conversation, history, memory and connector tools.

Replies are collected during the turn and published (confirmed) when the
turn succeeds, so a failing turn never leaves a half-answer behind; the
dispatcher retries the whole turn. A streamed reply (``ctx.stream()``,
agents/streaming.py) shows while it is written and is finished the same way. Each outbound message's id is derived from
the inbound message and its position in the turn, so a redelivered or
replayed turn produces the same ids and the sender posts nothing twice.
"""

from __future__ import annotations

import asyncio
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

#: ``await finalize(marker) -> closed``: see :meth:`TurnContext.on_interrupt`.
Finalizer = Callable[[str], Awaitable[bool]]


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
    #: Why the turn was stopped before it finished ("new message", "stop word", "stop button"); None when
    #: it ran to its end. Its replies are what it had produced, the last one ending with the stop marker.
    interrupted: str | None = None
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
        if self.interrupted is not None:
            d["interrupted"] = self.interrupted
        if self.handoff:
            d["handoff"] = True
        return orjson.dumps(d).decode()

    @classmethod
    def from_json(cls, raw: str) -> Turn:
        d = json.loads(raw)
        calls = d.get("tool_calls")
        usage = d.get("usage")
        at = d.get("at")
        interrupted = d.get("interrupted")
        return cls(
            role=d["role"],
            text=d["text"],
            event_id=d["event_id"],
            sender=d.get("sender"),
            tool_calls=tuple(c for c in calls if isinstance(c, dict)) if isinstance(calls, list) else (),
            usage=dict(usage) if isinstance(usage, dict) else None,
            at=float(at) if isinstance(at, int | float) else None,
            interrupted=str(interrupted) if interrupted is not None else None,
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
        #: Set by the consumer when the turn was stopped (consumers/interrupts.py): why.
        self.interrupted: str | None = None
        self._finalizers: list[Finalizer] = []
        #: A typing indicator or status went out during the turn, so the consumer clears it when it ends.
        self.status_shown = False
        #: Set once the user sees text of this turn's answer (a stream's first snapshot): typing stops then.
        self.text_visible = asyncio.Event()
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

    def on_interrupt(self, finalize: Finalizer) -> None:
        """Register what ends a reply that is already visible (a stream, a message being edited) when the
        turn is stopped: ``await finalize(marker)`` closes it with the stop marker appended and returns
        True, or returns False when it had nothing to close. Called in order, after the agent was
        cancelled and before the turn's collected replies are published."""
        self._finalizers.append(finalize)

    async def finalize_interrupted(self, marker: str) -> None:
        """End the stopped turn's partial reply with ``marker``: through the registered finalizers when one
        closed a visible reply, else on the last collected reply, else as a reply of its own."""
        closed = False
        for stream in self.streams:  # a streamed reply shows already: it ends with the marker
            if stream.finished:
                continue
            if stream.text.strip() and marker:
                await stream.finish(f"{stream.text.rstrip()} {marker}")
                closed = True
            else:
                await stream.finish()
        for finalize in self._finalizers:
            try:
                closed = await finalize(marker) or closed
            except Exception as exc:  # the turn is over either way; say so in the log, not in the chat
                self.log.warning("interrupt_finalizer_failed", error=str(exc))
        if closed or not marker:
            return
        for i in range(len(self.outbox) - 1, -1, -1):
            message = self.outbox[i]
            if message.action in ("reply", "stream"):
                text = f"{message.text.rstrip()} {marker}"
                self.outbox[i] = message.model_copy(update={"text": text})
                return
        self.outbox.append(self._message("reply", text=marker, extra={}))

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
        publish = self._snapshot if self.streaming else None
        stream = ReplyStream(self._message("stream"), publish=publish, on_finish=self.outbox.append)
        self.streams.append(stream)
        return stream

    async def _snapshot(self, message: OutboundMessage) -> None:
        """A stream's snapshot goes out now; from the first one the user sees text, so typing stops."""
        await self._send_now(message)
        self.mark_text_visible()

    async def finish_streams(self) -> None:
        """Finish every open stream with the text it has (a turn cut short keeps its partial answer)."""
        for stream in self.streams:
            await stream.finish()

    async def react(self, emoji: str) -> str:
        """React to the inbound message (Slack reaction name like ``eyes``; Telegram emoji like 👀)."""
        message = self._message("react", emoji=emoji, target_message=self.event.reply_to.message)
        self.outbox.append(message)
        return message.id

    def mark_text_visible(self) -> None:
        """Text of the answer is on the screen (a streamed reply's first snapshot): the typing indicator the
        consumer repeats while the turn runs stops here rather than at the end of the turn."""
        self.text_visible.set()

    async def typing(self) -> None:
        """Show that the agent is working (Telegram chat action). Sent at once, best effort."""
        self.status_shown = True
        await self._send_now(self._message("typing"))

    async def set_status(self, text: str = "is thinking…", *, loading_messages: list[str] | None = None) -> str:
        """Say what the agent is doing, at once, until its reply: Slack assistant threads show ``text``
        (and rotate ``loading_messages``, at most 10); Slack agent sessions go to ``processing`` (or
        ``text`` when it is a session status: active, processing, suspended, closed); Telegram shows
        "typing…". Best effort; the status is cleared when the turn ends."""
        extra: dict[str, Any] = {"loading_messages": list(loading_messages[:10])} if loading_messages else {}
        self.status_shown = True
        message = self._message("status", text=text, extra=extra)
        await self._send_now(message)
        return message.id

    async def suggest_prompts(self, prompts: list[tuple[str, str]], *, title: str | None = None) -> str:
        """Offer up to 4 prompts as ``(title, message)`` pairs the user can click (Slack assistant threads,
        ``assistant.threads.setSuggestedPrompts``); ignored where the platform has no such surface."""
        if not prompts:
            raise ValueError("suggest_prompts needs at least one (title, message) pair")
        items = [{"title": t, "message": m} for t, m in prompts[:4]]
        extra: dict[str, Any] = {"prompts": items} | ({"title": title} if title else {})
        message = self._message("prompts", extra=extra)
        await self._send_now(message)
        return message.id

    async def set_title(self, title: str) -> str:
        """Name the conversation (Slack ``assistant.threads.setTitle``, or ``agents.sessions.rename`` for
        agent sessions); ignored where the platform has no such surface."""
        if not title.strip():
            raise ValueError("the title is empty")
        message = self._message("title", text=title[:200])
        await self._send_now(message)
        return message.id

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
