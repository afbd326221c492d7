"""One conversation's turn: run the agent, queue its replies durably, then ack.

Outcomes for each delivery:
- not conversational (bot message, own message, edit, delete, reaction...): ack, no turn;
- already handled (a redelivery after the turn completed, or Slack's ``message``
  and ``app_mention`` for one mention): ack, no turn;
- the turn succeeded and its outbound messages are confirmed by the broker: record
  history and the done marker, ack;
- the conversation is handed to a person (gateway/core/handoff.py): no agent runs; the events are kept in
  the history marked ``handoff``, with their done markers, and acked;
- the turn failed: retry in place with backoff (the conversation waits, so order
  holds), then dead-letter with the error and attempts, ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from agents.context import SessionContext, State, Turn, TurnContext, history_key
from consumers.deadletter import DeadLetters
from consumers.interrupts import Interrupts
from consumers.pool import AgentPool
from consumers.usage import UsageLedger
from gateway.core import handoff, sessions, tracebacks, tracing
from gateway.core.bounds import skip_label
from gateway.core.bus.base import Delivery
from gateway.core.config import HandoffConfig
from gateway.core.errors import PublishError, StoreUnavailable
from gateway.core.events import SCHEMA_VERSION, Event, OutboundMessage
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.signals import stop_reason
from gateway.core.store.base import Store

log = structlog.get_logger(__name__)
DONE_TTL = 7 * 24 * 3600.0
HISTORY_KEEP = 1000
#: Done markers this process wrote lately, checked before the store (see Dispatcher.prepare).
RECENT_DONE = 50_000
#: Longest wait between two tries of a reply's publish (see Dispatcher._queue_replies).
PUBLISH_RETRY_MAX = 5.0
#: What a session without stored state starts with: a turn that leaves it so writes nothing.
EMPTY_STATE = State().dump()


@dataclass(frozen=True)
class DispatchConfig:
    default_agent: str = "echo"
    attempts: int = 3
    retry_base: float = 1.0
    turn_timeout: float = 300.0
    history_window: int = 50
    #: Seconds a conversation's history lives after its last turn (``GATEWAY_HISTORY_TTL``); None: forever.
    history_ttl: float | None = None
    #: While a turn runs longer than ``typing_after`` seconds, a typing indicator goes out every
    #: ``typing_every`` seconds (Telegram's chat action lasts 5 s; the web chat shows "typing…"); 0: off.
    typing_every: float = 4.0
    typing_after: float = 1.0
    #: Appended to the partial reply of a stopped turn (``GATEWAY_INTERRUPT_MARKER``).
    interrupt_marker: str = "…(stopped)"
    #: Where a handoff is announced (``[handoff]`` in gateway.toml).
    handoff: HandoffConfig = dataclasses.field(default_factory=HandoffConfig)


def turn_marker(agent: str, event: Event) -> str:
    return f"turn:{agent}:{event.message_ref or event.id}"


@dataclass(slots=True)
class Prepared:
    """What :meth:`Dispatcher.prepare` found on arrival: the event, and its done lookup in flight."""

    event: Event
    marker: str | None = None
    done: asyncio.Future[str | None] | None = None


def _observe(fut: asyncio.Future[str | None]) -> None:
    """A lookup nobody awaits (its delivery was dropped) must not log 'exception never retrieved'."""
    if not fut.cancelled():
        fut.exception()


class Dispatcher:
    def __init__(
        self,
        *,
        publisher: Publisher,
        store: Store,
        pool: AgentPool,
        dead: DeadLetters,
        metrics: Metrics,
        config: DispatchConfig,
        usage: UsageLedger | None = None,
    ) -> None:
        self._usage = usage
        self._publisher = publisher
        self._store = store
        self._pool = pool
        self._dead = dead
        self._metrics = metrics
        self._cfg = config
        self._children: dict[str, tuple[Any, Any]] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        #: The turns running in this process, for the ``interrupt`` policy and stop requests.
        self.interrupts = Interrupts()
        #: Hands a stream snapshot to this process's own sender (True), when it owns the conversation's
        #: partition; else (or unset) it is published like a typing indicator (consumers/worker.py sets it).
        self.preview: Callable[[OutboundMessage], bool] | None = None

    def prepare(self, d: Delivery) -> None:
        """On arrival, while the conversation's earlier turns still run: decode the event and start its
        done lookup, so that the turn does not wait a store round trip for it.

        A lookup started this early can only miss a marker written after it by this process (a
        duplicate behind its original in the same lane, Slack's ``message``/``app_mention`` twins):
        the partition has one owner at a time. Those are in ``_recent``, checked when the turn comes.
        """
        try:
            event = Event.model_validate_json(d.body)
        except (ValidationError, ValueError):
            return  # run() decodes it again and dead-letters it with the error
        if event.schema_version > SCHEMA_VERSION:
            return  # likewise: _decode is the one place that refuses a newer schema
        prepared = Prepared(event)
        if event.triggers_turn:
            prepared.marker = marker = turn_marker(event.agent or self._cfg.default_agent, event)
            if marker not in self._recent:
                prepared.done = done = self._store.lookup(marker)
                done.add_done_callback(_observe)
        d.prepared = prepared
        self._arrived(str(d.headers.get("conversation_key") or event.conversation_key), event)

    def _arrived(self, key: str, event: Event) -> None:
        """A stop request, or a new message of an ``interrupt`` route, stops the turn running for its key
        (consumers/interrupts.py). Checked on arrival, not when the lane reaches the event."""
        if event.control == "stop":
            self.interrupts.stop(event.id, key, event.received_at, stop_reason(event))
        elif event.busy == "interrupt" and event.triggers_turn:
            self.interrupts.interrupt(key, event.received_at, "new message", ref=event.message_ref)

    async def run(self, key: str, deliveries: list[Delivery]) -> None:
        """Handle the deliveries of one lane run (one, or several under ``collect``)."""
        pending: list[tuple[Delivery, Event]] = []
        for d in [d for d in deliveries if d.alive()]:  # dead copies come again after a reconnection
            event = d.prepared.event if isinstance(d.prepared, Prepared) else await self._decode(d)
            if event is None:
                continue
            if not event.triggers_turn:
                self._metrics.skipped.labels(skip_label(event.skip_reason, str(event.kind))).inc()
                await d.ack()
                continue
            pending.append((d, event))
        if not pending:
            return
        agent = pending[-1][1].agent or self._cfg.default_agent
        if not self._pool.knows(agent):
            for d, _ in pending:
                await self._dead.send(
                    d,
                    stage="dispatch",
                    reason="unknown_agent",
                    error=f"agent {agent!r} is not loaded in this consumer",
                    attempts=0,
                )
            return
        pending = await self._drop_done(agent, pending)
        if pending:
            await self._turn_with_retries(agent, key, pending)

    async def _decode(self, d: Delivery) -> Event | None:
        try:
            event = Event.model_validate_json(d.body)
        except (ValidationError, ValueError) as exc:
            await self._dead.send(d, stage="dispatch", reason="undecodable", error=str(exc), attempts=0)
            return None
        if event.schema_version > SCHEMA_VERSION:
            await self._dead.send(
                d,
                stage="dispatch",
                reason="unsupported_schema",
                error=f"schema_version {event.schema_version} > {SCHEMA_VERSION}",
                attempts=0,
            )
            return None
        return event

    async def _drop_done(self, agent: str, pending: list[tuple[Delivery, Event]]) -> list[tuple[Delivery, Event]]:
        keep = []
        for d, e in pending:
            # Always looked up: besides redeliveries, replays and Slack's message/app_mention twins, one
            # event can be queued twice when a publish whose confirm timed out did reach the queue.
            marker = turn_marker(agent, e)
            prepared = d.prepared
            early = prepared.done if isinstance(prepared, Prepared) and prepared.marker == marker else None
            done = marker in self._recent or await self._was_done(d, marker, early)
            if done is None:
                continue  # its channel died while the store was away: the broker delivers it again
            if not done:
                keep.append((d, e))
                continue
            self._metrics.skipped.labels("already handled").inc()
            log.info("turn_already_done", event_id=e.id, conversation_key=e.conversation_key)
            await d.ack()
        return keep

    async def _was_done(self, d: Delivery, marker: str, early: asyncio.Future[str | None] | None) -> bool | None:
        """Whether the store holds ``marker``. While the store does not answer the conversation waits
        (acking without the check could answer twice; dead-lettering would punish an outage)."""
        delay = self._cfg.retry_base
        while True:
            try:
                return (await (early if early is not None else self._store.lookup(marker))) is not None
            except StoreUnavailable as exc:
                if not d.alive():
                    return None
                log.warning("done_check_failed", error=str(exc), retry_in_s=delay, marker=marker)
                early = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _turn_with_retries(self, agent: str, key: str, pending: list[tuple[Delivery, Event]]) -> None:
        deliveries = [d for d, _ in pending]
        events = [e for _, e in pending]
        now = time.time()
        for e in events:
            self._metrics.queue_lag.observe(max(0.0, now - e.received_at.timestamp()))
        prior = max(d.redeliveries for d in deliveries)
        repeat = any(d.repeated for d in deliveries)
        error = ""
        trace: str | None = None
        attempt = 0
        # Bound for this turn only: a later log line of the lane (a skipped event, the next turn) must not
        # carry this event's ids.
        with (
            structlog.contextvars.bound_contextvars(event_id=events[-1].id, conversation_key=key, agent=agent),
            self._span(agent, key, deliveries, events, prior) as current,
        ):
            while attempt < self._cfg.attempts:
                attempt += 1
                if prior + attempt > self._cfg.attempts * 3:
                    error = f"redelivered {prior} times: the consumer may be crashing on this event. {error}"
                    break
                start = time.perf_counter()
                try:
                    async with asyncio.timeout(self._cfg.turn_timeout):
                        ctx, raw_state = await self._turn(agent, key, events)
                    # Before anything is published: a state JSON cannot keep fails the turn with no reply sent.
                    changes = {} if ctx.human else session_changes(ctx, raw_state)
                    outbox = ctx.outbox
                    if ctx.handoff_reason is not None and not ctx.human:
                        outbox = outbox + await self._hand_off(agent, key, ctx)
                    await self._queue_replies(outbox, deliveries, recheck=repeat or attempt > 1)
                    await self._record(agent, key, events, outbox, ctx, changes)
                except Exception as exc:
                    if not all(d.alive() for d in deliveries):
                        log.warning("turn_abandoned", reason="connection lost; the broker redelivers the event")
                        return
                    error = f"{type(exc).__name__}: {exc}"
                    trace = tracebacks.bounded(exc)
                    tracing.add_event(current, "turn_failed", attempt=attempt, error=error[:500])
                    self._metrics.turns.labels(agent, "error").inc()
                    log.warning("turn_failed", attempt=attempt, of=self._cfg.attempts, error=error, traceback=trace)
                    if attempt < self._cfg.attempts:
                        await asyncio.sleep(self._backoff(attempt, exc))
                    continue
                if ctx.human:
                    self._metrics.turns.labels(agent, "human").inc()
                    log.info("turn_kept_for_human", events=len(events))
                    for d in deliveries:
                        await d.ack()
                    return
                ok, seconds = self._agent_metrics(agent)
                if ctx.interrupted is None:
                    ok.inc()
                else:
                    self._metrics.turns.labels(agent, "interrupted").inc()
                seconds.observe(time.perf_counter() - start)
                replies = sum(1 for m in outbox if m.action in ("reply", "stream"))
                log.info("turn_done", replies=replies, attempt=attempt, interrupted=ctx.interrupted)
                tracing.set_attributes(current, **{"gateway.attempts": attempt, "gateway.replies": replies})
                for d in deliveries:
                    await d.ack()
                return
            tracing.set_error(current, error)
            tracing.set_attributes(current, **{"gateway.attempts": attempt, "gateway.dead_lettered": True})
            for d in deliveries:
                await self._dead.send(
                    d, stage="dispatch", reason="turn_failed", error=error, attempts=prior + attempt, traceback=trace
                )

    async def _queue_replies(
        self, outbox: Sequence[OutboundMessage], deliveries: list[Delivery], *, recheck: bool
    ) -> None:
        """Publish a turn's replies, waiting out a broker that is slow to confirm or briefly away.

        The answer is in hand: running the agent again (another model call) or dead-lettering the event
        for the broker's trouble would be worse than waiting, up to the turn timeout. A reply whose confirm
        timed out may be queued already, so every repeat is marked for the sender's sent-marker check: the
        same message id goes out once. A reply whose turn may have run before is checked the same way.
        """
        deadline = time.monotonic() + self._cfg.turn_timeout
        for message in outbox:
            tries = 0
            while True:
                try:
                    await self._publisher.outbound(message, recheck=recheck or tries > 0)
                    break
                except PublishError as exc:
                    tries += 1
                    delay = min(self._cfg.retry_base * 2 ** min(tries - 1, 6), PUBLISH_RETRY_MAX)
                    if time.monotonic() + delay > deadline or not all(d.alive() for d in deliveries):
                        raise
                    self._metrics.reply_publish_retries.inc()
                    log.warning("reply_publish_retry", tries=tries, error=str(exc), retry_in=delay)
                    await asyncio.sleep(delay)

    def _backoff(self, attempt: int, exc: BaseException) -> float:
        """Exponential backoff, or longer when the failure said how long to wait (a model's 429
        ``Retry-After``), bounded by the turn timeout so a silly header cannot park the conversation."""
        delay: float = self._cfg.retry_base * 2 ** (attempt - 1)
        cause: BaseException | None = exc
        for _ in range(5):  # the agent may wrap the model's error (AgentError from ModelError)
            if cause is None:
                break
            asked = getattr(cause, "retry_after", None)
            if isinstance(asked, int | float) and asked > delay:
                return min(float(asked), self._cfg.turn_timeout)
            cause = cause.__cause__
        return delay

    def _agent_metrics(self, agent: str) -> tuple[Any, Any]:
        """The labelled children for an agent, looked up once (labels() costs more than inc())."""
        children = self._children.get(agent)
        if children is None:
            children = (self._metrics.turns.labels(agent, "ok"), self._metrics.turn_seconds.labels(agent))
            self._children[agent] = children
        return children

    @staticmethod
    def _span(
        agent: str, key: str, deliveries: list[Delivery], events: list[Event], prior: int
    ) -> contextlib.AbstractContextManager[Any]:
        return tracing.span(
            f"turn {agent}",
            kind="consumer",
            parent=deliveries[-1].headers,
            links=[d.headers for d in deliveries[:-1]],
            attributes=lambda: {
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "process",
                "messaging.message.id": deliveries[-1].message_id,
                "gateway.agent": agent,
                "gateway.event_id": events[-1].id,
                "gateway.conversation_key": key,
                "gateway.core.events": len(events),
                "gateway.redeliveries": prior,
            },
        )

    async def _hand_off(self, agent: str, key: str, ctx: TurnContext) -> list[OutboundMessage]:
        """The turn asked for a person: the conversation goes to ``human`` state before its replies are
        queued (so the next event finds it there), and the notices go out with them, once per handoff."""
        record, new = await handoff.hand_off(
            self._store,
            key,
            reason=ctx.handoff_reason or "",
            by=f"agent:{agent}",
            ttl=self._cfg.history_ttl,
            reply_to=ctx.event.reply_to,
        )
        if new:
            log.info("conversation_handed_off", reason=record.reason)
        return handoff.notices(self._cfg.handoff, record, event_id=ctx.event.id)

    async def _conversation(self, key: str, events: list[Event]) -> tuple[str | None, str, str | None]:
        """(the handoff record, this turn's session, its stored state), from the conversation's hash in one
        command; a second only for a conversation the agent switched to another session."""
        pinned = events[-1].session
        guess = pinned or sessions.DEFAULT
        record = sessions.record_key(key)
        human, active, raw_state = await self._store.hmget(
            record, [handoff.FIELD, sessions.ACTIVE, sessions.state_field(guess)]
        )
        session = pinned or active or sessions.DEFAULT
        if session != guess:
            raw_state = await self._store.hget(record, sessions.state_field(session))
        return human, session, raw_state

    async def _turn(self, agent: str, key: str, events: list[Event]) -> tuple[TurnContext, str | None]:
        """The turn's context, and the state it began with (saved again only when it changed)."""
        human, session, raw_state = await self._conversation(key, events)
        if human is not None:
            # With a person: the agent is not called (no session enter, no model request, no reply).
            bare = SessionContext(agent, key, self._store, session_name=session)
            ctx = TurnContext(bare, events, history_window=0, send_now=self._send_now)
            ctx.human = True
            return ctx, raw_state
        state = State.parse(raw_state)
        inst = await self._pool.acquire(agent, key, session=session, state=state)
        inst.session.state, inst.session.session_name = state, session
        ctx = TurnContext(inst.session, events, history_window=self._cfg.history_window, send_now=self._send_now)
        typing = asyncio.create_task(self._keep_typing(ctx)) if self._cfg.typing_every > 0 else None
        try:
            # The ledger gives the turn its route and key, and ends it with the budget's message when spent.
            try:
                with self.interrupts.running(key, events) as running:
                    if self._usage is None or await self._usage.admit(agent, ctx):
                        await inst.agent.on_event(ctx, ctx.event)
                if running.reason is not None:  # stopped: what it had, its stream too, ends with the marker
                    ctx.interrupted = running.reason
                    await ctx.finalize_interrupted(self._cfg.interrupt_marker)
                await ctx.finish_streams()  # a stream the agent left open ends with the turn
            except BaseException:
                for stream in ctx.streams:  # unfinished: the retry continues the same platform message
                    await asyncio.shield(stream.abandon())
                raise
            if ctx.status_shown:  # after the replies: the indicator goes (Slack agent sessions: "active")
                ctx.outbox.append(self._done(ctx.event))
            return ctx, raw_state
        finally:
            if typing is not None:
                typing.cancel()
            self._pool.release(inst)

    @staticmethod
    def _done(event: Event) -> OutboundMessage:
        return OutboundMessage(
            id=f"{event.id}:done",
            event_id=event.id,
            conversation_key=event.conversation_key,
            action="done",
            to=event.reply_to,
        )

    async def _keep_typing(self, ctx: TurnContext) -> None:
        """Show the user the agent is working, until the turn ends (its replies go out after it) or text of
        the answer shows (``ctx.mark_text_visible()``: a stream's first snapshot).

        The ids are the event's own ``:typing:N`` series, apart from the turn's reply ids, so how long a turn
        took never shifts the id of a reply (a retried turn's replies keep theirs, and are never doubled).
        """
        event = ctx.event
        if await _until(ctx.text_visible, self._cfg.typing_after):
            return
        ctx.status_shown = True
        for n in itertools.count():
            await self._send_now(
                OutboundMessage(
                    id=f"{event.id}:typing:{n}",
                    event_id=event.id,
                    conversation_key=event.conversation_key,
                    action="typing",
                    to=event.reply_to,
                )
            )
            if await _until(ctx.text_visible, self._cfg.typing_every):
                return

    async def _send_now(self, message: OutboundMessage) -> None:
        if message.action == "stream" and self.preview is not None and self.preview(message):
            return
        try:
            await self._publisher.outbound(message)
        except Exception as exc:  # typing indicators are best effort
            log.info("typing_not_sent", error=str(exc))

    async def _record(
        self,
        agent: str,
        key: str,
        events: Sequence[Event],
        outbox: Sequence[OutboundMessage],
        ctx: TurnContext | None = None,
        changes: dict[str, str] | None = None,
    ) -> None:
        human = ctx is not None and ctx.human
        records = [Turn("user", e.text, e.id, e.sender.id if e.sender else None, handoff=human) for e in events]
        records += [Turn("assistant", m.text, m.event_id) for m in outbox if m.action in ("reply", "stream")]
        if ctx is not None:
            records = with_what_was_done(records, len(events), ctx)
        turns = [t.to_json() for t in records]
        markers = [turn_marker(agent, e) for e in events]
        session = ctx.session_name if ctx is not None else sessions.DEFAULT
        writes: list[Awaitable[None]] = [
            self._store.push(
                history_key(agent, key, session),
                turns,
                HISTORY_KEEP,
                markers=markers,
                marker_ttl=DONE_TTL,
                ttl=self._cfg.history_ttl,
            )
        ]
        record, ttl = sessions.record_key(key), self._cfg.history_ttl
        writes += [self._store.hput(record, name, value, ttl=ttl) for name, value in (changes or {}).items()]
        if human:  # where the release notice goes: the latest event's place (gateway/core/handoff.py)
            writes.append(handoff.seen(self._store, key, events[-1].reply_to, ttl=ttl))
        if human and ttl is not None:  # each message kept for a person renews the handoff, like the history
            writes.append(self._store.expire(record, ttl))
        await asyncio.gather(*writes)  # one round trip on Redis
        recent = self._recent
        for marker in markers:
            recent[marker] = None
        while len(recent) > RECENT_DONE:
            recent.popitem(last=False)
        if self._usage is not None and ctx is not None:
            await self._usage.record(agent, ctx)


async def _until(flag: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds``, or less when ``flag`` is set; whether it is."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(flag.wait(), seconds)
    return flag.is_set()


def session_changes(ctx: TurnContext, raw_state: str | None) -> dict[str, str]:
    """The fields of the conversation's hash this turn changes: its session's state when it differs from what
    the turn began with, and the session switched to (``ctx.switch_session``)."""
    changes: dict[str, str] = {}
    state = ctx.state.dump()
    if state != (raw_state or EMPTY_STATE):
        changes[sessions.state_field(ctx.session_name)] = state
    if ctx.switch_to is not None:
        changes[sessions.ACTIVE] = ctx.switch_to
    return changes


def with_what_was_done(records: list[Turn], inbound: int, ctx: TurnContext) -> list[Turn]:
    """The turn's tool calls and usage on its first reply (its last inbound message when it sent none),
    and the time on every record: what ``gateway history`` shows."""
    at = time.time()
    target = inbound if len(records) > inbound else inbound - 1
    out = []
    for i, t in enumerate(records):
        if i == target and (ctx.tool_calls or ctx.usage):
            t = dataclasses.replace(
                t, tool_calls=tuple(ctx.tool_calls), usage=ctx.usage.to_dict() if ctx.usage else None
            )
        out.append(dataclasses.replace(t, at=at, interrupted=ctx.interrupted))
    return out
