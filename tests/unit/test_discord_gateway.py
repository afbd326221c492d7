"""The Gateway client against the fake Discord Gateway, with the real ingestor on the in-process bus and store:
messages in order and once, a broker that refuses (the seq stays put and the RESUME brings the message back),
RECONNECT, heartbeats carrying the seq, a refused token stopping the client with the reason."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from connectors.discord import session as sessions
from connectors.discord.gateway import GatewayClient
from gateway.core.bus.memory import MemoryBus
from gateway.core.bus.topology import Topology
from gateway.core.errors import ConfigError, PublishError
from gateway.core.events import Event
from gateway.core.ingest import Ingestor, Outcome
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.routing import Router
from gateway.core.store.memory import MemoryStore
from tests.fakes.discord_api import FakeDiscord
from tests.support.waiting import eventually
from tests.unit.builders import fixture_json

TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.unit.gateway-token"
GUILD, CHANNEL, THREAD = "1100000000000000002", "1100000000000000003", "1100000000000000009"


class RefusingBus:
    """The twin bus, refusing ``failures`` publishes the way a broker that does not confirm would."""

    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus
        self.topology = bus.topology
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise PublishError("not confirmed")
        await self._bus.publish(*args, **kwargs)


@dataclass
class Running:
    fake: FakeDiscord
    client: GatewayClient
    store: MemoryStore
    bus: RefusingBus
    task: asyncio.Task[None]
    accepted: list[tuple[Event, Outcome]] = field(default_factory=list)

    def published(self) -> list[str]:
        return [e.text for e, outcome in self.accepted if outcome is Outcome.PUBLISHED]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN) as discord:
        discord.add_channel(CHANNEL, guild=GUILD)
        discord.add_channel(THREAD, guild=GUILD, parent=CHANNEL)
        yield discord


@contextlib.asynccontextmanager
async def running(fake: FakeDiscord, store: MemoryStore | None = None) -> AsyncIterator[Running]:
    store = store or MemoryStore("u")
    memory = MemoryBus(Topology("u", 2))
    await memory.start()
    bus = RefusingBus(memory)
    metrics = Metrics()
    ingestor = Ingestor(Publisher(bus, metrics), store, Router([], "echo"), metrics)  # type: ignore[arg-type]
    accepted: list[tuple[Event, Outcome]] = []

    async def accept(event: Event) -> Outcome:
        outcome = await ingestor.accept(event)
        accepted.append((event, outcome))
        return outcome

    client = GatewayClient(
        TOKEN, fake.base_url, store, accept, intents=37377, invalid_session_wait=(0.0, 0.01), accept_attempts=2
    )
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    run = Running(fake, client, store, bus, task, accepted)
    try:
        await eventually(client.ready, what="a live session")
        yield run
    finally:
        stop.set()
        with contextlib.suppress(ConfigError):
            await asyncio.wait_for(task, 10)


async def test_messages_are_accepted_in_order_with_their_keys_and_the_bots_own_are_dropped(fake: FakeDiscord) -> None:
    async with running(fake) as run:
        await fake.message_create("one", channel=CHANNEL, guild=GUILD)
        await fake.message_create("two", channel=THREAD, guild=GUILD)
        await fake.message_create("from me", channel=CHANNEL, guild=GUILD, author=fake.bot_user)
        await fake.message_create("dm", channel="1100000000000000077")
        await eventually(lambda: len(run.accepted) == 3, what="three accepted")
        saved = await sessions.load(run.store)
    assert run.published() == ["one", "two", "dm"]
    keys = [e.conversation_key for e, _ in run.accepted]
    assert keys == [
        f"discord:{GUILD}:{CHANNEL}",
        f"discord:{GUILD}:{CHANNEL}:{THREAD}",  # the thread's parent, learnt from GUILD_CREATE
        "discord:@me:1100000000000000077",
    ]
    assert fake.calls_for("get_channel") == []
    assert fake.session is not None
    assert (saved.session_id, saved.seq, saved.resume_url) == (fake.session.id, fake.session.seq, fake.resume_url)


async def test_a_message_the_broker_refuses_comes_back_with_the_resume_and_is_published_once(
    fake: FakeDiscord,
) -> None:
    async with running(fake) as run:
        await fake.message_create("first", channel=CHANNEL, guild=GUILD)
        await eventually(lambda: run.published() == ["first"], what="the first published")
        run.bus.failures = 2  # both attempts refused: the client gives up on this connection
        await fake.message_create("refused at first", channel=CHANNEL, guild=GUILD)
        await eventually(lambda: len(fake.ops(6)) == 1, what="a RESUME")
        await eventually(lambda: len(run.published()) == 2, what="the second published")
        await fake.message_create("third", channel=CHANNEL, guild=GUILD)
        await eventually(lambda: len(run.published()) == 3, what="the third published")
    assert run.published() == ["first", "refused at first", "third"]
    resumed_from = fake.ops(6)[0]["d"]["seq"]
    assert fake.session is not None
    refused = next(p for p in fake.session.events if p["t"] == "MESSAGE_CREATE" and "refused" in p["d"]["content"])
    assert resumed_from == refused["s"] - 1  # the seq had not moved past the message that was not queued


async def test_reconnect_is_followed_by_a_resume_and_heartbeats_carry_the_seq(fake: FakeDiscord) -> None:
    fake.heartbeat_interval = 100
    async with running(fake) as run:
        await eventually(lambda: len(fake.ops(1)) >= 2, what="two heartbeats")
        await fake.reconnect()
        await eventually(lambda: len(fake.ops(6)) == 1, what="a RESUME")
        await eventually(run.client.ready, what="live again")
        await fake.message_create("after reconnect", channel=CHANNEL, guild=GUILD)
        await eventually(lambda: run.published() == ["after reconnect"], what="published")
    assert fake.ops(6)[0]["path"] == "/resume"
    assert len(fake.ops(2)) == 1
    assert all(isinstance(op["d"], int) for op in fake.ops(1))  # the last seq, never null after READY


async def test_a_token_discord_refuses_stops_the_client_with_the_reason(fake: FakeDiscord) -> None:
    async with running(fake) as run:
        fake.token = "rotated-in-the-portal"
        await fake.drop()
        with pytest.raises(ConfigError, match="4004: authentication failed: DISCORD_BOT_TOKEN"):
            await asyncio.wait_for(run.task, 10)


async def test_a_session_left_in_the_store_is_resumed_at_start(fake: FakeDiscord) -> None:
    store = MemoryStore("u")
    async with running(fake, store):
        assert fake.session is not None
        first = fake.session.id
    await fake.message_create("while stopped", channel=CHANNEL, guild=GUILD)
    async with running(fake, store) as again:
        await eventually(lambda: again.published() == ["while stopped"], what="the missed message")
    assert [op["d"]["session_id"] for op in fake.ops(6)] == [first]


async def test_an_unparseable_message_is_skipped_and_a_thread_met_first_in_a_message_is_looked_up(
    fake: FakeDiscord,
) -> None:
    async with running(fake) as run:
        await fake.dispatch("MESSAGE_CREATE", {"id": "not-a-snowflake", "channel_id": CHANNEL, "content": "?"})
        fake.add_channel("1100000000000000010", guild=GUILD, parent=CHANNEL)  # created after GUILD_CREATE
        await fake.message_create("in a new thread", channel="1100000000000000010", guild=GUILD)
        await eventually(lambda: len(run.published()) == 1, what="the thread message published")
    [(event, _)] = run.accepted
    assert event.conversation_key == f"discord:{GUILD}:{CHANNEL}:1100000000000000010"
    assert [c.args for c in fake.calls_for("get_channel")] == [{"channel": "1100000000000000010"}]
    assert fake.ops(6) == []  # the bad payload did not cost the connection


async def test_ready_as_discord_sends_it_gives_the_session_to_resume_and_it_is_saved() -> None:
    store = MemoryStore("u")

    async def accept(event: Event) -> Outcome:
        raise AssertionError("READY publishes nothing")

    client = GatewayClient(TOKEN, "http://127.0.0.1:9/api/v10", store, accept, intents=37377)
    ready = fixture_json("discord_ready.json")
    await client._dispatch(ready["t"], ready["s"], ready["d"])
    saved = await sessions.load(store)
    assert (saved.session_id, saved.seq, saved.resume_url, saved.bot_id) == (
        "9dc8b15cf6e6ee7b9c1d7bbbfe2a5a4b",
        1,
        "wss://gateway-us-east1-b.discord.gg",
        "775799577604522054",
    )
    assert client.metrics.live._value.get() == 1
