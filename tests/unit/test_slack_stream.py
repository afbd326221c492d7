"""Slack streams through the real slack_sdk client against the fake Web API: native chat.*Stream in a
thread, the post-and-edit fallback, long answers split, and a stream continued from its saved state."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from connectors.slack.sender import SlackSender
from connectors.slack.stream import LIMIT
from connectors.streaming import Part, split
from gateway.core.errors import SendError
from gateway.core.events import OutboundMessage, ReplyAddress
from tests.fakes.slack_api import FakeSlack
from tests.support.streams import Saved

TO = ReplyAddress(platform="slack", bot="T111", channel="C1", thread="1700000000.000100", user="U1")


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token="xoxb-unit") as fake:
        yield fake


@pytest.fixture
async def sender(slack: FakeSlack) -> AsyncIterator[SlackSender]:
    s = SlackSender("xoxb-unit", slack.base_url)
    yield s
    await s.close()


def snapshot(text: str, seq: int, *, final: bool = False, to: ReplyAddress = TO) -> OutboundMessage:
    return OutboundMessage(
        id="ev:a:1", event_id="ev", conversation_key="k", action="stream", to=to, text=text, seq=seq, final=final
    )


async def push(sender: SlackSender, saved: Saved, text: str, seq: int, *, final: bool = False) -> None:
    """One snapshot as the outbound worker handles it: state from the store, the platform, the store."""
    state = saved.load()
    await sender.stream(snapshot(text, seq, final=final), state, saved)
    await saved.save()


async def test_a_thread_shows_the_answer_growing_then_final(slack: FakeSlack, sender: SlackSender) -> None:
    saved = Saved()
    for seq, text in enumerate(["Hel", "Hello wor", "Hello world"], 1):
        await push(sender, saved, text, seq)
    await push(sender, saved, "Hello world, and more.", 4, final=True)
    (message,) = slack.created("C1", TO.thread or "")
    assert message["text"] == "Hello world, and more."
    steps = slack.steps("C1", message["ts"])
    assert [s.text for s in steps] == ["Hel", "Hello wor", "Hello world", "Hello world, and more."]
    assert [s.final for s in steps] == [False, False, False, True]
    # the last words travel in the chat.stopStream that ends the stream: one call, one rate-limit token
    assert [c.method for c in slack.calls] == ["chat.startStream"] + ["chat.appendStream"] * 2 + ["chat.stopStream"]
    start = slack.calls[0].args
    assert (start["thread_ts"], start["recipient_team_id"], start["recipient_user_id"]) == (TO.thread, "T111", "U1")
    assert saved.paced == 4  # every call through the rate limiter


async def test_without_streaming_methods_it_posts_then_edits(slack: FakeSlack, sender: SlackSender) -> None:
    slack.streaming = False
    saved = Saved()
    await push(sender, saved, "Hel", 1)
    await push(sender, saved, "Hello", 2)
    await push(sender, saved, "Hello", 3, final=True)  # nothing changed: no call
    (message,) = slack.created("C1", TO.thread or "")
    assert [s.text for s in slack.steps("C1", message["ts"])] == ["Hel", "Hello"]
    assert [c.method for c in slack.calls] == ["chat.startStream", "chat.postMessage", "chat.update"]
    assert saved.state.mode == "edit"  # decided once, kept


async def test_outside_a_thread_it_posts_then_edits(slack: FakeSlack, sender: SlackSender) -> None:
    to = TO.model_copy(update={"thread": None})
    saved = Saved()
    await sender.stream(snapshot("Hi", 1, to=to), saved.load(), saved)
    assert [c.method for c in slack.calls] == ["chat.postMessage"]


async def test_a_long_answer_is_split_into_messages_at_the_limit(slack: FakeSlack, sender: SlackSender) -> None:
    saved = Saved()
    words = " ".join(f"word{i}" for i in range(1500))  # about 10,000 characters
    await push(sender, saved, words[:3000], 1)
    await push(sender, saved, words, 2, final=True)
    messages = slack.created("C1", TO.thread or "")
    assert [m["text"] for m in messages] == split(words, LIMIT)
    assert len(messages) == -(-len(words) // LIMIT)  # as few as the limit allows, cut between words
    assert "".join(m["text"] for m in messages) == words
    assert all(len(m["text"]) <= LIMIT for m in messages)


async def test_a_stream_continues_from_its_saved_state(slack: FakeSlack, sender: SlackSender) -> None:
    """Another process (another sender) takes the stream over: the same message, never a second one."""
    saved = Saved()
    await push(sender, saved, "The answer", 1)
    other = SlackSender("xoxb-unit", slack.base_url)
    try:
        await push(other, saved, "The answer is", 2)
        await push(other, saved, "The answer is 42.", 3, final=True)
    finally:
        await other.close()
    (message,) = slack.created("C1", TO.thread or "")
    assert message["text"] == "The answer is 42."


async def test_a_message_made_just_before_a_crash_is_found_not_made_twice(
    slack: FakeSlack, sender: SlackSender
) -> None:
    """The intent was saved, the stream started, the process died before saving its ts: the next owner finds
    the message in the thread and continues it."""
    saved = Saved()
    state = saved.load()
    state.parts.append(Part(text="The ans", unsure=True, native=True))
    await saved.save()
    client = AsyncWebClient(token="xoxb-unit", base_url=slack.base_url)
    started = await client.chat_startStream(channel="C1", thread_ts=TO.thread or "", markdown_text="The ans")
    await push(sender, saved, "The answer", 2)
    await push(sender, saved, "The answer is 42.", 3, final=True)
    (message,) = slack.created("C1", TO.thread or "")
    assert message["ts"] == started["ts"]
    assert message["text"] == "The answer is 42."


async def test_a_posted_part_is_found_by_its_metadata_even_when_another_shows_the_same_text(
    slack: FakeSlack, sender: SlackSender
) -> None:
    """Post-and-edit: the post went out with the stream's id and part number in its metadata, the process died
    before saving its ts; a bot message with the same text (another answer's) is not taken for it."""
    slack.streaming = False
    client = AsyncWebClient(token="xoxb-unit", base_url=slack.base_url)
    await client.chat_postMessage(channel="C1", thread_ts=TO.thread, text="The ans")  # not this stream's
    saved = Saved()
    await push(sender, saved, "The ans", 1)
    ((_, posted), *_) = [p for p in slack.posts if p[1].get("metadata")]
    assert posted["metadata"] == {"event_type": "gateway_outbound", "event_payload": {"id": "ev:a:1", "part": 0}}
    ours = saved.load().parts[0].ref
    lost = saved.load()
    lost.parts[0] = Part(text="The ans", unsure=True)  # as saved before the post: no ts
    saved.state = lost
    await saved.save()
    await push(sender, saved, "The answer", 2, final=True)
    texts = {m["ts"]: m["text"] for m in slack.created("C1", TO.thread or "")}
    assert texts[ours] == "The answer"
    assert sorted(texts.values()) == ["The ans", "The answer"]


async def test_a_message_never_made_is_made_on_resume(slack: FakeSlack, sender: SlackSender) -> None:
    saved = Saved()
    saved.load().parts.append(Part(text="The ans", unsure=True, native=True))
    await saved.save()
    await push(sender, saved, "The answer", 2, final=True)
    (message,) = slack.created("C1", TO.thread or "")
    assert message["text"] == "The answer"


async def test_a_retried_turn_catching_up_changes_nothing(slack: FakeSlack, sender: SlackSender) -> None:
    saved = Saved()
    await push(sender, saved, "The answer is", 1)
    calls = len(slack.calls)
    await push(sender, saved, "The", 1)  # the retry's first snapshot: behind what is shown
    assert len(slack.calls) == calls
    await push(sender, saved, "The answer is 42.", 2, final=True)
    (message,) = slack.created("C1", TO.thread or "")
    assert [s.text for s in slack.steps("C1", message["ts"])][-1] == "The answer is 42."
    assert "chat.update" not in [c.method for c in slack.calls]


async def test_an_append_that_may_have_happened_is_repaired_whole(slack: FakeSlack, sender: SlackSender) -> None:
    """Saved as unsure (the process died during appendStream, which did go through): the next owner stops
    the stream and rewrites the message, so the text is never doubled."""
    saved = Saved()
    await push(sender, saved, "Hello", 1)
    state = saved.load()
    ts = state.parts[0].ref
    await AsyncWebClient(token="xoxb-unit", base_url=slack.base_url).chat_appendStream(
        channel="C1", ts=ts, markdown_text=" world"
    )
    state.parts[0].text, state.parts[0].unsure = "Hello world", True
    await saved.save()
    await push(sender, saved, "Hello world!", 2, final=True)
    assert slack.screen("C1") == {ts: "Hello world!"}
    assert [c.method for c in slack.calls][-2:] == ["chat.stopStream", "chat.update"]


async def test_a_stream_that_ended_on_slack_is_finished_with_an_update(slack: FakeSlack, sender: SlackSender) -> None:
    saved = Saved()
    await push(sender, saved, "Partial", 1)
    ts = saved.load().parts[0].ref
    await AsyncWebClient(token="xoxb-unit", base_url=slack.base_url).chat_stopStream(channel="C1", ts=ts)
    await push(sender, saved, "Partial and the rest", 2, final=True)
    assert slack.screen("C1") == {ts: "Partial and the rest"}
    assert [c.method for c in slack.calls][-2:] == ["chat.stopStream", "chat.update"]  # refused, then rewritten


async def test_the_fake_refuses_what_slack_refuses(slack: FakeSlack) -> None:
    client = AsyncWebClient(token="xoxb-unit", base_url=slack.base_url)
    with pytest.raises(SlackApiError, match="message_not_found"):
        await client.chat_appendStream(channel="C1", ts="1.000001", markdown_text="x")
    with pytest.raises(SlackApiError, match="message_not_found"):
        await client.chat_update(channel="C1", ts="1.000001", text="x")
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.chat_startStream(channel="C1", thread_ts="")
    started = await client.chat_startStream(channel="C1", thread_ts="1.5", markdown_text="a")
    await client.chat_stopStream(channel="C1", ts=started["ts"])
    with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
        await client.chat_stopStream(channel="C1", ts=started["ts"])
    with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
        await client.chat_appendStream(channel="C1", ts=started["ts"], markdown_text="b")


async def test_a_refusal_is_a_send_error(slack: FakeSlack, sender: SlackSender) -> None:
    saved = Saved()
    with pytest.raises(SendError, match="channel_not_found"):
        await sender.stream(snapshot("x", 1, to=TO.model_copy(update={"channel": ""})), saved.load(), saved)
