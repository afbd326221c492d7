"""A Slack reply whose process died between Slack's answer and the ``sent:`` marker: its post carries the outbound
id in metadata, and a redelivery looks it up (conversations.replies / conversations.history) instead of posting
again. Through the real slack_sdk client against tests/fakes/slack_api.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from connectors.platform import ChatRates
from connectors.slack import lookup
from connectors.slack.sender import SlackSender
from consumers.deadletter import DeadLetters
from consumers.outbound import OutboundWorker, sent_marker
from consumers.ratelimit import RateLimiter
from gateway.core.bus.base import Delivery
from gateway.core.bus.memory import MemoryBus
from gateway.core.bus.topology import Topology
from gateway.core.events import OutboundMessage, ReplyAddress
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.store.memory import MemoryStore
from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-unit"
THREAD = ReplyAddress(
    platform="slack", bot="T111", channel="C1", thread="1700000000.000100", message="1700000000.000200"
)
CHANNEL = ReplyAddress(platform="slack", bot="T111", channel="C2")
READS = ("conversations.replies", "conversations.history")


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def sender(slack: FakeSlack) -> AsyncIterator[SlackSender]:
    s = SlackSender(TOKEN, slack.base_url)
    try:
        yield s
    finally:
        await s.close()


def reply(n: int, to: ReplyAddress = THREAD, **kw: Any) -> OutboundMessage:
    return OutboundMessage(id=f"ev{n}:a:1", event_id=f"ev{n}", conversation_key="k", to=to, text=f"answer {n}", **kw)


def reads(slack: FakeSlack) -> int:
    return sum(len(slack.calls_for(m)) for m in READS)


# ------------------------------------------------------------------ the fake, as Slack


async def test_the_fake_keeps_metadata_and_returns_it_only_when_asked(slack: FakeSlack) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=slack.base_url)
    meta = lookup.metadata_for("ev:a:1")
    posted = await client.chat_postMessage(channel="C1", text="hi", thread_ts="1.2", metadata=meta)
    plain = await client.conversations_replies(channel="C1", ts="1.2")
    full = await client.conversations_replies(channel="C1", ts="1.2", include_all_metadata=True)
    assert "metadata" not in plain["messages"][0]
    assert full["messages"][0]["metadata"] == meta
    assert full["messages"][0]["ts"] == posted["ts"]


async def test_the_fake_refuses_malformed_metadata_and_drops_a_bad_event_type(slack: FakeSlack) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=slack.base_url)
    for bad in ({"event_type": "x"}, {"event_payload": {}}, {"event_type": "x", "event_payload": "id"}):
        with pytest.raises(SlackApiError) as refused:
            await client.chat_postMessage(channel="C1", text="hi", metadata=bad)
        assert refused.value.response["error"] == "invalid_metadata_format"
    answer = await client.chat_postMessage(
        channel="C1", text="hi", metadata={"event_type": "gateway.outbound", "event_payload": {"id": "x"}}
    )
    assert answer["warning"] == "invalid_metadata_schema"
    history = await client.conversations_history(channel="C1", include_all_metadata=True)
    assert [m.get("metadata") for m in history["messages"]] == [None]


async def test_the_fake_pages_history_newest_first_after_oldest(slack: FakeSlack) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=slack.base_url)
    ts = [(await client.chat_postMessage(channel="C1", text=f"m{i}"))["ts"] for i in range(5)]
    first = await client.conversations_history(channel="C1", oldest=ts[0], limit=2)
    assert [m["ts"] for m in first["messages"]] == [ts[4], ts[3]]
    assert first["has_more"]
    rest = await client.conversations_history(
        channel="C1", oldest=ts[0], limit=2, cursor=first["response_metadata"]["next_cursor"]
    )
    assert [m["ts"] for m in rest["messages"]] == [ts[2], ts[1]]  # oldest is exclusive
    assert not rest["has_more"]


# ------------------------------------------------------------------ the sender's hook


async def test_every_reply_carries_its_outbound_id_in_metadata(slack: FakeSlack, sender: SlackSender) -> None:
    await sender.send(reply(1))
    ((_, args),) = slack.posts
    assert args["metadata"] == {"event_type": lookup.EVENT_TYPE, "event_payload": {"id": "ev1:a:1"}}


async def test_find_sent_finds_a_thread_reply_by_its_id_only(slack: FakeSlack, sender: SlackSender) -> None:
    posted = await sender.send(reply(1))
    await sender.send(reply(2))
    found = await sender.find_sent(reply(1))
    assert found is not None
    assert found["ts"] == posted["ts"]
    assert await sender.find_sent(reply(3)) is None
    (call, *_) = slack.calls_for("conversations.replies")
    assert call.args["ts"] == THREAD.thread
    assert call.args["oldest"] == THREAD.message
    assert call.args["include_all_metadata"] in ("1", "true", True)


async def test_find_sent_finds_a_channel_message_in_the_recent_history(slack: FakeSlack, sender: SlackSender) -> None:
    posted = await sender.send(reply(1, CHANNEL))
    found = await sender.find_sent(reply(1, CHANNEL))
    assert found is not None
    assert found["ts"] == posted["ts"]
    assert slack.calls_for("conversations.history")
    assert not slack.calls_for("conversations.replies")
    # a copy made (by a re-run turn) more than LOOKBACK seconds after the post searches too recent a window
    late = reply(1, CHANNEL, created_at=datetime.now(UTC) + timedelta(seconds=2 * lookup.LOOKBACK))
    assert await sender.find_sent(late) is None


async def test_find_sent_reads_further_pages(
    slack: FakeSlack, sender: SlackSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lookup, "PAGE", 2)
    for n in range(1, 6):
        await sender.send(reply(n))
    assert await sender.find_sent(reply(5)) is not None  # the third page of two
    assert len(slack.calls_for("conversations.replies")) == 3


async def test_only_replies_are_looked_up(slack: FakeSlack, sender: SlackSender) -> None:
    react = OutboundMessage(id="ev:a:2", event_id="ev", conversation_key="k", action="react", to=THREAD, emoji="eyes")
    assert await sender.find_sent(react) is None
    assert reads(slack) == 0


# ------------------------------------------------------------------ the outbound worker


async def _settle(_: str) -> None:
    return None


def delivery(message: OutboundMessage, *, redeliveries: int = 0, recheck: bool = False) -> Delivery:
    headers: dict[str, Any] = {"recheck": 1} if recheck else {}
    return Delivery(message.model_dump_json().encode(), headers, "0", "t.outbound", message.id, redeliveries, _settle)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore("unit")


@pytest.fixture
def worker(sender: SlackSender, store: MemoryStore) -> OutboundWorker:
    metrics = Metrics()
    limiter = RateLimiter(store, {"slack": ChatRates("slack", 1e6, 1e6, 1e6)})
    dead = DeadLetters(Publisher(MemoryBus(Topology("unit")), metrics), metrics)
    return OutboundWorker({"slack": sender}, store=store, limiter=limiter, dead=dead, metrics=metrics)


async def test_a_redelivery_whose_marker_was_lost_finds_the_post_and_marks_it(
    slack: FakeSlack, worker: OutboundWorker, store: MemoryStore
) -> None:
    m = reply(1)
    await worker.run("lane", [delivery(m)])
    await store.delete(sent_marker(m.id))  # killed after Slack's answer, before the marker write
    again = delivery(m, redeliveries=1)
    await worker.run("lane", [again])
    assert len(slack.posts) == 1
    assert again.settled
    assert await store.get(sent_marker(m.id)) is not None


@pytest.mark.parametrize("how", [{"redeliveries": 1}, {"recheck": True}])
async def test_a_redelivery_never_posted_is_posted_once(
    slack: FakeSlack, worker: OutboundWorker, store: MemoryStore, how: dict[str, Any]
) -> None:
    m = reply(1)
    await worker.run("lane", [delivery(m, **how)])
    await worker.run("lane", [delivery(m, **how)])  # and again: the marker answers, no second lookup
    assert len(slack.posts) == 1
    assert len(slack.calls_for("conversations.replies")) == 1
    assert await store.get(sent_marker(m.id)) is not None


async def test_a_first_delivery_posts_without_any_lookup(slack: FakeSlack, worker: OutboundWorker) -> None:
    await worker.run("lane", [delivery(reply(1)), delivery(reply(2, CHANNEL))])
    assert len(slack.posts) == 2
    assert reads(slack) == 0


async def test_a_rate_limited_lookup_is_waited_out_and_still_finds_the_post(
    slack: FakeSlack, worker: OutboundWorker, store: MemoryStore
) -> None:
    m = reply(1)
    await worker.run("lane", [delivery(m)])
    await store.delete(sent_marker(m.id))
    slack.rate_limit_next(1, retry_after=0, method="conversations.replies")
    await worker.run("lane", [delivery(m, redeliveries=1)])
    assert len(slack.posts) == 1
    assert len(slack.calls_for("conversations.replies")) == 2


async def test_a_lookup_that_fails_posts_as_without_one(slack: FakeSlack, worker: OutboundWorker) -> None:
    slack.fail_next(1, 500, method="conversations.replies")
    await worker.run("lane", [delivery(reply(1), redeliveries=1)])
    assert len(slack.posts) == 1
