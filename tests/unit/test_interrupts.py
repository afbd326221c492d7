"""Stopping a running turn: only the agent is cancelled, only turns older than the request, once per stop."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import pytest

from agents.context import SessionContext, Turn, TurnContext
from consumers.interrupts import Interrupts
from gateway.core.config import RouteConfig
from gateway.core.events import Event, EventKind, OutboundMessage, ReplyAddress
from gateway.core.routing import Router, stop_word_of
from gateway.core.signals import stop_reason
from gateway.core.store.memory import MemoryStore
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(10)
T0 = datetime(2026, 1, 1, tzinfo=UTC)  # when the turns' events were received


def later(seconds: float = 1) -> datetime:
    """A request received after the turn started."""
    return datetime.now(UTC) + timedelta(seconds=seconds)


def event(text: str = "hi", *, at: datetime = T0, **kw: object) -> Event:
    return Event(
        platform="slack",
        delivery_id=text,
        kind=EventKind.MESSAGE,
        conversation_key="slack:T:C:1",
        text=text,
        reply_to=ReplyAddress(platform="slack", bot="T", channel="C", thread="1"),
        received_at=at,
        **kw,  # type: ignore[arg-type]
    )


async def run_turn(interrupts: Interrupts, started: asyncio.Event, *, at: datetime = T0) -> str | None:
    with interrupts.running("k", [event(at=at)]) as turn:
        started.set()
        await asyncio.sleep(30)
    return turn.reason


async def test_a_later_request_cancels_the_agent_at_its_next_await_and_the_turn_goes_on() -> None:
    interrupts = Interrupts()
    started = asyncio.Event()
    task = asyncio.create_task(run_turn(interrupts, started))
    await started.wait()
    assert interrupts.is_running("k")
    assert interrupts.interrupt("k", later(1), "new message")
    assert not interrupts.interrupt("k", later(2), "again")  # one request is enough
    assert await task == "new message"  # the CancelledError ended inside running(); the task returned
    assert not interrupts.is_running("k")


async def test_a_request_received_before_the_turn_stops_nothing() -> None:
    interrupts = Interrupts()
    started = asyncio.Event()
    task = asyncio.create_task(run_turn(interrupts, started, at=T0 + timedelta(seconds=5)))
    await started.wait()
    assert not interrupts.interrupt("k", T0, "old stop")
    # received after the turn's events but before the turn started (it waited behind an earlier one)
    assert not interrupts.interrupt("k", T0 + timedelta(seconds=6), "queued behind")
    assert not interrupts.interrupt("other", T0 + timedelta(seconds=9), "another conversation")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_shutdown_cancel_is_not_swallowed_even_after_an_interrupt() -> None:
    interrupts = Interrupts()
    started = asyncio.Event()
    task = asyncio.create_task(run_turn(interrupts, started))
    await started.wait()
    interrupts.interrupt("k", later(1), "new message")
    task.cancel()  # the consumer shuts down at the same time
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_agent_that_swallows_the_cancel_leaves_no_pending_cancel_behind() -> None:
    interrupts = Interrupts()
    started = asyncio.Event()

    async def stubborn() -> tuple[str | None, int]:
        with interrupts.running("k", [event()]) as turn:
            started.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(30)
        await asyncio.sleep(0)  # the dispatcher's own awaits after the agent are not cancelled
        current = asyncio.current_task()
        assert current is not None
        return turn.reason, current.cancelling()

    task = asyncio.create_task(stubborn())
    await started.wait()
    interrupts.interrupt("k", later(1), "stop word")
    assert await task == ("stop word", 0)


async def test_a_stop_acts_once_per_id_the_signal_and_its_queued_copy() -> None:
    interrupts = Interrupts()
    started = asyncio.Event()
    task = asyncio.create_task(run_turn(interrupts, started))
    await started.wait()
    assert interrupts.stop("stop-1", "k", later(1), "stop word")
    assert await task == "stop word"
    started.clear()
    second = asyncio.create_task(run_turn(interrupts, started))  # the next turn, older than the stop
    await started.wait()
    assert not interrupts.stop("stop-1", "k", later(1), "stop word")  # the queued copy
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second


async def test_a_second_delivery_of_the_running_message_stops_nothing() -> None:
    interrupts = Interrupts()
    started = asyncio.Event()

    async def turn() -> str | None:
        with interrupts.running("k", [event(message_ref="slack:T:C:1.1")]) as running:
            started.set()
            await asyncio.sleep(30)
        return running.reason

    task = asyncio.create_task(turn())
    await started.wait()
    # Slack sends `message` and `app_mention` for one mention: the twin is not a new message
    assert not interrupts.interrupt("k", later(), "new message", ref="slack:T:C:1.1")
    assert interrupts.interrupt("k", later(), "new message", ref="slack:T:C:1.2")
    assert await task == "new message"


def test_stop_words_are_matched_without_case_mention_or_punctuation() -> None:
    assert stop_word_of("<@UBOT> Stop!") == "stop"
    assert stop_word_of("@support_bot  STOP.") == "stop"
    assert stop_word_of("please stop") == "please stop"
    router = Router([RouteConfig(platform="slack", stop_words=["Stop", "cancel"], busy="interrupt")], "echo")
    stop = router.apply(event("<@UBOT> stop"))
    assert (stop.control, stop.skip_reason, stop.triggers_turn, stop.busy) == ("stop", "stop", False, "interrupt")
    assert stop_reason(stop) == "stop word"
    normal = router.apply(event("stop the build please"))
    assert (normal.control, normal.triggers_turn) == (None, True)
    edit = router.apply(event("stop", skip_reason="edit"))
    assert edit.control is None  # an edit into "stop" stops nothing
    assert Router([RouteConfig(platform="slack")], "echo").apply(event("stop")).control is None


def test_an_interrupted_turn_record_round_trips() -> None:
    t = Turn("assistant", "half an answer …(stopped)", "e1", interrupted="new message")
    assert Turn.from_json(t.to_json()) == t
    assert "interrupted" not in Turn("user", "hi", "e1").to_json()


def turn_context() -> TurnContext:
    session = SessionContext("a", "slack:T:C:1", MemoryStore("t"))
    return TurnContext(session, [event()], history_window=5, send_now=_nothing)


async def _nothing(message: OutboundMessage) -> None:
    return None


async def test_the_marker_ends_the_last_collected_reply_or_is_posted_alone() -> None:
    ctx = turn_context()
    await ctx.reply("first")
    await ctx.react("eyes")
    await ctx.finalize_interrupted("…(stopped)")
    assert [(m.action, m.text) for m in ctx.outbox] == [("reply", "first …(stopped)"), ("react", "")]
    empty = turn_context()
    await empty.finalize_interrupted("…(stopped)")
    assert [m.text for m in empty.outbox] == ["…(stopped)"]
    silent = turn_context()
    await silent.finalize_interrupted("")
    assert silent.outbox == []


async def test_a_finalizer_that_closed_a_visible_reply_replaces_the_marker_reply() -> None:
    ctx = turn_context()
    closed: list[str] = []

    async def stop_stream(marker: str) -> bool:
        closed.append(marker)
        return True

    async def broken(marker: str) -> bool:
        raise RuntimeError("the platform said no")

    ctx.on_interrupt(broken)
    ctx.on_interrupt(stop_stream)
    await ctx.finalize_interrupted("…(stopped)")
    assert closed == ["…(stopped)"]
    assert ctx.outbox == []


def test_slacks_stop_button_is_a_stop_request_for_its_thread() -> None:
    from connectors.slack.parse import event_from_callback

    # The event as documented: https://docs.slack.dev/reference/events/agent_session_stopped
    envelope = {
        "type": "event_callback",
        "team_id": "T123",
        "event_id": "Ev1",
        "event": {
            "type": "agent_session_stopped",
            "channel": "C0123ABC456",
            "thread_ts": "1782234671.392669",
            "streaming_message_ts": ["1782234987.693923"],
            "user": "U123ABC456",
            "event_ts": "1783536983.783769",
        },
    }
    ev = event_from_callback(envelope)
    assert ev.conversation_key == "slack:T123:C0123ABC456:1782234671.392669"
    assert (ev.control, ev.skip_reason, ev.triggers_turn) == ("stop", "stop", False)
    assert stop_reason(ev) == "stop button"


@pytest.mark.parametrize("live", [False, True])
async def test_an_open_stream_is_finished_with_the_marker_as_the_same_reply(live: bool) -> None:
    sent: list[OutboundMessage] = []

    async def send_now(m: OutboundMessage) -> None:
        sent.append(m)

    session = SessionContext("a", "slack:T:C:1", MemoryStore("t"))
    ctx = TurnContext(session, [event(stream=live)], history_window=5, send_now=send_now)
    stream = ctx.stream()
    await stream.write("half an answer")
    if live:
        await eventually(lambda: sent, what="the first snapshot")
    await stream.abandon()  # what leaving `async with ctx.stream()` on the CancelledError does
    await ctx.finalize_interrupted("…(stopped)")
    [final] = ctx.outbox
    assert (final.id, final.text) == (stream.id, "half an answer …(stopped)")
    assert final.action == ("stream" if live else "reply")
    assert ctx.text_visible.is_set() is live  # the snapshot showed text: the typing indicator stops
