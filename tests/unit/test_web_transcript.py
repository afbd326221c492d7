"""Resuming a web transcript after an id: the recent window first, the whole transcript when needed."""

from __future__ import annotations

from connectors.web import transcript
from gateway.core.bus.memory import MemoryBus
from gateway.core.bus.topology import Topology
from gateway.core.store.memory import MemoryStore

KEY = "web:default:v1"


async def filled(n: int) -> MemoryStore:
    store = MemoryStore("t")
    bus = MemoryBus(Topology("t", 2))
    await bus.start()
    for i in range(n):
        await transcript.append(store, bus, KEY, transcript.entry(f"e{i}", "user", f"text {i}"))
    return store


def ids(items: list[dict[str, object]]) -> list[object]:
    return [item["id"] for item in items]


async def test_after_a_recent_id_only_the_newer_entries() -> None:
    store = await filled(40)
    assert ids(await transcript.read_after(store, KEY, "e38")) == ["e39"]
    assert ids(await transcript.read_after(store, KEY, "e39")) == []


async def test_after_an_older_id_the_whole_rest() -> None:
    store = await filled(40)
    assert ids(await transcript.read_after(store, KEY, "e3")) == [f"e{i}" for i in range(4, 40)]


async def test_an_unknown_or_no_id_gives_everything_kept() -> None:
    store = await filled(5)
    everything = [f"e{i}" for i in range(5)]
    assert ids(await transcript.read_after(store, KEY, "nope")) == everything
    assert ids(await transcript.read_after(store, KEY, None)) == everything


async def test_an_id_that_is_a_prefix_of_another_is_not_confused_with_it() -> None:
    store = await filled(12)  # e1 is a prefix of e10 and e11
    assert ids(await transcript.read_after(store, KEY, "e1")) == [f"e{i}" for i in range(2, 12)]
