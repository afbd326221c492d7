"""Stopping a conversation's running turn: the ``interrupt`` busy policy, stop words, Slack's Stop button.

The dispatcher runs the agent part of every turn inside :meth:`Interrupts.running`. Whoever learns that
the turn must stop (a new message of an ``interrupt`` route arriving on its partition, a stop event, a
stop signal from another process) calls :meth:`Interrupts.interrupt` with the conversation key and the
time the gateway received the request. The running turn is cancelled at its next ``await`` only when the
turn had started, and all of its events had been received, before that request: a message or a stop
received while an earlier turn was finishing waits its turn and stops nothing (the clocks of ingress and
consumer hosts are taken to agree, as NTP keeps them, within milliseconds); the
dispatcher then finalizes the partial reply, records the turn as ``interrupted`` and acks it (no retry,
no dead letter). Only the agent is cancelled: the dispatcher's own publishing and acking after it are not.

A stop request comes twice: as a signal (``gateway/core/signals.py``, at once, to every consumer) and as
its event in the partition queue (durable, acked in order). Its id is remembered so the second copy of
one request stops nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from gateway.core.events import Event

log = structlog.get_logger(__name__)
#: Stop requests remembered, so the queued copy of a signalled stop does nothing more.
RECENT_STOPS = 10_000


@dataclass(slots=True)
class RunningTurn:
    key: str
    #: When the newest event of the turn was received (a request received before it does not stop it).
    received_at: datetime
    #: When the turn started (likewise).
    started_at: datetime
    task: asyncio.Task[object] | None
    #: The platform messages the turn answers: a second delivery of one of them (Slack's ``message`` and
    #: ``app_mention`` for one mention) is the same message, not a new one.
    refs: frozenset[str] = frozenset()
    #: Why it was interrupted ("new message", "stop word", "stop button"); None while it runs on.
    reason: str | None = None
    done: bool = field(default=False)

    def interrupt(self, reason: str) -> bool:
        if self.reason is not None or self.done or self.task is None:
            return False
        self.reason = reason
        self.task.cancel(f"interrupted: {reason}")
        return True


class Interrupts:
    def __init__(self) -> None:
        self._running: dict[str, RunningTurn] = {}
        self._stops: OrderedDict[str, None] = OrderedDict()

    def is_running(self, key: str) -> bool:
        return key in self._running

    @contextlib.contextmanager
    def running(self, key: str, events: Sequence[Event]) -> Iterator[RunningTurn]:
        """Run the agent part of a turn interruptibly. On interruption the ``CancelledError`` ends here
        and ``turn.reason`` says why; a cancellation from anyone else (shutdown, a lost lease) goes on."""
        refs = frozenset(e.message_ref for e in events if e.message_ref)
        turn = RunningTurn(key, max(e.received_at for e in events), datetime.now(UTC), asyncio.current_task(), refs)
        self._running[key] = turn
        try:
            yield turn
        except asyncio.CancelledError:
            if turn.reason is None or turn.task is None or turn.task.uncancel() > 0:
                raise
            log.info("turn_interrupted", conversation_key=key, reason=turn.reason)
        else:
            if turn.reason is not None and turn.task is not None:
                turn.task.uncancel()  # the agent swallowed the CancelledError: the request is spent anyway
        finally:
            turn.done = True
            if self._running.get(key) is turn:
                del self._running[key]

    def interrupt(self, key: str, received_at: datetime, reason: str, *, ref: str | None = None) -> bool:
        """Cancel ``key``'s running turn if it started, and all of its events were received, before
        ``received_at``, and ``ref`` (the new message) is not one it answers already."""
        turn = self._running.get(key)
        if turn is None or turn.received_at >= received_at or turn.started_at >= received_at:
            return False
        if ref is not None and ref in turn.refs:
            return False
        return turn.interrupt(reason)

    def stop(self, stop_id: str, key: str, received_at: datetime, reason: str) -> bool:
        """A stop request (signal or queued event): acted on once per ``stop_id``."""
        if stop_id in self._stops:
            return False
        self._stops[stop_id] = None
        while len(self._stops) > RECENT_STOPS:
            self._stops.popitem(last=False)
        return self.interrupt(key, received_at, reason)
